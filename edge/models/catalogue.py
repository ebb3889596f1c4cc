"""Models published outside PyPI that edge knows how to install: where each file is published,
its pinned sha256 and licence, and the installer that turns the verified files into carded
models in the model pack (copying an ONNX file, or converting weights first).

``fetch.py`` gets the files (download or folder import); an installer registered here with
``@installer(NAME)`` does the rest. Card templates for the adapter families a user can also
register by hand (`edge models register`) live here too, so both paths write the same card.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from .. import errors as E
from . import cards

CATALOGUE: dict[str, dict] = {
    "yunet": {
        "what": "YuNet face detector (OpenCV Zoo), 5 landmarks, any input size",
        "licence": "MIT (OpenCV Zoo)",
        "homepage": "https://github.com/opencv/opencv_zoo/tree/main/models/face_detection_yunet",
        # the 2026may file is the 2023mar weights re-exported with a dynamic input shape
        "files": [{"name": "face_detection_yunet_2026may.onnx",
                   "url": "https://media.githubusercontent.com/media/opencv/opencv_zoo/"
                          "26cc381e4d2594bb9f47a26eb8fd96c94a13660d/models/face_detection_yunet/"
                          "face_detection_yunet_2026may.onnx",
                   "sha256": "ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0"}],
    },
    "sface": {
        "what": "SFace face embedder (OpenCV Zoo, MobileFaceNet trained with the SFace loss), 112x112 "
                "five-point chip -> 128-D; upstream: LFW 99.60 % at cosine 0.363 (OpenCV's DNN face tutorial)",
        "licence": "Apache-2.0 (OpenCV Zoo)",
        "homepage": "https://github.com/opencv/opencv_zoo/tree/main/models/face_recognition_sface",
        # URL and sha256 as the PyPI packages alchemyface 1.2.0 (models.py) and moca-face-matcher
        # 0.2.2 (face_match/core.py) pin them; the zoo keeps the file in Git LFS, which
        # media.githubusercontent.com serves (raw.githubusercontent.com serves the LFS pointer)
        "files": [{"name": "face_recognition_sface_2021dec.onnx",
                   "url": "https://media.githubusercontent.com/media/opencv/opencv_zoo/main/models/"
                          "face_recognition_sface/face_recognition_sface_2021dec.onnx",
                   "sha256": "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79"}],
    },
    "minifasnet": {
        "what": "MiniFASNetV2 (crop 2.7x) and MiniFASNetV1SE (crop 4.0x) RGB silent anti-spoofing, 80x80, "
                "from Silent-Face-Anti-Spoofing; converted to ONNX without PyTorch",
        "licence": "Apache-2.0 (Minivision)",
        "homepage": "https://github.com/minivision-ai/Silent-Face-Anti-Spoofing",
        "files": [{"name": name, "sha256": sha,
                   "url": "https://github.com/minivision-ai/Silent-Face-Anti-Spoofing/raw/"
                          f"b6d5f04ad78778917853b25c778acef6d5626d15/resources/anti_spoof_models/{name}"}
                  for name, sha in (("2.7_80x80_MiniFASNetV2.pth",
                                     "a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0"),
                                    ("4_0_0_80x80_MiniFASNetV1SE.pth",
                                     "84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990"))],
    },
}
# OpenCV's published LFW operating point for SFace (cosine of the two features); the card maps it
# to 80 until `edge models calibrate sface DIR` measures where FAR 1e-4 is
SFACE_LFW_COSINE = 0.363
# the models each MiniFASNet file becomes: (source file, model id, crop scale)
MINIFASNET = (("2.7_80x80_MiniFASNetV2.pth", "minifasnet_v2", 2.7),
              ("4_0_0_80x80_MiniFASNetV1SE.pth", "minifasnet_v1se", 4.0))

_INSTALLERS: dict[str, Callable[[dict, dict[str, Path], Path], list[dict]]] = {}


def installer(name: str):
    def deco(fn):
        _INSTALLERS[name] = fn
        return fn
    return deco


def entry(name: str) -> dict:
    if name not in CATALOGUE:
        raise E.EdgeError(E.PARARM_ERROR, f"unknown model {name!r}; known: {', '.join(sorted(CATALOGUE))}")
    return CATALOGUE[name]


def install(name: str, files: dict[str, Path], models_dir: Path) -> list[dict]:
    """Turn the verified source files of ``name`` into carded models; returns the cards."""
    return _INSTALLERS[name](entry(name), files, models_dir)


def copy_model(src: Path, models_dir: Path, model_id: str) -> Path:
    """The model file as ``<models>/<id>.onnx`` (copy, then rename: never half a file)."""
    dst = Path(models_dir) / f"{model_id}.onnx"
    tmp = dst.with_name(dst.name + ".part")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    return dst


# ---- card templates --------------------------------------------------------------------------
def yunet_card(model_id: str, path: Path, version: str = "1", licence: str = "see the model's source",
               source: dict | None = None) -> dict:
    return {"id": model_id, "kind": "detector", "adapter": "yunet", "version": version,
            "file": str(path), "sha256": cards.sha256_file(path),
            "source": source or {"file": str(path)}, "licence": licence,
            "input": {"layout": "NCHW BGR 0-255", "shape": ["1", 3, "H", "W"], "max_side": 640},
            "outputs": {"cls_/obj_/bbox_/kps_{8,16,32}": "YuNet heads"}}


def model_io(path: Path) -> tuple[list, list[str]]:
    """The model's declared input shape (symbolic dimensions as names) and output names."""
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise E.EdgeError(E.NN_CREATE_FAILED, f"onnxruntime cannot load {path}: {e}") from None
    return list(sess.get_inputs()[0].shape), [o.name for o in sess.get_outputs()]


def arcface_card(model_id: str, path: Path, same_person_cosine: float | None, layout: str = "NCHW RGB",
                 version: str = "1", licence: str = "see the model's source", source: dict | None = None,
                 adapter: str = "arcface", embedding_output: str | int | None = None,
                 normalisation: dict | None = None) -> dict:
    """A card for a 112x112 five-point embedder, its input shape and outputs as the model declares
    them. A layout that contradicts the declared shape, or an embedding output the model does not
    have, is refused: a wrong card gives wrong templates, not an error, later."""
    shape, outputs = model_io(path)
    nhwc = "NHWC" in layout
    dims = shape[1:4]
    want = [112, 112, 3] if nhwc else [3, 112, 112]
    if len(shape) != 4 or any(isinstance(d, int) and d != w for d, w in zip(dims, want)):
        other = "NCHW" if nhwc else "NHWC"
        raise E.EdgeError(E.PARARM_ERROR, f"{path.name} declares input {shape}, not {'NHWC' if nhwc else 'NCHW'} "
                          f"{['N'] + want}" + (f": give --layout '{other} RGB'" if len(shape) == 4 else ""))
    if embedding_output is None:
        embedding_output = outputs[0]
    elif isinstance(embedding_output, str) and embedding_output.isdigit():
        embedding_output = int(embedding_output)
    if isinstance(embedding_output, int):
        if not 0 <= embedding_output < len(outputs):
            raise E.EdgeError(E.PARARM_ERROR, f"{path.name} has {len(outputs)} outputs ({', '.join(outputs)}): "
                              f"no output {embedding_output}")
        embedding_output = outputs[embedding_output]
    if embedding_output not in outputs:
        raise E.EdgeError(E.PARARM_ERROR, f"{path.name} has no output {embedding_output!r} "
                          f"(its outputs: {', '.join(outputs)})")
    norm = normalisation or {"mean": 127.5, "std": 127.5}
    metric = {"kind": "cosine"}
    if same_person_cosine is not None:
        metric["same_person_cosine"] = same_person_cosine
    return {"id": model_id, "kind": "embedder", "adapter": adapter, "version": version, "file": str(path),
            "sha256": cards.sha256_file(path), "source": source or {"file": str(path)}, "licence": licence,
            "input": {"layout": layout, "shape": [d if isinstance(d, int) else "N" for d in shape],
                      "normalisation": f"(x - {norm['mean']:g}) / {norm['std']:g}", **norm,
                      "alignment": "ArcFace 5-point template, 112x112"},
            "outputs": {o: "embedding" if o == embedding_output else "not used" for o in outputs},
            "embedding_output": embedding_output, "metric": metric}


def antispoof_card(model_id: str, path: Path, crop_scale: float, size: tuple[int, int], real_index: int,
                   activation: str = "softmax", colour: str = "BGR", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                   classes: int | None = None, version: str = "1", licence: str = "see the model's source",
                   source: dict | None = None) -> dict:
    """A classifier of the face box scaled ``crop_scale`` x about its centre (adapter
    ``minifasnet``); ``size`` is (height, width); inputs are ``(pixel - mean) / std`` on 0..255."""
    return {"id": model_id, "kind": "antispoof", "adapter": "minifasnet", "version": version, "file": str(path),
            "sha256": cards.sha256_file(path), "source": source or {"file": str(path)}, "licence": licence,
            "input": {"layout": f"NCHW {colour} 0-255", "shape": ["N", 3, int(size[0]), int(size[1])],
                      "crop_scale": crop_scale, "mean": list(mean), "std": list(std),
                      "crop": f"face box x{crop_scale:g} about its centre, shifted inside the image, resized"},
            "outputs": {"logits" if activation != "none" else "probabilities": f"[N, {classes or 'classes'}]",
                        "real_index": real_index, "activation": activation}}


@installer("minifasnet")
def _install_minifasnet(entry: dict, files: dict[str, Path], models_dir: Path) -> list[dict]:
    from . import minifasnet_convert

    specs = {s["name"]: s for s in entry["files"]}
    out = []
    for name, model_id, scale in MINIFASNET:
        dst = Path(models_dir) / f"{model_id}.onnx"
        tmp = dst.with_name(dst.name + ".part")
        try:
            info = minifasnet_convert.convert(files[name], tmp, model_id)
        except minifasnet_convert.PthFormatError as e:
            tmp.unlink(missing_ok=True)
            raise E.EdgeError(E.MODEL_IS_EMPTY, f"{name}: {e}") from None
        except ImportError:
            tmp.unlink(missing_ok=True)
            raise E.EdgeError(E.MODEL_IS_EMPTY, "converting MiniFASNet needs the onnx package: "
                              "pip install 'edge-face[build]'") from None
        os.replace(tmp, dst)
        spec = specs[name]
        card = antispoof_card(model_id, dst, scale, tuple(info["input_hw"]), 1, classes=info["classes"],
                              version="b6d5f04", licence=entry["licence"],
                              source={"url": spec["url"], "file": name, "sha256": spec["sha256"]})
        card.update(file=dst.name, converter="minifasnet",
                    description=f"{model_id}: 3 classes, index 1 = real (0 and 2 attack classes); "
                                "converted by edge.models.minifasnet_convert")
        cards.write_card(models_dir, card)
        out.append(card)
    return out


@installer("yunet")
def _install_yunet(entry: dict, files: dict[str, Path], models_dir: Path) -> list[dict]:
    spec = entry["files"][0]
    dst = copy_model(files[spec["name"]], models_dir, "yunet")
    card = yunet_card("yunet", dst, "2026may", entry["licence"],
                      {"url": spec["url"], "file": spec["name"], "sha256": spec["sha256"]})
    card["file"] = dst.name
    cards.write_card(models_dir, card)
    return [card]


@installer("sface")
def _install_sface(entry: dict, files: dict[str, Path], models_dir: Path) -> list[dict]:
    spec = entry["files"][0]
    dst = copy_model(files[spec["name"]], models_dir, "sface")
    card = arcface_card("sface", dst, SFACE_LFW_COSINE, "NCHW RGB", "2021dec", entry["licence"],
                        {"url": spec["url"], "file": spec["name"], "sha256": spec["sha256"]},
                        adapter="sface", normalisation={"mean": 0.0, "std": 1.0})
    card["file"] = dst.name
    card["metric"]["note"] = ("0.363: OpenCV's LFW threshold for SFace (upstream figure, not measured here); "
                              "run `edge models calibrate sface DIR` for scores that mean FARs")
    cards.write_card(models_dir, card)
    return [card]
