"""Typed configuration, validated at load. Every default is the seed's or a recorded measurement.

All device state lives under one directory, ``EDGE_HOME`` (default ``~/.local/share/edge``):
``models/``, ``db/``, ``license/``, ``logs/``.
"""
from __future__ import annotations

import dataclasses
import os
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from dataclasses import dataclass, field
from pathlib import Path

from . import errors as E


def edge_home() -> Path:
    env = os.environ.get("EDGE_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "edge"


@dataclass
class DetectConfig:
    # "blazeface_full" (MediaPipe full-range, 192x192: faces up to ~5 m), "blazeface_short"
    # (128x128, faces within ~2 m), or "yunet" (user-supplied ONNX, see models/README.md)
    detector: str = "blazeface_full"
    yunet_path: str = ""
    max_detect_num: int = 5          # detect.json default; range 1-50
    min_face_size: int = 0           # detect.json default (pixels; 0 = no limit)
    not_face_thr: float = 0.5        # detect.json default face-confidence threshold
    nms_iou: float = 0.3             # MediaPipe's weighted-NMS suppression threshold

    def validate(self):
        _choice("detect.detector", self.detector, ("blazeface_full", "blazeface_short", "yunet"))
        _range("detect.max_detect_num", self.max_detect_num, 1, 50)
        _range("detect.min_face_size", self.min_face_size, 0, 10000)
        _range("detect.not_face_thr", self.not_face_thr, 0.0, 1.0)
        _range("detect.nms_iou", self.nms_iou, 0.0, 1.0)
        if self.detector == "yunet" and not self.yunet_path:
            raise _bad("detect.yunet_path is required when detect.detector = 'yunet'")


@dataclass
class EmbedConfig:
    # "dlib_resnet" (built by `edge models build`) or a path to a model card (JSON) describing
    # an ArcFace-style 112x112 ONNX embedder the user supplies
    embedder: str = "dlib_resnet"
    # average each template with the mirrored chip's: lfw-dev rank-1 95.80 -> 96.52 % for one
    # more embedder run per face
    flip: bool = True

    def validate(self):
        if not self.embedder:
            raise _bad("embed.embedder must not be empty")


@dataclass
class RecognitionConfig:
    # 0-100 score; 80 is the seed's 1:1 / 1:N threshold and maps to the embedder's own
    # same-person point (dlib: Euclidean 0.6). Measured on lfw-dev: FAR 1.11 % at 80,
    # 0.078 % at 85 (README "Scores, thresholds and measured accuracy").
    threshold: float = 80.0
    top_k: int = 1

    def validate(self):
        _range("recognition.threshold", self.threshold, 0.0, 100.0)
        _range("recognition.top_k", self.top_k, 1, 50)


@dataclass
class LibraryConfig:
    max_users: int = 30000           # seed: offline library up to 3万 users
    max_faces_per_user: int = 20     # seed: 20 faces per user (222210)
    keep_crops: bool = True          # aligned 150x150 chips kept for re-embedding on model change
    keep_thumbnails: bool = True     # the C++ SDK stores a thumbnail with image registration
    reembed_on_model_change: bool = True

    def validate(self):
        _range("library.max_users", self.max_users, 1, 10_000_000)
        _range("library.max_faces_per_user", self.max_faces_per_user, 1, 1000)


@dataclass
class Config:
    home: Path = field(default_factory=edge_home)
    # EDGE_MODELS_DIR lets several homes (tests, instances) share one built model pack
    models_dir: Path | None = field(default_factory=lambda: Path(os.environ["EDGE_MODELS_DIR"])
                                    if os.environ.get("EDGE_MODELS_DIR") else None)
    threads: int = 1                 # onnxruntime intra-op threads; gate terminals share cores
    detect: DetectConfig = field(default_factory=DetectConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    recognition: RecognitionConfig = field(default_factory=RecognitionConfig)
    library: LibraryConfig = field(default_factory=LibraryConfig)

    @property
    def models_path(self) -> Path:
        return Path(self.models_dir) if self.models_dir else self.home / "models"

    @property
    def db_path(self) -> Path:
        return self.home / "db" / "face.db"

    def validate(self) -> "Config":
        _range("threads", self.threads, 1, 64)
        for sect in (self.detect, self.embed, self.recognition, self.library):
            sect.validate()
        return self


def _bad(msg: str) -> E.EdgeError:
    return E.EdgeError(E.PARARM_ERROR, f"configuration: {msg}")


def _range(name, v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (lo <= v <= hi):
        raise _bad(f"{name} = {v!r} is outside {lo}..{hi}")


def _choice(name, v, options):
    if v not in options:
        raise _bad(f"{name} = {v!r}; choose one of {', '.join(options)}")


def _fill(obj, data: dict, prefix: str):
    fields = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in data.items():
        if key not in fields:
            raise _bad(f"unknown key {prefix}{key}")
        cur = getattr(obj, key)
        if dataclasses.is_dataclass(cur):
            if not isinstance(value, dict):
                raise _bad(f"{prefix}{key} must be a table")
            _fill(cur, value, f"{prefix}{key}.")
        elif isinstance(cur, Path) or key in ("home", "models_dir"):
            setattr(obj, key, Path(value).expanduser())
        else:
            want = type(cur)
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, want) or (want is int and isinstance(value, bool)):
                raise _bad(f"{prefix}{key} must be {want.__name__}, got {value!r}")
            setattr(obj, key, value)


def load(path: str | os.PathLike | None = None, **overrides) -> Config:
    cfg = Config()
    if path:
        p = Path(path)
        if not p.is_file():
            raise E.EdgeError(E.FILE_NOT_EXIST, f"configuration file not found: {p}")
        try:
            data = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as e:
            raise _bad(f"{p}: {e}") from None
        _fill(cfg, data, "")
    for k, v in overrides.items():
        if v is not None:
            setattr(cfg, k, Path(v) if k in ("home", "models_dir") else v)
    return cfg.validate()
