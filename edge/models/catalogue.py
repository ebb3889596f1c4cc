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
}

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


def arcface_card(model_id: str, path: Path, same_person_cosine: float, layout: str = "NCHW RGB",
                 version: str = "1", licence: str = "see the model's source", source: dict | None = None) -> dict:
    return {"id": model_id, "kind": "embedder", "adapter": "arcface", "version": version, "file": str(path),
            "sha256": cards.sha256_file(path), "source": source or {"file": str(path)}, "licence": licence,
            "input": {"layout": layout, "shape": ["N", 3, 112, 112], "normalisation": "(x - 127.5) / 127.5",
                      "alignment": "ArcFace 5-point template, 112x112"},
            "outputs": {"embedding": "[N, D]"},
            "metric": {"kind": "cosine", "same_person_cosine": same_person_cosine}}


@installer("yunet")
def _install_yunet(entry: dict, files: dict[str, Path], models_dir: Path) -> list[dict]:
    spec = entry["files"][0]
    dst = copy_model(files[spec["name"]], models_dir, "yunet")
    card = yunet_card("yunet", dst, "2026may", entry["licence"],
                      {"url": spec["url"], "file": spec["name"], "sha256": spec["sha256"]})
    card["file"] = dst.name
    cards.write_card(models_dir, card)
    return [card]
