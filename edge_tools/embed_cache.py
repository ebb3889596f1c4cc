"""Evaluation templates cached on disk, so a second evaluation of the same photos is seconds.

Keyed by the face pipeline (the sha256 of every model file it runs, the settings that change
what it finds, and the source of the modules that find, align and embed a face: changing any of
them makes a new key) and by the sha256 of each image file. Stored under
``EDGE_HOME/cache/eval-templates.db`` (SQLite); ``--no-cache`` skips it. These are templates of
evaluation photos, not of enrolled users: nothing in the library is cached here.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import edge
from edge import errors as E
from edge import image as I
from edge.faces import FaceAnalyzer
from edge.progress import Progress

log = logging.getLogger("edge.eval")

# the modules whose code decides which face is found and how it becomes a template
PIPELINE_SOURCES = ("detect.py", "landmarks.py", "faces.py", "align.py", "embed.py", "image.py")


@dataclass
class Found:
    vector: np.ndarray | None      # raw template; None when no face was found
    box: list[float] | None        # the chosen face, x y w h
    faces: int                     # how many faces the still-image search returned
    reason: str = ""               # why none was found (the error message)


def pipeline_key(an: FaceAnalyzer) -> str:
    src = Path(edge.__file__).parent
    parts = {
        "models": [an.detector.card["sha256"], an.mesh.card["sha256"], an.embedder.card["sha256"]],
        "extra_detectors": [d.card["sha256"] for d in getattr(an, "extra_detectors", [])],
        "embedder": an.embedder.model,
        "detect": vars(an.cfg.detect),
        "code": [hashlib.sha256((src / f).read_bytes()).hexdigest() for f in PIPELINE_SOURCES],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def analyse(an: FaceAnalyzer, path: str | Path) -> Found:
    """The still-image path every command takes: the face enrolment and identification use."""
    try:
        img = I.load(path)
        faces = an.detect_still(img)
        if not faces:
            raise E.EdgeError(E.DETECT_NO_FACE, "no face")
        face = faces[0]
        return Found(an.template(img, face).vector, [float(v) for v in face.box], len(faces))
    except E.EdgeError as e:
        return Found(None, None, 0, e.message)


class TemplateCache:
    """A cache that cannot be read or written (corrupt, a full disk, a read-only home) is dropped
    with a warning: the evaluation goes on, uncached, and loses nothing."""

    def __init__(self, path: Path | None):
        self.db = None
        self.path = path
        if path is not None:
            self._guard(self._open)

    def _open(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), timeout=30)
        self.db.execute("CREATE TABLE IF NOT EXISTS t (key TEXT, sha TEXT, found INTEGER, vec BLOB, box TEXT, "
                        "faces INTEGER, reason TEXT, PRIMARY KEY (key, sha))")

    def _guard(self, fn, *a):
        try:
            return fn(*a)
        except (sqlite3.Error, OSError, ValueError) as e:
            log.warning("evaluation cache %s unusable (%s): going on without it", self.path, e)
            if self.db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self.db.close()
            self.db = None
            return None

    def get(self, key: str, sha: str) -> Found | None:
        return self._guard(self._get, key, sha) if self.db is not None else None

    def _get(self, key, sha):
        row = self.db.execute("SELECT found, vec, box, faces, reason FROM t WHERE key=? AND sha=?", (key, sha)).fetchone()
        if row is None:
            return None
        found, vec, box, faces, reason = row
        vector = np.frombuffer(vec, np.float32).copy() if found else None
        if vector is not None and (not vector.size or not np.isfinite(vector).all()):
            return None                   # a damaged row is recomputed, not used
        return Found(vector, json.loads(box) if box else None, faces, reason or "")

    def put(self, key: str, sha: str, f: Found) -> None:
        if self.db is not None:
            self._guard(lambda: self.db.execute(
                "INSERT OR REPLACE INTO t VALUES (?,?,?,?,?,?,?)",
                (key, sha, int(f.vector is not None), None if f.vector is None else np.asarray(f.vector, np.float32).tobytes(),
                 json.dumps(f.box) if f.box else None, f.faces, f.reason)))

    def commit(self):
        if self.db is not None:
            self._guard(self.db.commit)

    def close(self):
        if self.db is not None:
            self.commit()
            if self.db is not None:
                self.db.close()


def default_path(cfg) -> Path:
    return Path(cfg.home) / "cache" / "eval-templates.db"


def analyse_all(an: FaceAnalyzer, paths: list[str], cache_path: Path | None, label: str = "embedding",
                quiet: bool = False) -> list[Found]:
    """``analyse`` for every path, from the cache where the same pipeline saw the same file."""
    key = pipeline_key(an)
    cache = TemplateCache(cache_path)
    prog = Progress(len(paths), label, quiet=quiet)
    out, hits = [], 0
    try:
        for i, p in enumerate(paths):
            sha = hashlib.sha256(Path(p).read_bytes()).hexdigest()
            f = cache.get(key, sha)
            if f is None:
                f = analyse(an, p)
                cache.put(key, sha, f)
            else:
                hits += 1
            out.append(f)
            if i % 200 == 199:
                cache.commit()
            prog.step("cached" if hits == i + 1 else "")
    finally:
        cache.close()
    prog.done()
    return out
