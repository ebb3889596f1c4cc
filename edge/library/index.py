"""The FAISS side of the library: exact inner product on unit templates, keyed by face_id.

The index is a cache of the database. A process may save it (``save``) as one sealed file; the
database then records the generation it holds and the file's SHA-256, and a reader trusts the
file only when both match (``load``), so a stale, half-written, foreign or bit-flipped file is
rebuilt from SQLite instead. Saves go to a unique temporary name and are renamed into place under
the library lock, so concurrent savers never collide; a failed save (a full disk) removes its
temporary file and changes nothing.
"""
from __future__ import annotations

import logging
import struct
from pathlib import Path

import faiss
import numpy as np

from . import sealing

log = logging.getLogger("edge.library")

MAGIC = b"EDGEIX01"


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

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self.index.id_map).astype(np.int64)

    def vectors(self) -> np.ndarray:
        n = self.ntotal
        return self.index.index.reconstruct_n(0, n) if n else np.zeros((0, self.dim), np.float32)

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

    # ---- the sealed cache file ---------------------------------------------------------------------
    def to_bytes(self, sealer: sealing.Sealer, generation: int) -> bytes:
        ids, vecs = self.ids(), np.ascontiguousarray(self.vectors(), np.float32)
        plain = MAGIC + struct.pack("<IQ", self.dim, len(ids)) + ids.tobytes() + vecs.tobytes()
        return sealer.seal(plain, "index", generation)

    @classmethod
    def from_bytes(cls, data: bytes, sealer: sealing.Sealer, generation: int, dim: int) -> "FaceIndex":
        plain = sealer.open(data, "index", generation)
        if plain[:8] != MAGIC:
            raise ValueError("not an edge index")
        d, n = struct.unpack_from("<IQ", plain, 8)
        if d != dim or len(plain) != 20 + n * 8 + n * d * 4:
            raise ValueError(f"index of dimension {d} with {n} entries does not fit its size")
        ids = np.frombuffer(plain, np.int64, n, 20)
        vecs = np.frombuffer(plain, np.float32, n * d, 20 + n * 8).reshape(n, d)
        out = cls(dim)
        out.add(ids, vecs)
        return out


def remove_stale_temps(path: Path) -> None:
    """Temporary files a killed saver left (call with the library lock held: no save is running)."""
    for p in path.parent.glob(f".{path.name}.*.tmp"):
        p.unlink(missing_ok=True)
