"""Anti-spoof model adapters (registry role ``antispoof``).

The ``minifasnet`` adapter runs any classifier that looks at the face box scaled about its
centre (Silent-Face-Anti-Spoofing's ``CropImage``): the box grows by the card's
``input.crop_scale`` (less when the image is too small), is shifted back inside the image, cut
out and resized to the model's input. The card also says the colour order, the normalisation
(``mean``/``std`` per channel on 0..255 values), which output is "real" and whether the outputs
are logits (``activation: softmax`` or ``sigmoid``) or already probabilities (``none``) — so
another ONNX anti-spoof model of this kind needs a card, not code.
"""
from __future__ import annotations

import cv2
import numpy as np

from .. import errors as E
from ..models import cards
from ..models.registry import Geometry, Runtime, register


def scaled_box(width: int, height: int, box, scale: float) -> tuple[int, int, int, int]:
    """Inclusive (left, top, right, bottom) of ``box`` (x, y, w, h) scaled by ``scale`` about its
    centre, shifted to stay inside a ``width`` x ``height`` image; the scale shrinks when the
    image is too small for it. Truncation toward zero as upstream's ``int()``, so the crops of
    its reference outputs are reproduced pixel for pixel."""
    x, y, bw, bh = (float(v) for v in box)
    if bw <= 0 or bh <= 0:
        raise E.EdgeError(E.ILLEGAL_PARAMS, f"face box {box} is empty")
    scale = min((height - 1) / bh, min((width - 1) / bw, scale))
    nw, nh = bw * scale, bh * scale
    cx, cy = bw / 2 + x, bh / 2 + y
    left, top, right, bottom = cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2
    if left < 0:
        right -= left
        left = 0
    if top < 0:
        bottom -= top
        top = 0
    if right > width - 1:
        left -= right - width + 1
        right = width - 1
    if bottom > height - 1:
        top -= bottom - height + 1
        bottom = height - 1
    return int(left), int(top), int(right), int(bottom)


def _activation(logits: np.ndarray, kind: str) -> np.ndarray:
    if kind == "softmax":
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if kind == "sigmoid":
        return 1.0 / (1.0 + np.exp(-logits))
    return logits


@register("antispoof", "minifasnet")
class ScaledCropClassifier:
    """A classifier of the face box scaled by ``crop_scale``: (image, box) -> P(real)."""

    def __init__(self, card: dict, runtime: Runtime = Runtime()):
        inp, out = card["input"], card["outputs"]
        try:
            self.scale = float(inp["crop_scale"])
            self.real_index = int(out["real_index"])
            self.activation = str(out.get("activation", "softmax"))
            mean = np.asarray(inp.get("mean", [0.0, 0.0, 0.0]), np.float32).reshape(1, 3, 1, 1)
            std = np.asarray(inp.get("std", [1.0, 1.0, 1.0]), np.float32).reshape(1, 3, 1, 1)
        except (KeyError, TypeError, ValueError) as e:
            raise E.EdgeError(E.MODEL_IS_EMPTY, f"anti-spoof card {card.get('id')}: {e!r} missing or malformed "
                              "(needs input.crop_scale and outputs.real_index)") from None
        if self.activation not in ("softmax", "sigmoid", "none") or self.scale <= 0 or np.any(std == 0):
            raise E.EdgeError(E.MODEL_IS_EMPTY, f"anti-spoof card {card.get('id')}: bad activation, crop_scale or std")
        self.card = card
        self.id = card["id"]
        self.sess = cards.session(card, runtime)
        self.input_name = self.sess.get_inputs()[0].name
        self.geometry = Geometry.from_card(card, f"face box x{self.scale:g} about its centre, kept inside the image",
                                           crop_scale=self.scale)
        if self.geometry.size is None:
            raise E.EdgeError(E.MODEL_IS_EMPTY, f"anti-spoof card {self.id}: input.shape must give H and W")
        self.mean, self.std = mean, std
        self.bgr = self.geometry.colour == "BGR"

    def crop(self, image: np.ndarray, box) -> np.ndarray:
        h, w = image.shape[:2]
        left, top, right, bottom = scaled_box(w, h, box, self.scale)
        patch = image[top:bottom + 1, left:right + 1]
        if patch.size == 0:
            raise E.EdgeError(E.ILLEGAL_PARAMS, f"face box {box} lies outside the {w}x{h} image")
        return cv2.resize(patch, self.geometry.size)

    def scores(self, crops: list[np.ndarray]) -> np.ndarray:
        """P(real) of each crop, in one model run (a batch)."""
        x = np.stack(crops).astype(np.float32)
        if not self.bgr:
            x = x[..., ::-1]
        x = (x.transpose(0, 3, 1, 2) - self.mean) / self.std
        out = self.sess.run(None, {self.input_name: np.ascontiguousarray(x)})[0]
        return _activation(out.astype(np.float64), self.activation)[:, self.real_index]

    def __call__(self, image: np.ndarray, box, landmarks=None) -> float:
        return float(self.scores([self.crop(image, box)])[0])
