"""Face embedders behind one interface, and the 0-100 score scale.

An embedder turns an image plus the face's alignment points into a template: a float32 vector
tagged with the model's id and version. Scores are 0-100 as the seed's, calibrated per model to
1:1 false-accept rates (``scores.py``; 80 = FAR 1e-4).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import align
from . import errors as E
from .models import cards
from .models.registry import Geometry, Runtime, register
from .scores import ScoreScale

# ArcFace's standard 112x112 template for (eye image-left, eye image-right, nose, mouth l, mouth r)
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]])


@dataclass
class Template:
    vector: np.ndarray      # raw model output, float32
    model: str              # "<id>@<version>"

    @property
    def unit(self) -> np.ndarray:
        return self.vector / (np.linalg.norm(self.vector) + 1e-12)


class Embedder:
    """Common part: score mapping from cosine of unit vectors, calibrated per model (its card)."""

    crop = ""

    def __init__(self, card: dict, runtime: Runtime = Runtime(), flip: bool = True):
        metric = card.get("metric", {})
        if "same_person_cosine" not in metric and not metric.get("calibration"):
            raise E.EdgeError(E.MODEL_IS_EMPTY, f"model card {card['id']} has neither metric.calibration nor "
                              "metric.same_person_cosine: run `edge models calibrate`")
        self.card = card
        self.sess = cards.session(card, runtime)
        self.input_name = self.sess.get_inputs()[0].name
        self.geometry = Geometry.from_card(card, self.crop)
        self.flip = flip
        # flip-averaged templates differ from plain ones, so they are a different "model"
        self.model = f"{card['id']}@{card.get('version', '1')}" + ("+flip" if flip else "")
        # flip-averaged templates have their own impostor distribution, so their own calibration
        self.scale = ScoreScale(card, "flip" if flip else "single")
        self.output = _embedding_output(card, self.sess)

    @property
    def dim(self) -> int:
        """Template length, from the model's declared output."""
        return int(next(o for o in self.sess.get_outputs() if o.name == self.output).shape[-1])

    def run(self, x: np.ndarray) -> np.ndarray:
        """The embedding output for a batch of prepared chips, one row per chip. A model exported
        with a fixed batch of 1 (SFace) is run once per chip."""
        x = np.ascontiguousarray(x, np.float32)
        if self.sess.get_inputs()[0].shape[0] == 1 and len(x) > 1:
            return np.concatenate([self.run(x[i:i + 1]) for i in range(len(x))])
        return self.sess.run([self.output], {self.input_name: x})[0].reshape(len(x), -1)

    def score(self, cos: np.ndarray | float) -> np.ndarray | float:
        """Cosine -> 0-100 through the card's calibration (``scores.ScoreScale``)."""
        return self.scale.score(cos)

    def cosine_for_score(self, score: float) -> float:
        return self.scale.cosine(score)

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def chip(self, img: np.ndarray, dlib5: np.ndarray, five: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, img: np.ndarray, dlib5: np.ndarray, five: np.ndarray) -> Template:
        chip = self.chip(img, dlib5, five)
        if not self.flip:
            return Template(self.embed_chips(chip[None])[0], self.model)
        # averaging with the mirrored chip: rank-1 on lfw-dev 95.80 -> 96.52 %
        return Template(self.embed_chips(np.stack([chip, chip[:, ::-1]])).mean(0), self.model)


def _embedding_output(card: dict, sess) -> str:
    """The output holding the embedding: the card's ``embedding_output`` (a name or an index;
    some models put the embedding second, after a normalised copy or a classifier), else the first."""
    names = [o.name for o in sess.get_outputs()]
    want = card.get("embedding_output", 0)
    if isinstance(want, int) and not isinstance(want, bool) and 0 <= want < len(names):
        return names[want]
    if isinstance(want, str) and want in names:
        return want
    raise E.EdgeError(E.MODEL_IS_EMPTY, f"model card {card['id']}: embedding_output {want!r} is not one of the "
                      f"model's outputs ({', '.join(names)})")


@register("embedder", "dlib")
class DlibResNet(Embedder):
    size = 150
    crop = "dlib get_face_chip_details: 5 points, 150 px, padding 0.25"

    def chip(self, img, dlib5, five):
        return align.extract_chip(img, dlib5, self.size, 0.25)

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        """BGR uint8 chips (N, 150, 150, 3) -> raw 128-D descriptors."""
        return self.run(chips[..., ::-1].astype(np.float32).transpose(0, 3, 1, 2)).astype(np.float32)


def arcface_chip(img: np.ndarray, five: np.ndarray, flags: int = cv2.INTER_LINEAR) -> np.ndarray:
    """The 112x112 face aligned on the five points (ArcFace's template)."""
    M = align.similarity(five, ARCFACE_TEMPLATE)
    return cv2.warpAffine(img, M, (112, 112), flags=flags)


@register("embedder", "arcface")
class ArcFace(Embedder):
    """Any ArcFace-style ONNX embedder: the 112x112 five-point chip, RGB, (x - 127.5) / 127.5, NCHW;
    the card may say NHWC or BGR in ``input.layout`` and other ``input.mean`` / ``input.std``."""

    size = 112
    crop = "ArcFace 5-point template, 112 px"
    mean, std = 127.5, 127.5

    def __init__(self, card, runtime: Runtime = Runtime(), flip=True):
        super().__init__(card, runtime, flip)
        inp = card["input"]
        self.nhwc = "NHWC" in inp.get("layout", "NCHW")
        self.bgr = "BGR" in inp.get("layout", "RGB")
        try:
            self.mean, self.std = float(inp.get("mean", self.mean)), float(inp.get("std", self.std))
        except (TypeError, ValueError):
            raise E.EdgeError(E.MODEL_IS_EMPTY, f"model card {card['id']}: input.mean / input.std must be numbers") \
                from None
        if not self.std > 0:
            raise E.EdgeError(E.MODEL_IS_EMPTY, f"model card {card['id']}: input.std must be above 0")

    def chip(self, img, dlib5, five):
        return arcface_chip(img, five)

    def embed_chips(self, chips):
        x = chips if self.bgr else chips[..., ::-1]
        x = (x.astype(np.float32) - self.mean) / self.std
        return self.run(x if self.nhwc else x.transpose(0, 3, 1, 2))


@register("embedder", "sface")
class SFace(ArcFace):
    """OpenCV Zoo's SFace the way OpenCV's ``FaceRecognizerSF`` feeds it: ``alignCrop`` is the
    same least-squares similarity onto the same five-point 112x112 template with bilinear
    sampling (``arcface_chip``); ``feature`` is ``blobFromImage(chip, 1, (112, 112), 0,
    swapRB=True)``: RGB, 0-255 unscaled, NCHW, one face per run (the published file's batch is 1).
    Its card gives OpenCV's LFW cosine point (0.363) until `edge models calibrate` measures one."""

    crop = "ArcFace 5-point template, 112 px (FaceRecognizerSF.alignCrop)"
    mean, std = 0.0, 1.0
