"""`edge library check`: everything about the library that can be verified on the device.

- ``PRAGMA integrity_check`` of the whole database (every table, every index against its table);
- every sealed value (templates, crops, points, thumbnails) authenticates under the key, and every
  row of groups, users, members and faces has its MAC: a single flipped byte in any of them is
  found, which no SQLite check can see;
- the in-memory index holds exactly this model's faces, with the stored templates;
- the saved index file: current, behind (caught up from the change log), or not trusted;
- the key: which board identifiers it is bound to;
- file modes under EDGE_HOME (0600 files, 0700 directories).

A damaged database is set aside (``store.Store.set_aside``) and reported as DB_OP_FAILED.
"""
from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import numpy as np

from . import sealing
from .store import MACS, Store, mac_ok, tx


def check(lib, home: Path, vacuum: bool = False) -> dict:
    db = lib.db
    lib.check_structure(full=True)         # sets a structurally damaged database aside
    bad: list[str] = []
    n_values = 0
    with lib._lock:
        try:
            with tx(db, "DEFERRED"):
                faces = db.execute("SELECT face_id, user_id, model, template FROM faces").fetchall()
                templates = {}
                for fid, uid, model, blob in faces:
                    try:
                        plain = lib.sealer.open(blob, "template", fid, uid)
                        n_values += 1
                        if model == lib.model:
                            templates[fid] = np.frombuffer(plain, np.float32)
                    except sealing.Damaged as e:
                        bad.append(str(e))
                for fid, uid, *vals in db.execute("SELECT i.face_id, f.user_id, i.crop, i.points, i.thumbnail FROM "
                                                  "face_images i LEFT JOIN faces f ON f.face_id=i.face_id"):
                    for col, v in zip(("crop", "points", "thumbnail"), vals):
                        if v is None:
                            continue
                        try:
                            lib.sealer.open(v, col, fid, uid)
                            n_values += 1
                        except sealing.Damaged as e:
                            bad.append(str(e))
                for t in MACS:
                    n_bad = db.execute(f"SELECT COUNT(*) FROM {t} x WHERE NOT ({mac_ok(t, 'x')})").fetchone()[0]
                    if n_bad:
                        bad.append(f"{n_bad} rows of {t} fail their MAC")
                meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
                counts = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                          for t in ("users", "groups", "members", "faces", "face_images", "changes")}
        except sqlite3.Error as e:
            raise lib._fail(e) from None
    if bad:
        raise lib._set_aside(f"{len(bad)} sealed values or rows fail authentication, e.g. {bad[0]}")
    index = _index_state(lib, templates, meta)
    out = {"ok": True, "library_id": meta.get("library_id"), "generation": int(meta.get("generation", 0)),
           "users": counts["users"], "groups": counts["groups"], "faces": counts["faces"],
           "integrity_check": "ok", "sealed_values_verified": n_values,
           "rows_verified": sum(counts[t] for t in MACS), "index": index,
           "key": {"file": str(lib.store.key_path), "bound_to": lib.sealer.bound_to,
                   "board_bound": any(n in sealing.BOARD for n in lib.sealer.bound_to)},
           "change_log": {"rows": counts["changes"], "kept_from_generation": int(meta.get("log_floor", 0))},
           "free_pages": db.execute("PRAGMA freelist_count").fetchone()[0],
           "damaged_copies": lib.store.damaged_copies()}
    if not out["key"]["board_bound"]:
        out["key"]["note"] = ("bound to /etc/machine-id only: no CPU serial, eMMC CID or DMI UUID is readable here, "
                              "so a copy of this disk can unwrap the key")
    if vacuum:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        out["free_pages"] = db.execute("PRAGMA freelist_count").fetchone()[0]
        out["vacuumed"] = True
    out["permissions"] = loose_permissions(home)
    return out


def _index_state(lib, templates: dict, meta: dict) -> dict:
    lib.sync()
    ids = lib.index.ids()
    want = np.array(sorted(templates), np.int64)
    state = {"indexed": int(lib.index.ntotal), "generation": lib.index_generation}
    same = len(ids) == len(want) and np.array_equal(np.sort(ids), want)
    if same and len(want):
        order = np.argsort(ids)
        got = lib.index.vectors()[order]
        ref = np.stack([templates[i] for i in want])
        ref = ref / (np.linalg.norm(ref, axis=1, keepdims=True) + 1e-12)
        same = float(np.max(np.abs(got - ref))) < 1e-5
    if not same:
        lib.rebuild_index()                # a cache: rebuilt from the truth, and said so
        state |= {"rebuilt": True, "indexed": int(lib.index.ntotal)}
    saved = int(meta.get("index_generation", -1))
    p = lib.store.index_path
    if not p.exists() or saved < 0:
        state["saved_file"] = "none yet"
    elif sealing.digest(p.read_bytes()) != meta.get("index_sha256"):
        state["saved_file"] = "does not match the database's checksum: not trusted (saved again now)"
        lib.save_index()
    elif saved == int(meta.get("generation", 0)):
        state["saved_file"] = "current"
    else:
        state["saved_file"] = f"generation {saved}, caught up from the change log at open"
    return state


def loose_permissions(home: Path) -> list[str]:
    """Paths under ``home`` that others could read or enter (files not 0600, directories not 0700)."""
    out = []
    home = Path(home)
    if not home.is_dir():
        return out
    for root, dirs, files in os.walk(home):
        for name in dirs + files:
            p = Path(root) / name
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                continue
            want = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
            if st.st_mode & 0o077:
                out.append(f"{p} is {oct(st.st_mode & 0o777)[2:]} (want {oct(want)[2:]})")
    return out


def reset(db_path: Path) -> dict:
    return Store(db_path).reset()

