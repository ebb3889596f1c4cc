"""Model cards: one JSON file beside each ONNX model, and sha256-checked session loading."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .. import errors as E
from ..files import write_atomic


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def card_path(models_dir: Path, model_id: str) -> Path:
    return Path(models_dir) / f"{model_id}.json"


def read_card(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise E.EdgeError(E.MODEL_IS_EMPTY, f"model card {path} is missing: run `edge models build`")
    try:
        card = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise E.EdgeError(E.MODEL_IS_EMPTY, f"model card {path} is unreadable ({e}): run `edge models build`")
    if not isinstance(card, dict):
        raise E.EdgeError(E.MODEL_IS_EMPTY, f"model card {path} is not a JSON object: run `edge models build`")
    for key in ("id", "file", "sha256", "input", "outputs"):
        if key not in card:
            raise E.EdgeError(E.MODEL_IS_EMPTY, f"model card {path} lacks '{key}'")
    _check_shape(card, path)
    card["_dir"] = str(path.parent)
    return card


# the fields every adapter reads, with the type each must have (a card edited by hand or damaged
# on disk answered "unexpected error (TypeError …)" before)
_TYPES = {("id",): str, ("file",): str, ("sha256",): str, ("kind",): str, ("adapter",): str, ("input",): dict,
          ("outputs",): dict, ("input", "shape"): list, ("input", "layout"): str, ("metric",): dict,
          ("metric", "calibration"): dict, ("anchors",): dict, ("anchors", "strides"): list}


def _check_shape(card: dict, path: Path) -> None:
    for keys, kind in _TYPES.items():
        v, parent = card, None
        for k in keys:
            parent, v = v, v.get(k) if isinstance(v, dict) else None
        if v is None or not isinstance(parent, dict):
            continue          # optional, or its parent is checked on its own
        if not isinstance(v, kind) or (kind is str and not v):
            raise E.EdgeError(E.MODEL_IS_EMPTY, f"model card {path}: '{'.'.join(keys)}' must be a "
                              f"{'non-empty text' if kind is str else kind.__name__}, not {v!r:.40}: run "
                              "`edge models build` (or register the model again)")


def model_file(card: dict) -> Path:
    f = Path(card["file"])
    return f if f.is_absolute() else Path(card["_dir"]) / f


_verified: dict[tuple[str, float, int], str] = {}


def verify(card: dict) -> Path:
    """The model file, after checking it exists and matches the card's sha256."""
    f = model_file(card)
    if not f.is_file():
        raise E.EdgeError(E.MODEL_IS_EMPTY, f"model file {f} is missing: run `edge models build`")
    st = f.stat()
    key = (str(f), st.st_mtime, st.st_size)
    digest = _verified.get(key) or sha256_file(f)
    if digest != card["sha256"]:
        raise E.EdgeError(E.MODEL_IS_EMPTY, f"model file {f} does not match its card's sha256 "
                          "(tampered or corrupt): run `edge models build` to rebuild it")
    _verified[key] = digest
    return f


def session(card: dict, runtime=None):
    """An onnxruntime session for the card's (sha256-checked) file, with the runtime's providers
    (in order of preference) and threads."""
    import onnxruntime as ort

    from .registry import Runtime

    runtime = runtime or Runtime()
    f = verify(card)
    available = ort.get_available_providers()
    missing = [p for p in runtime.providers if p not in available]
    if missing:
        raise E.EdgeError(E.NN_CREATE_FAILED, f"onnxruntime here has no {', '.join(missing)} (available: "
                          f"{', '.join(available)}): install the onnxruntime build for that accelerator, or "
                          "change `providers` in the configuration")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = runtime.threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(f), opts, providers=list(runtime.providers))
    except Exception as e:  # onnxruntime raises its own exception types
        raise E.EdgeError(E.NN_CREATE_FAILED, f"onnxruntime could not load {f}: {e}") from None


def keep_site_calibration(metric: dict, old: dict | None) -> None:
    """Carry into ``metric`` the calibrations in the card ``old`` that the site measured itself
    (`edge models calibrate`, ``by: "site"``): its own data outranks a recipe's or a float card's."""
    site = {v: c for v, c in (((old or {}).get("metric") or {}).get("calibration") or {}).items()
            if isinstance(c, dict) and c.get("by") == "site"}
    if site:
        metric.setdefault("calibration", {}).update(site)


def write_card(models_dir: Path, card: dict) -> Path:
    path = card_path(models_dir, card["id"])
    write_atomic(path, (json.dumps({k: v for k, v in card.items() if not k.startswith("_")}, indent=2) + "\n")
                 .encode(), 0o644)
    return path
