"""The face library: groups -> users -> faces, as the offline SDK's.

SQLite (WAL) is the source of truth: users, group memberships, templates (raw float32 with the
embedder's id and version), the face crops templates can be recomputed from, thumbnails. The
FAISS index is rebuilt from it whenever it is missing, stale or corrupt. Every write is one
SQLite transaction and bumps a generation counter; the index records the generation it holds.
"""
from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import errors as E
from .index import FaceIndex

log = logging.getLogger("edge.library")

ID_RE = re.compile(r"^[A-Za-z0-9_]{1,128}$")
MAX_USER_INFO = 256
MAX_LIST_LENGTH = 1000

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS groups (group_id TEXT PRIMARY KEY, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS users (user_id TEXT PRIMARY KEY, user_info TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS members (group_id TEXT NOT NULL REFERENCES groups(group_id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE, created REAL NOT NULL,
    PRIMARY KEY (group_id, user_id));
CREATE INDEX IF NOT EXISTS members_user ON members(user_id);
CREATE TABLE IF NOT EXISTS faces (face_id INTEGER PRIMARY KEY AUTOINCREMENT,
    face_token TEXT NOT NULL UNIQUE, user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    model TEXT NOT NULL, template BLOB NOT NULL, crop BLOB, points TEXT, thumbnail BLOB,
    created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS faces_user ON faces(user_id);
"""


@dataclass
class FaceRecord:
    """What enrolment stores for one face."""
    template: np.ndarray         # raw embedder output
    model: str                   # "<id>@<version>"
    crop: bytes | None = None    # JPEG of the face region, for re-embedding with another model
    points: dict | None = None   # alignment points in crop coordinates {"dlib5": .., "five": ..}
    thumbnail: bytes | None = None


def check_id(kind: str, value) -> str:
    if not isinstance(value, str) or not ID_RE.fullmatch(value):   # not match: "$" admits a final "\n"
        raise E.EdgeError(E.PARARM_ERROR, f"{kind} {value!r} is illegal: use 1-128 letters, digits or '_'",
                          http_code=222006 if kind == "group_id" else 222018)
    return value


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / (np.linalg.norm(v) + 1e-12)).astype(np.float32)


class FaceLibrary:
    full_hint = "raise library.max_users"   # FaceEngine names the licence when the limit is the licence's

    def __init__(self, db_path: Path, model: str, dim: int, max_users: int = 30000,
                 max_faces_per_user: int = 20):
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.index_path = self.db_path.with_suffix(".index")
        self.model, self.dim = model, dim
        self.max_users, self.max_faces_per_user = max_users, max_faces_per_user
        self._lock = threading.RLock()
        self._deferred = 0
        self._allowed_cache: dict[tuple, np.ndarray] = {}
        try:
            self.db = sqlite3.connect(str(self.db_path), check_same_thread=False, isolation_level=None,
                                      timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as e:
            raise E.EdgeError(E.DB_OP_FAILED, f"face library {self.db_path} cannot be opened: {e}") from None
        self.index = FaceIndex.load(self.index_path, self.generation, model, dim) or self.rebuild_index()

    # ---- plumbing -------------------------------------------------------------------------
    @property
    def generation(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0]) if row else 0

    @contextlib.contextmanager
    def _write(self):
        """One transaction that bumps the generation. Index changes queued on the yielded
        ``_Pending`` are applied only after COMMIT, then the index is saved with the new
        generation, so a saved index never holds uncommitted faces."""
        with self._lock:
            pending = _Pending()
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db, pending
                self.db.execute("INSERT INTO meta(key, value) VALUES('generation', '1') ON CONFLICT(key) "
                                "DO UPDATE SET value = CAST(value AS INTEGER) + 1")
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.index.remove(pending.removed)
            if pending.added_ids:
                self.index.add(np.array(pending.added_ids, np.int64), np.stack(pending.added_units))
            if not self._deferred:
                self.index.save(self.index_path, self.generation, self.model)

    @contextlib.contextmanager
    def batch(self):
        """Defer saving the index to the end of a batch (a crash inside leaves it stale, and
        a stale index is rebuilt at the next open)."""
        with self._lock:
            self._deferred += 1
            try:
                yield self
            finally:
                self._deferred -= 1
                if not self._deferred:
                    self.index.save(self.index_path, self.generation, self.model)

    def rebuild_index(self) -> FaceIndex:
        idx = FaceIndex(self.dim)
        rows = self.db.execute("SELECT face_id, template FROM faces WHERE model=?", (self.model,)).fetchall()
        if rows:
            ids = np.array([r[0] for r in rows], np.int64)
            units = np.stack([_unit(np.frombuffer(r[1], np.float32)) for r in rows])
            idx.add(ids, units)
        idx.save(self.index_path, self.generation, self.model)
        log.info("index rebuilt from the database: %d templates", idx.ntotal)
        return idx

    def close(self):
        with self._lock:
            self.db.close()

    # ---- groups -----------------------------------------------------------------------------
    def group_add(self, group_id: str) -> None:
        check_id("group_id", group_id)
        with self._write() as (db, _):
            if db.execute("SELECT 1 FROM groups WHERE group_id=?", (group_id,)).fetchone():
                raise E.EdgeError(E.RECORD_ALREADY_EXIST, f"group {group_id} already exists", http_code=223101)
            db.execute("INSERT INTO groups VALUES (?, ?)", (group_id, time.time()))

    def group_delete(self, group_id: str) -> None:
        check_id("group_id", group_id)
        with self._write() as (db, pending):
            if not db.execute("SELECT 1 FROM groups WHERE group_id=?", (group_id,)).fetchone():
                raise E.EdgeError(E.RECORD_UNEXIST, f"group {group_id} does not exist", http_code=223100)
            users = [r[0] for r in db.execute("SELECT user_id FROM members WHERE group_id=?", (group_id,))]
            db.execute("DELETE FROM groups WHERE group_id=?", (group_id,))
            pending.removed += self._drop_orphans(db, users)

    def group_list(self, start: int = 0, length: int = 100) -> list[str]:
        start, length = _paging(start, length)
        return [r[0] for r in self.db.execute("SELECT group_id FROM groups ORDER BY group_id LIMIT ? OFFSET ?",
                                              (length, start))]

    # ---- users and faces ------------------------------------------------------------------
    def _drop_orphans(self, db, users) -> list[int]:
        """Delete users left in no group, with their faces; returns the face ids removed."""
        removed = []
        for u in set(users):
            if not db.execute("SELECT 1 FROM members WHERE user_id=?", (u,)).fetchone():
                removed += [r[0] for r in db.execute("SELECT face_id FROM faces WHERE user_id=?", (u,))]
                db.execute("DELETE FROM users WHERE user_id=?", (u,))
        return removed

    def _ensure_member(self, db, user_id, group_id, user_info, now):
        if not db.execute("SELECT 1 FROM groups WHERE group_id=?", (group_id,)).fetchone():
            db.execute("INSERT INTO groups VALUES (?, ?)", (group_id, now))  # groups are created on first use
        if not db.execute("SELECT 1 FROM users WHERE user_id=?", (user_id,)).fetchone():
            (n,) = db.execute("SELECT COUNT(*) FROM users").fetchone()
            if n >= self.max_users:
                raise E.EdgeError(E.DB_OP_FAILED, f"the library is full ({self.max_users} users): delete users "
                                  f"or {self.full_hint}", http_code=222300)
            db.execute("INSERT INTO users VALUES (?, ?, ?, ?)", (user_id, user_info or "", now, now))
        elif user_info is not None:
            db.execute("UPDATE users SET user_info=?, updated=? WHERE user_id=?", (user_info, now, user_id))
        db.execute("INSERT OR IGNORE INTO members VALUES (?, ?, ?)", (group_id, user_id, now))

    def _insert_face(self, db, user_id, rec: FaceRecord, now, prefix: str = "") -> tuple[int, str, np.ndarray]:
        self._check_template(rec.template, rec.model)
        (n,) = db.execute("SELECT COUNT(*) FROM faces WHERE user_id=?", (user_id,)).fetchone()
        if n >= self.max_faces_per_user:
            raise E.EdgeError(E.DB_OP_FAILED, f"user {user_id} already has {n} faces (the limit is "
                              f"{self.max_faces_per_user}): delete one first", http_code=222210)
        token = prefix + uuid.uuid4().hex
        cur = db.execute("INSERT INTO faces(face_token, user_id, model, template, crop, points, thumbnail, created) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (token, user_id, rec.model, np.asarray(rec.template, np.float32).tobytes(), rec.crop,
                          json.dumps(rec.points) if rec.points else None, rec.thumbnail, now))
        return cur.lastrowid, token, _unit(np.asarray(rec.template, np.float32))

    def _check_template(self, template, model):
        if model != self.model:
            raise E.EdgeError(E.FEATURE_LEN_ERROR, f"template from model {model} cannot be mixed with this "
                              f"library's model {self.model}")
        if np.asarray(template).size != self.dim:
            raise E.EdgeError(E.FEATURE_LEN_ERROR, f"template has {np.asarray(template).size} values, "
                              f"expected {self.dim}")

    def user_add(self, user_id: str, group_id: str, rec: FaceRecord, user_info: str | None = None) -> str:
        """Add a face to a user (created if new; the group too). Returns the face_token."""
        check_id("user_id", user_id), check_id("group_id", group_id), _check_info(user_info)
        now = time.time()
        with self._write() as (db, pending):
            self._ensure_member(db, user_id, group_id, user_info, now)
            fid, token, unit = self._insert_face(db, user_id, rec, now)
            pending.add(fid, unit)
        return token

    def user_update(self, user_id: str, group_id: str, rec: FaceRecord, user_info: str | None = None) -> str:
        """Replace all of a user's faces with this one (the SDK's user_update)."""
        check_id("user_id", user_id), check_id("group_id", group_id), _check_info(user_info)
        now = time.time()
        with self._write() as (db, pending):
            if not db.execute("SELECT 1 FROM members WHERE user_id=? AND group_id=?", (user_id, group_id)).fetchone():
                raise E.EdgeError(E.RECORD_UNEXIST, f"user {user_id} is not in group {group_id}", http_code=223103)
            pending.removed += [r[0] for r in db.execute("SELECT face_id FROM faces WHERE user_id=?", (user_id,))]
            db.execute("DELETE FROM faces WHERE user_id=?", (user_id,))
            if user_info is not None:
                db.execute("UPDATE users SET user_info=?, updated=? WHERE user_id=?", (user_info, now, user_id))
            fid, token, unit = self._insert_face(db, user_id, rec, now)
            pending.add(fid, unit)
        return token

    def refresh_dynamic(self, user_id: str, rec: FaceRecord, max_dynamic: int) -> tuple[str | None, list[str]]:
        """The seed's dynamic base library: add a live capture to an enrolled user, keeping at most
        ``max_dynamic`` such faces (oldest replaced). Enrolled faces are never touched; a user
        whose enrolled faces fill ``max_faces_per_user`` gets none. Returns (new token, dropped)."""
        check_id("user_id", user_id)
        now = time.time()
        with self._write() as (db, pending):
            if not db.execute("SELECT 1 FROM users WHERE user_id=?", (user_id,)).fetchone():
                raise E.EdgeError(E.RECORD_UNEXIST, f"user {user_id} does not exist", http_code=223103)
            total = db.execute("SELECT COUNT(*) FROM faces WHERE user_id=?", (user_id,)).fetchone()[0]
            dyn = db.execute("SELECT face_id, face_token FROM faces WHERE user_id=? AND face_token LIKE 'dyn!_%' "
                             "ESCAPE '!' ORDER BY created, face_id", (user_id,)).fetchall()
            dropped = []
            while dyn and (len(dyn) >= max_dynamic or total >= self.max_faces_per_user):
                fid, token = dyn.pop(0)
                db.execute("DELETE FROM faces WHERE face_id=?", (fid,))
                pending.removed.append(fid)
                dropped.append(token)
                total -= 1
            if total >= self.max_faces_per_user:
                return None, dropped
            fid, token, unit = self._insert_face(db, user_id, rec, now, prefix="dyn_")
            pending.add(fid, unit)
        return token, dropped

    def user_delete(self, user_id: str, group_id: str) -> None:
        """Remove a user from a group ("@ALL": from every group); a user left in no group is deleted."""
        check_id("user_id", user_id)
        with self._write() as (db, pending):
            if group_id == "@ALL":
                cur = db.execute("DELETE FROM members WHERE user_id=?", (user_id,))
            else:
                check_id("group_id", group_id)
                cur = db.execute("DELETE FROM members WHERE user_id=? AND group_id=?", (user_id, group_id))
            if cur.rowcount == 0:
                raise E.EdgeError(E.RECORD_UNEXIST, f"user {user_id} is not in group {group_id}", http_code=223103)
            pending.removed += self._drop_orphans(db, [user_id])

    def face_delete(self, user_id: str, group_id: str, face_token: str) -> None:
        """Delete one face; deleting a user's last face deletes the user (as the v3 API)."""
        check_id("user_id", user_id), check_id("group_id", group_id)
        with self._write() as (db, pending):
            row = db.execute("SELECT f.face_id FROM faces f JOIN members m ON m.user_id=f.user_id "
                             "WHERE f.user_id=? AND m.group_id=? AND f.face_token=?",
                             (user_id, group_id, face_token)).fetchone()
            if not row:
                raise E.EdgeError(E.FACE_RESOURCE_NOT_EXIST, f"face {face_token} of user {user_id} in group "
                                  f"{group_id} does not exist", http_code=223106)
            db.execute("DELETE FROM faces WHERE face_id=?", (row[0],))
            pending.removed.append(row[0])
            if not db.execute("SELECT 1 FROM faces WHERE user_id=?", (user_id,)).fetchone():
                db.execute("DELETE FROM users WHERE user_id=?", (user_id,))

    def set_user_info(self, user_id: str, user_info: str) -> None:
        """Change a user's info alone (the admin page edits it without a new photo)."""
        check_id("user_id", user_id), _check_info(user_info)
        with self._write() as (db, _):
            cur = db.execute("UPDATE users SET user_info=?, updated=? WHERE user_id=?", (user_info, time.time(), user_id))
            if cur.rowcount == 0:
                raise E.EdgeError(E.RECORD_UNEXIST, f"user {user_id} does not exist", http_code=223103)

    def user_copy(self, user_id: str, src_group: str, dst_group: str) -> None:
        check_id("user_id", user_id), check_id("group_id", src_group), check_id("group_id", dst_group)
        with self._write() as (db, _):
            if not db.execute("SELECT 1 FROM members WHERE user_id=? AND group_id=?", (user_id, src_group)).fetchone():
                raise E.EdgeError(E.RECORD_UNEXIST, f"user {user_id} is not in group {src_group}", http_code=223103)
            if not db.execute("SELECT 1 FROM groups WHERE group_id=?", (dst_group,)).fetchone():
                raise E.EdgeError(E.RECORD_UNEXIST, f"group {dst_group} does not exist", http_code=223111)
            db.execute("INSERT OR IGNORE INTO members VALUES (?, ?, ?)", (dst_group, user_id, time.time()))

    def get_user(self, user_id: str, group_id: str | None = None) -> dict:
        check_id("user_id", user_id)
        row = self.db.execute("SELECT user_info, created FROM users WHERE user_id=?", (user_id,)).fetchone()
        groups = [r[0] for r in self.db.execute("SELECT group_id FROM members WHERE user_id=? ORDER BY group_id",
                                                (user_id,))]
        if not row or (group_id and group_id != "@ALL" and group_id not in groups):
            raise E.EdgeError(E.RECORD_UNEXIST, f"user {user_id} does not exist"
                              + (f" in group {group_id}" if group_id else ""), http_code=223103)
        faces = [{"face_token": t, "model": m, "create_time": _ts(c)} for t, m, c in self.db.execute(
            "SELECT face_token, model, created FROM faces WHERE user_id=? ORDER BY face_id", (user_id,))]
        return {"user_id": user_id, "user_info": row[0], "groups": groups, "create_time": _ts(row[1]),
                "face_list": faces}

    def get_user_list(self, group_id: str, start: int = 0, length: int = 100) -> list[str]:
        check_id("group_id", group_id)
        start, length = _paging(start, length)
        if not self.db.execute("SELECT 1 FROM groups WHERE group_id=?", (group_id,)).fetchone():
            raise E.EdgeError(E.RECORD_UNEXIST, f"group {group_id} does not exist", http_code=223100)
        return [r[0] for r in self.db.execute(
            "SELECT user_id FROM members WHERE group_id=? ORDER BY user_id LIMIT ? OFFSET ?", (group_id, length, start))]

    def get_thumbnail(self, user_id: str) -> bytes | None:
        row = self.db.execute("SELECT thumbnail FROM faces WHERE user_id=? AND thumbnail IS NOT NULL "
                              "ORDER BY face_id LIMIT 1", (user_id,)).fetchone()
        return row[0] if row else None

    def count(self, group_id: str | None = None) -> dict:
        if group_id:
            users = self.db.execute("SELECT COUNT(*) FROM members WHERE group_id=?", (group_id,)).fetchone()[0]
            faces = self.db.execute("SELECT COUNT(*) FROM faces f JOIN members m ON m.user_id=f.user_id "
                                    "WHERE m.group_id=?", (group_id,)).fetchone()[0]
        else:
            users = self.db.execute("SELECT COUNT(*) FROM users").fetchone()[0]
            faces = self.db.execute("SELECT COUNT(*) FROM faces").fetchone()[0]
        return {"users": users, "faces": faces, "indexed": self.index.ntotal}

    # ---- search -------------------------------------------------------------------------------
    def _allowed(self, groups: tuple[str, ...]) -> np.ndarray:
        rows = self.db.execute(f"SELECT DISTINCT f.face_id FROM faces f JOIN members m ON m.user_id=f.user_id "
                               f"WHERE m.group_id IN ({','.join('?' * len(groups))}) AND f.model=?",
                               (*groups, self.model)).fetchall()
        return np.array([r[0] for r in rows], np.int64)

    def search(self, unit: np.ndarray, groups: list[str] | None = None, top_k: int = 1,
               user_id: str | None = None) -> list[dict]:
        """Best users by cosine: [{user_id, groups, face_token, cosine}], one row per user."""
        # under the write lock: the HTTP API writes from its threads while the camera loop
        # searches, and FAISS must not be searched while a write resizes it
        with self._lock:
            return self._search(unit, groups, top_k, user_id)

    def face_unit(self, face_token: str) -> np.ndarray | None:
        """The unit template of one enrolled face (the v3 API's FACE_TOKEN input), or None."""
        with self._lock:
            row = self.db.execute("SELECT template FROM faces WHERE face_token=? AND model=?",
                                  (face_token, self.model)).fetchone()
        return _unit(np.frombuffer(row[0], np.float32)) if row else None

    def _search(self, unit, groups, top_k, user_id) -> list[dict]:
        key = allowed = None
        if groups:
            for g in groups:
                check_id("group_id", g)
            key = (tuple(sorted(set(groups))), self.generation)
            allowed = self._allowed_cache.get(key)
            if allowed is None:
                # members of these groups at this generation; recomputed only after a write
                self._allowed_cache = {key: self._allowed(key[0])}
                allowed = self._allowed_cache[key]
            if len(allowed) == self.index.ntotal:
                key = allowed = None   # the groups hold every face: a plain search is faster
        if user_id:
            allowed_u = np.array([r[0] for r in self.db.execute(
                "SELECT face_id FROM faces WHERE user_id=? AND model=?", (user_id, self.model))], np.int64)
            allowed = allowed_u if allowed is None else np.intersect1d(allowed, allowed_u)
            key = None
        # several faces per user: look a little deeper so top_k distinct users come back
        D, I = self.index.search(unit, top_k * self.max_faces_per_user, allowed, key)
        best: dict[str, dict] = {}
        for cos, fid in zip(D, I):
            row = self.db.execute("SELECT user_id, face_token FROM faces WHERE face_id=?", (int(fid),)).fetchone()
            if row is None or row[0] in best:
                continue
            best[row[0]] = {"user_id": row[0], "face_token": row[1], "cosine": float(cos)}
            if len(best) >= top_k:
                break
        out = list(best.values())
        for r in out:
            r["groups"] = [g for (g,) in self.db.execute("SELECT group_id FROM members WHERE user_id=? ORDER BY group_id",
                                                         (r["user_id"],)) if not groups or g in groups]
            r["user_info"] = self.db.execute("SELECT user_info FROM users WHERE user_id=?", (r["user_id"],)).fetchone()[0]
        return out

    # ---- migration ----------------------------------------------------------------------------
    def export_templates(self, group_id: str | None = None) -> list[dict]:
        q = ("SELECT f.user_id, f.face_token, f.model, f.template FROM faces f" +
             (" JOIN members m ON m.user_id=f.user_id WHERE m.group_id=?" if group_id else "") + " ORDER BY f.face_id")
        out = []
        for user_id, token, model, blob in self.db.execute(q, (group_id,) if group_id else ()):
            groups = [g for (g,) in self.db.execute("SELECT group_id FROM members WHERE user_id=?", (user_id,))]
            info = self.db.execute("SELECT user_info FROM users WHERE user_id=?", (user_id,)).fetchone()[0]
            out.append({"user_id": user_id, "groups": groups, "user_info": info, "face_token": token,
                        "model": model, "feature": base64.b64encode(blob).decode()})
        return out

    def add_many(self, items: list[tuple]) -> list[str]:
        """(user_id, group_id or [group_ids], record, user_info[, face_token]) rows in one
        transaction: all or none. A row whose face_token is already this user's face is skipped
        (importing one file twice adds nothing); its token held by another user refuses the batch.
        Returns the tokens of the faces added."""
        now = time.time()
        rows = []
        for user_id, groups, rec, info, *token in items:
            groups = [groups] if isinstance(groups, str) else list(groups)
            check_id("user_id", user_id), _check_info(info)
            if not groups:
                raise E.EdgeError(E.PARARM_ERROR, f"user {user_id} needs at least one group", http_code=222006)
            for g in groups:
                check_id("group_id", g)
            rows.append((user_id, groups, rec, info, token[0] if token else None))
        tokens = []
        with self._write() as (db, pending):
            for user_id, groups, rec, info, want in rows:
                if want is not None:
                    owner = db.execute("SELECT user_id FROM faces WHERE face_token=?", (want,)).fetchone()
                    if owner and owner[0] != user_id:
                        raise E.EdgeError(E.RECORD_ALREADY_EXIST, f"face {want} already belongs to user {owner[0]}, "
                                          f"not {user_id}: nothing was imported", http_code=223105)
                for g in groups:
                    self._ensure_member(db, user_id, g, info, now)
                if want is not None and owner:
                    continue
                fid, token, unit = self._insert_face(db, user_id, rec, now)
                if want is not None:
                    # keep the exported token: it is what identifies this face on every device
                    db.execute("UPDATE faces SET face_token=? WHERE face_id=?", (want, fid))
                    token = want
                pending.add(fid, unit)
                tokens.append(token)
        return tokens

    def import_templates(self, items) -> int:
        """Add exported templates (``edge export``'s ``faces``; same model only) to this library,
        every group included, all or none. Every entry is validated first (``template_file``).
        Returns how many faces were added (faces already present by face_token are not)."""
        from ..template_file import entries

        faces = entries({"faces": items} if isinstance(items, list) else items, self.dim, self.model)
        return len(self.add_many([(f.user_id, f.groups, FaceRecord(f.vector, f.model), f.user_info, f.face_token)
                                  for f in faces]))

    def faces_needing(self, model: str) -> list[tuple[int, bytes | None, str | None]]:
        return self.db.execute("SELECT face_id, crop, points FROM faces WHERE model<>?", (model,)).fetchall()

    def replace_templates(self, updates: list[tuple[int, np.ndarray]]) -> None:
        """Store re-computed templates (current model) for existing faces, in one transaction."""
        with self._write() as (db, pending):
            for fid, vec in updates:
                db.execute("UPDATE faces SET template=?, model=? WHERE face_id=?",
                           (np.asarray(vec, np.float32).tobytes(), self.model, fid))
                pending.removed.append(fid)
                pending.add(fid, _unit(np.asarray(vec, np.float32)))


class _Pending:
    def __init__(self):
        self.removed: list[int] = []
        self.added_ids: list[int] = []
        self.added_units: list[np.ndarray] = []

    def add(self, face_id: int, unit: np.ndarray) -> None:
        self.added_ids.append(face_id)
        self.added_units.append(unit)


def _check_info(info):
    if info is not None and (not isinstance(info, str) or len(info) > MAX_USER_INFO):
        raise E.EdgeError(E.PARARM_ERROR, f"user_info must be text of at most {MAX_USER_INFO} characters",
                          http_code=222010)


def _paging(start, length):
    if not isinstance(start, int) or start < 0:
        raise E.EdgeError(E.PARARM_ERROR, "start must be a non-negative integer", http_code=222002)
    if not isinstance(length, int) or not 1 <= length <= MAX_LIST_LENGTH:
        raise E.EdgeError(E.PARARM_ERROR, f"length must be 1..{MAX_LIST_LENGTH}", http_code=222003)
    return start, length


def _ts(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
