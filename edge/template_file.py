"""Template files (`edge export` / `edge import-templates`): read and validate before anything
is written.

A file is ``{"model": "...", "faces": [{"user_id", "groups", "user_info", "face_token", "model",
"feature"}]}`` with ``feature`` the base64 of the raw float32 template. Everything is checked
first, so a malformed file is one JSON error and the library is untouched: JSON shape, ids,
``groups`` a list of ids (a string is refused, not read as its letters), base64, length, finite
values and a plausible magnitude (NaN, inf, all-zero or 3e38 vectors would otherwise become
top hits for everybody), one entry per ``face_token``.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import errors as E
from .library import ID_RE, MAX_USER_INFO, check_id

MAX_FILE_BYTES = 1 << 30     # 30,000 users x 20 faces of 128-D base64 is ~0.4 GB
# raw template norms: dlib's are ~1.4, ArcFace-style embedders' 10-40; outside this range the
# vector is not an embedding (zeros, 3e38, a unit test's garbage)
MIN_NORM, MAX_NORM = 1e-3, 1e4
DEFAULT_GROUP = "default"


@dataclass
class Entry:
    user_id: str
    groups: list[str]
    user_info: str | None
    face_token: str | None
    model: str
    vector: np.ndarray


def _bad(msg: str, code: int = E.PARARM_ERROR, http_code: int | None = 222200) -> E.EdgeError:
    return E.EdgeError(code, f"template file: {msg}", http_code=http_code)


def read(path: str | os.PathLike) -> dict:
    """The parsed JSON document of a template file (structure checked by ``entries``)."""
    p = Path(path)
    if not p.is_file():
        raise E.EdgeError(E.FILE_NOT_EXIST, f"no such template file: {p} (make one with `edge export -o FILE`)")
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise E.EdgeError(E.FILE_TOO_BIG, f"template file {p} is {size} bytes; the limit is {MAX_FILE_BYTES}")
    try:
        return json.loads(p.read_bytes().decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise _bad(f"{p} is not text (UTF-8 JSON): is it the file `edge export` wrote?") from None
    except (ValueError, RecursionError) as e:
        raise _bad(f"{p} is not valid JSON ({e})") from None


def _no_constant(name):
    raise ValueError(f"{name} is not allowed")


def entries(doc, dim: int, model: str) -> list[Entry]:
    """Every face of the document, validated for a library of ``model`` with ``dim`` values per
    template; raises the JSON error for the first problem, naming the entry."""
    if isinstance(doc, dict):
        faces = doc.get("faces")
        if faces is None:
            raise _bad('no "faces" list: expected {"model": ..., "faces": [...]} as `edge export` writes')
    elif isinstance(doc, list):
        raise _bad('the top level is a list: expected {"model": ..., "faces": [...]} as `edge export` writes')
    else:
        raise _bad("expected a JSON object with a \"faces\" list")
    if not isinstance(faces, list):
        raise _bad(f'"faces" must be a list, not {type(faces).__name__}')
    out, tokens = [], set()
    for i, it in enumerate(faces):
        e = entry(it, dim, model, where=f"faces[{i}]")
        if e.face_token is not None:
            if e.face_token in tokens:
                raise _bad(f"faces[{i}]: face_token {e.face_token} appears twice")
            tokens.add(e.face_token)
        out.append(e)
    return out


def entry(it, dim: int, model: str, where: str = "face") -> Entry:
    if not isinstance(it, dict):
        raise _bad(f"{where} must be an object, not {type(it).__name__}")
    for key in ("user_id", "feature"):
        if key not in it:
            raise _bad(f'{where} has no "{key}"', http_code=222001)
    try:
        user_id = check_id("user_id", it["user_id"])
    except E.EdgeError as e:
        raise _bad(f"{where}: {e.message}", http_code=e.http_code) from None
    groups = it.get("groups")
    if groups is None:
        groups = [DEFAULT_GROUP]
    if not isinstance(groups, list) or not groups:
        raise _bad(f"{where}: groups must be a non-empty list of group ids, not {groups!r}", http_code=222006)
    for g in groups:
        if not isinstance(g, str) or not ID_RE.fullmatch(g):
            raise _bad(f"{where}: group id {g!r} is illegal: use 1-128 letters, digits or '_'", http_code=222006)
    groups = list(dict.fromkeys(groups))
    info = it.get("user_info")
    if info is not None and (not isinstance(info, str) or len(info) > MAX_USER_INFO):
        raise _bad(f"{where}: user_info must be text of at most {MAX_USER_INFO} characters", http_code=222010)
    token = it.get("face_token")
    if token is not None and (not isinstance(token, str) or not ID_RE.fullmatch(token)):
        raise _bad(f"{where}: face_token {token!r} is illegal", http_code=222025)
    m = it.get("model", model)
    if m != model:
        raise _bad(f"{where}: template from model {m!r} cannot be mixed with this library's model {model}: "
                   "export from a device with the same model, or re-enrol from photos", code=E.FEATURE_LEN_ERROR)
    return Entry(user_id, groups, info, token, model, vector(it["feature"], dim, where))


def vector(feature, dim: int, where: str = "face") -> np.ndarray:
    if not isinstance(feature, str):
        raise _bad(f"{where}: feature must be a base64 string, not {type(feature).__name__}",
                   code=E.FEATURE_LEN_ERROR)
    try:
        raw = base64.b64decode(feature, validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"{where}: feature is not valid base64", code=E.FEATURE_LEN_ERROR) from None
    if len(raw) != 4 * dim:
        raise _bad(f"{where}: feature has {len(raw)} bytes, expected {4 * dim} ({dim} float32 values)",
                   code=E.FEATURE_LEN_ERROR)
    v = np.frombuffer(raw, "<f4").astype(np.float32)
    if not np.all(np.isfinite(v)):
        raise _bad(f"{where}: feature holds NaN or infinite values", code=E.FEATURE_LEN_ERROR)
    norm = float(np.linalg.norm(v.astype(np.float64)))
    if not (MIN_NORM <= norm <= MAX_NORM) or not math.isfinite(norm):
        raise _bad(f"{where}: feature magnitude {norm:.3g} is not a template's (expected {MIN_NORM:g}..{MAX_NORM:g})",
                   code=E.FEATURE_LEN_ERROR)
    return v
