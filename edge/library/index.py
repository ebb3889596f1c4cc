"""The FAISS side of the library: exact inner product on unit templates, keyed by face_id.

The index is a cache of the database. It is saved beside it with the database generation it
was built from; at open a missing, unreadable or stale index is rebuilt from SQLite.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import faiss
import numpy as np

log = logging.getLogger("edge.library")


class FaceIndex:
    def __init__(self, dim: int):
        self.dim = dim
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._selectors: dict[tuple, tuple] = {}

    @property
    def ntotal(self) -> int:
        return self.index.ntotal

    def add(self, ids: np.ndarray, units: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(units, np.float32), np.asarray(ids, np.int64))
        self._selectors.clear()

    def remove(self, ids) -> None:
        ids = np.asarray(list(ids), np.int64)
        if len(ids):
            self.index.remove_ids(ids)
        self._selectors.clear()

    def search(self, unit: np.ndarray, k: int, allowed: np.ndarray | None = None, key=None):
        """Top-k (cosine, face_id); ``allowed`` restricts to those face ids (e.g. some groups)."""
        if self.ntotal == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        q = np.ascontiguousarray(unit.reshape(1, -1), np.float32)
        params = None
        if allowed is not None:
            if len(allowed) == 0:
                return np.zeros(0, np.float32), np.zeros(0, np.int64)
            cached = self._selectors.get(key) if key is not None else None
            if cached is None:
                arr = np.ascontiguousarray(allowed, np.int64)
                cached = (arr, faiss.IDSelectorBatch(len(arr), faiss.swig_ptr(arr)))
                if key is not None:
                    self._selectors[key] = cached
            params = faiss.SearchParameters(sel=cached[1])
            k = min(k, len(allowed))
        k = min(k, self.ntotal)
        D, I = self.index.search(q, k, params=params)
        keep = I[0] >= 0
        return D[0][keep], I[0][keep]

    def save(self, path: Path, generation: int, model: str) -> None:
        tmp = path.with_suffix(".tmp")
        faiss.write_index(self.index, str(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        meta = path.with_suffix(".json")
        mtmp = meta.with_suffix(".json.tmp")
        mtmp.write_text(json.dumps({"generation": generation, "ntotal": self.ntotal, "model": model, "dim": self.dim}))
        os.replace(mtmp, meta)

    @classmethod
    def load(cls, path: Path, generation: int, model: str, dim: int) -> "FaceIndex | None":
        """The saved index if it was built from this generation of the database, else None."""
        meta = path.with_suffix(".json")
        try:
            m = json.loads(meta.read_text())
            if m.get("generation") != generation or m.get("model") != model or m.get("dim") != dim:
                log.info("index %s is stale (generation %s, database %s): rebuilding", path, m.get("generation"), generation)
                return None
            idx = faiss.read_index(str(path))
            if idx.ntotal != m["ntotal"] or idx.d != dim:
                return None
        except FileNotFoundError:
            return None
        except Exception as e:  # faiss raises RuntimeError on a corrupt file; json on a torn one
            log.warning("index %s unreadable (%s): rebuilding", path, e)
            return None
        out = cls(dim)
        out.index = idx
        return out
