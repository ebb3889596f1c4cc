"""The face library: groups -> users -> faces, as the offline SDK's.

SQLite (WAL) is the only source of truth: users, group memberships, templates (with the
embedder's id and version), the face crops templates can be recomputed from, thumbnails. The
biometric values are sealed (AES-GCM, ``sealing``); the files and the checks at open are
``store``'s. Every write is one transaction that bumps a generation counter and records which
faces it added or removed (``changes``), so every process keeps its in-memory FAISS index in
step with the database by applying only the delta: a check before each search is one query,
and a running camera loop sees another process's enrolments and deletions at its next frame.
"""
from __future__ import annotations

import base64
import contextlib
import functools
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
from . import sealing
from ..files import write_atomic
from .index import FaceIndex, remove_stale_temps
from .store import CORE_TABLES, Store, is_corruption, mac_ok, set_meta, tx

log = logging.getLogger("edge.library")

ID_RE = re.compile(r"^[A-Za-z0-9_]{1,128}$")
MAX_USER_INFO = 256
MAX_LIST_LENGTH = 1000
LOG_KEEP = 10000        # generations of the change log kept; a process further behind rebuilds
SAVE_AFTER = 64         # generations caught up at open before the saved index is refreshed


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


def _guarded(fn):
    """SQLite and sealing failures become the documented DB error; a damaged database is set aside.

    Under the library's lock: the camera loop and the HTTP API's threads share one connection,
    and a statement that calls the Python MAC function (``edge_mac``) holds the connection's
    mutex while it waits for the GIL, so another thread binding parameters on the same
    connection while holding the GIL froze the whole process (``edge serve --camera``, an
    enrolment through the API while a face was in view)."""
    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            if self._broken is not None:
                raise self._broken
            try:
                return fn(self, *args, **kwargs)
            except (sqlite3.Error, sealing.Damaged) as e:
                raise self._fail(e) from None
    return wrapper


class FaceLibrary:
    full_hint = "raise library.max_users"   # FaceEngine names the licence when the limit is the licence's

    def __init__(self, db_path: Path, model: str | None, dim: int | None, max_users: int = 30000,
                 max_faces_per_user: int = 20, device_root=None):
        """``device_root``: where the board's identifiers are read (tests pass a recorded tree;
        default ``sealing.DEFAULT_ROOT``, i.e. "/"). ``model`` None: the template model most of
        the stored faces carry (listing, exporting and deleting need no model pack)."""
        self.db_path = Path(db_path)
        self.store = Store(self.db_path, device_root)
        self.index_path = self.store.index_path
        self.model, self.dim = model, dim
        self.max_users, self.max_faces_per_user = max_users, max_faces_per_user
        self._lock = threading.RLock()
        self._deferred = 0
        self._allowed_cache: dict[tuple, np.ndarray] = {}
        self._broken: E.EdgeError | None = None
        self._checked = False            # core tables integrity-checked before this process's first write
        self.index_generation = -1       # the database generation the in-memory index holds
        self.synced_at = 0.0             # wall time the index last caught up with another process
        self.db = None
        try:
            self.db, self.sealer = self.store.open()
            if model is None:
                self.model, self.dim = self._stored_model()
            self.index = self._open_index()
        except (sqlite3.Error, sealing.Damaged) as e:
            raise self._fail(e) from None

    # ---- plumbing -------------------------------------------------------------------------
    @property
    def generation(self) -> int:
        with self._lock:
            return self._meta_int("generation")

    @property
    def readonly(self) -> bool:
        return self.store.readonly

    def _fail(self, e: BaseException) -> E.EdgeError:
        """The EdgeError for a database failure; a damaged database is set aside first."""
        if isinstance(e, E.EdgeError):
            return e
        msg = str(e)
        if isinstance(e, sealing.Damaged) or is_corruption(e):
            return self._set_aside(msg)
        low = msg.lower()
        if "full" in low or "disk i/o" in low:
            return E.EdgeError(E.DB_OP_FAILED, f"the disk is full or failing ({msg}): nothing was changed; free "
                               f"some space under {self.db_path.parent}")
        if "readonly" in low:
            return E.EdgeError(E.DB_OP_FAILED, "the face library is open read-only (the disk was full when it "
                               "was opened): nothing was changed")
        if "locked" in low or "busy" in low:
            return E.EdgeError(E.DB_OP_FAILED, f"the face library stayed busy ({msg}): nothing was changed; "
                               "try again")
        return E.EdgeError(E.DB_OP_FAILED, f"face library {self.db_path}: {msg}")

    def _set_aside(self, why: str) -> E.EdgeError:
        with self._lock:
            if self._broken is None:
                if self.db is not None:
                    with contextlib.suppress(sqlite3.Error):
                        self.db.close()
                with self.store.lock():
                    self._broken = self.store.set_aside(why)
            return self._broken

    def _check_core(self, tables=CORE_TABLES):
        """Before this process first writes: the tables a write touches are sound, indexes
        included (about 0.2 s at 30,000 users; the large face_images table is checked on a thread
        once the service runs, and by `edge library check`). ``tables=None``: every table."""
        problems = self.store.check_structure(self.db, tables, integrity=True)
        if problems:
            raise self._set_aside("PRAGMA integrity_check: " + "; ".join(problems[:5]))
        self._checked = True

    def _verified(self, rows, what: str) -> list:
        """``rows`` whose last column is their MAC check, without it; a row that fails is damage."""
        out = []
        for r in rows:
            if not r[-1]:
                raise sealing.Damaged(f"{what} row {tuple(r[:-1])!r} fails its MAC (changed on disk)")
            out.append(r[:-1])
        return out

    @contextlib.contextmanager
    def _write(self):
        """One transaction that bumps the generation and logs the faces it adds or removes.
        Index changes queued on the yielded ``_Pending`` are applied only after COMMIT."""
        with self._lock:
            if self._broken is not None:
                raise self._broken
            if self.readonly:
                raise self._fail(sqlite3.OperationalError("readonly"))
            try:
                if not self._checked:
                    self._check_core()
                pending = _Pending()
                writer = self.store.writer_turn()
                try:
                    with tx(self.db):
                        g0 = self.generation
                        yield self.db, pending
                        gen = g0 + 1
                        self.db.execute("UPDATE meta SET value=? WHERE key='generation'", (str(gen),))
                        log_rows = [(gen, int(f), -1) for f in pending.removed] + \
                            [(gen, int(f), 1) for f in pending.added_ids]
                        self.db.executemany("INSERT OR REPLACE INTO changes VALUES (?, ?, ?)", log_rows)
                        if gen % 64 == 0 and gen > LOG_KEEP:
                            self.db.execute("DELETE FROM changes WHERE generation <= ?", (gen - LOG_KEEP,))
                            self.db.execute("UPDATE meta SET value=? WHERE key='log_floor'", (str(gen - LOG_KEEP),))
                finally:
                    writer.release()
            except (sqlite3.Error, sealing.Damaged) as e:
                raise self._fail(e) from None
            # committed: bring the in-memory index along (from the pending list when no other
            # process wrote in between, else from the change log)
            if self.index_generation == g0:
                self.index.remove(pending.removed)
                if pending.added_ids:
                    self.index.add(np.array(pending.added_ids, np.int64), np.stack(pending.added_units))
                self.index_generation = gen
            else:
                try:
                    self._sync_locked()
                except (sqlite3.Error, sealing.Damaged) as e:
                    # the write is committed and is reported so; the next read meets the problem
                    log.warning("catching up after a write: %s", e)

    @contextlib.contextmanager
    def batch(self):
        """Group many writes (batch import); the saved index is refreshed once at the end."""
        with self._lock:
            self._deferred += 1
            try:
                yield self
            finally:
                self._deferred -= 1
                if not self._deferred:
                    self.save_index()

    def sync(self) -> int:
        """Catch the in-memory index up with the database (one query when nothing changed);
        returns the generation it now holds. A long-running process (`edge run`) learns here
        that another process set the database aside."""
        with self._lock:
            if self._broken is None and self.store.moved():
                self._broken = E.EdgeError(E.DB_OP_FAILED, f"the face library {self.db_path} was set aside or "
                                           "replaced by another process: " + "; ".join(
                                               self.store.damaged_copies()[-1:]) + " (README: Device state)")
                with contextlib.suppress(sqlite3.Error):
                    self.db.close()
            if self._broken is not None:
                raise self._broken
            try:
                return self._sync_locked()
            except (sqlite3.Error, sealing.Damaged) as e:
                raise self._fail(e) from None

    def _sync_locked(self) -> int:
        gen = self.generation
        if gen == self.index_generation:
            return gen
        with tx(self.db, "DEFERRED"):        # one snapshot: generation, log and templates agree
            gen = self.generation
            floor = self._meta_int("log_floor")
            behind = self.index_generation < floor or self.index_generation > gen
            if not behind:
                net: dict[int, int] = {}
                for fid, op in self.db.execute("SELECT face_id, op FROM changes WHERE generation > ? AND "
                                               "generation <= ? ORDER BY generation", (self.index_generation, gen)):
                    net[fid] = op
                added = [f for f, op in net.items() if op > 0]
                ids, units = self._templates(added)
        if behind:
            log.info("index at generation %d, change log kept from %d: rebuilding", self.index_generation, floor)
            self.rebuild_index()
            return self.index_generation
        self.index.remove(list(net))
        self.index.add(ids, units)
        log.info("library generation %d -> %d: %d faces added or replaced, %d removed", self.index_generation, gen,
                 len(ids), len(net) - len(added))
        self.index_generation = gen
        self.synced_at = time.time()
        return gen

    def _meta_int(self, key: str, default: int = 0) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        try:
            return int(row[0]) if row else default
        except ValueError:
            raise sealing.Damaged(f"meta {key} = {row[0]!r} is not a number") from None

    def _stored_model(self) -> tuple[str, int]:
        """(model, template length) of most stored faces; for an empty library a placeholder that
        nothing is compared with."""
        row = self.db.execute("SELECT model, COUNT(*) FROM faces GROUP BY model ORDER BY 2 DESC LIMIT 1").fetchone()
        if row is None:
            return "", 1
        fid, uid, t = self.db.execute("SELECT face_id, user_id, template FROM faces WHERE model=? LIMIT 1",
                                      (row[0],)).fetchone()
        return row[0], len(self.sealer.open(t, "template", fid, uid)) // 4

    def _templates(self, face_ids: list[int] | None) -> tuple[np.ndarray, np.ndarray]:
        """(face ids, unit templates) of this model, decrypted; all faces when ``face_ids`` is None."""
        rows = []
        if face_ids is None:
            rows = self.db.execute("SELECT face_id, user_id, template FROM faces WHERE model=?", (self.model,)).fetchall()
        else:
            for i in range(0, len(face_ids), 500):
                chunk = face_ids[i:i + 500]
                rows += self.db.execute(f"SELECT face_id, user_id, template FROM faces WHERE model=? AND face_id IN "
                                        f"({','.join('?' * len(chunk))})", (self.model, *chunk)).fetchall()
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32)
        op = self.sealer.open
        plain = b"".join(op(t, "template", fid, uid) for fid, uid, t in rows)
        if len(plain) != len(rows) * self.dim * 4:
            raise sealing.Damaged(f"templates of {len(rows)} faces do not have {self.dim} values each")
        mat = np.frombuffer(plain, np.float32).reshape(len(rows), self.dim)
        units = mat / (np.linalg.norm(mat, axis=1, keepdims=True) + 1e-12)
        return np.array([r[0] for r in rows], np.int64), units.astype(np.float32)

    def rebuild_index(self, save: bool = True) -> FaceIndex:
        """The index from SQLite alone (every template decrypted), then saved for the next open."""
        with self._lock:
            t0 = time.perf_counter()
            with tx(self.db, "DEFERRED"):
                gen = self.generation
                ids, units = self._templates(None)
            idx = FaceIndex(self.dim)
            idx.add(ids, units)
            self.index, self.index_generation = idx, gen
            self.synced_at = time.time()
            log.info("index rebuilt from the database: %d templates in %.0f ms", idx.ntotal,
                     (time.perf_counter() - t0) * 1000)
            if save:
                self.save_index()
            return idx

    def _open_index(self) -> FaceIndex:
        """The saved index when the database vouches for it (generation, model, SHA-256), caught up
        with the change log; otherwise rebuilt from SQLite."""
        m = dict(self.db.execute("SELECT key, value FROM meta WHERE key LIKE 'index_%'").fetchall())
        saved = int(m["index_generation"]) if str(m.get("index_generation", "")).isdigit() else -1
        why = None
        if saved < 0 or not self.index_path.exists():
            why = "no saved index"
        elif m.get("index_model") != self.model or m.get("index_dim") != str(self.dim):
            why = f"saved index is for model {m.get('index_model')}"
        elif saved < self._meta_int("log_floor"):
            why = "saved index is older than the change log"
        else:
            try:
                data = self.index_path.read_bytes()
            except OSError as e:
                data, why = None, f"saved index unreadable ({e})"
            if data is not None:
                if sealing.digest(data) != m.get("index_sha256"):
                    why = "saved index does not match the checksum the database holds (changed on disk, or a save " \
                          "that did not finish)"
                    log.warning("index %s: %s: rebuilding from the database", self.index_path, why)
                else:
                    try:
                        idx = FaceIndex.from_bytes(data, self.sealer, saved, self.dim)
                    except (sealing.Damaged, ValueError) as e:
                        why = f"saved index does not authenticate ({e})"
                        log.warning("index %s: %s: rebuilding from the database", self.index_path, why)
                    else:
                        self.index, self.index_generation = idx, saved
                        gen = self._sync_locked()
                        if gen - saved >= SAVE_AFTER:
                            self.save_index()
                        return self.index
        log.info("index: %s: rebuilding from the database", why)
        return self.rebuild_index()

    def save_index(self) -> bool:
        """Save the in-memory index as the sealed cache file and record it in the database.
        Skipped when another process is saving; a failure (full disk) only logs."""
        if self.readonly or self._broken is not None:
            return False
        with self._lock, self.store.lock(blocking=False) as got:
            if not got:
                return False
            remove_stale_temps(self.index_path)
            try:
                if self._meta_int("index_generation", -1) > self.index_generation and \
                        self.db.execute("SELECT value FROM meta WHERE key='index_model'").fetchone() == (self.model,):
                    return False            # someone saved a newer one
                data = self.index.to_bytes(self.sealer, self.index_generation)
                write_atomic(self.index_path, data)
                with tx(self.db):
                    set_meta(self.db, index_generation=str(self.index_generation), index_sha256=sealing.digest(data),
                             index_model=self.model, index_dim=str(self.dim))
            except (OSError, sqlite3.Error) as e:
                log.warning("index not saved (%s): the next open rebuilds it or catches up from the change log", e)
                return False
        return True

    def check_structure(self, full: bool = False) -> threading.Thread | None:
        """When the service starts: ``integrity_check`` of the core tables, then ``quick_check``
        of the crops on a thread of its own (returned); ``full``: ``integrity_check`` of
        everything, here and now (`edge library check`).

        The crops are most of the file (about 430 MB at 30,000 users) and recognition never reads
        them: checked before the loop started, they made a cold start (page cache empty, as after
        a boot) of 30,000 users take 6.5 s to the first decision instead of 2.0 s here, and would
        take 10 s or more from an SD card. Damage found there sets the library aside, as damage
        found at any other time does."""
        with self._lock:
            if self._broken is not None:
                raise self._broken
            try:
                self._check_core(None if full else CORE_TABLES)
            except sqlite3.Error as e:
                raise self._fail(e) from None
        if full:
            return None
        t = threading.Thread(target=self._check_crops, name="library-crops-check", daemon=True)
        t.start()
        return t

    def _check_crops(self) -> None:
        """``quick_check`` of the crops on a read-only connection of its own, so the loop's
        searches do not wait for it."""
        try:
            db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
            try:
                problems = self.store.check_structure(db, ["face_images"])
            finally:
                db.close()
        except sqlite3.Error as e:
            problems = [] if not is_corruption(e) else [str(e)]
            if not problems:
                log.warning("the face crops were not checked (%s): `edge library check` does it", e)
        if problems:
            why = "PRAGMA quick_check(face_images): " + "; ".join(problems[:5])
            try:
                log.error("%s", self._set_aside(why).message)
            except (OSError, ValueError, sqlite3.Error) as e:   # the library was closed meanwhile
                log.error("the face crops are damaged (%s) and the library could not be set aside (%s): run "
                          "`edge library check`", why, e)

    def close(self):
        with self._lock:
            if self.db is not None and self._broken is None:
                try:
                    self.db.close()
                except sqlite3.Error as e:   # a checkpoint that found the disk full: the WAL keeps it
                    log.warning("closing the face library: %s", e)
            self.store.close()

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

    @_guarded
    def group_list(self, start: int = 0, length: int = 100) -> list[str]:
        start, length = _paging(start, length)
        return [r[0] for r in self._verified(self.db.execute(
            f"SELECT group_id, {mac_ok('groups', 'g')} FROM groups g ORDER BY group_id LIMIT ? OFFSET ?",
            (length, start)), "groups")]

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
        # the row id first: every sealed value is bound to it
        fid = db.execute("INSERT INTO faces(face_token, user_id, model, template, created) VALUES (?, ?, ?, x'', ?)",
                         (token, user_id, rec.model, now)).lastrowid
        seal = self.sealer.seal
        db.execute("UPDATE faces SET template=? WHERE face_id=?",
                   (seal(np.asarray(rec.template, np.float32).tobytes(), "template", fid, user_id), fid))
        if rec.crop is not None or rec.points or rec.thumbnail is not None:
            db.execute("INSERT INTO face_images VALUES (?, ?, ?, ?)",
                       (fid, seal(rec.crop, "crop", fid, user_id),
                        seal(json.dumps(rec.points).encode() if rec.points else None, "points", fid, user_id),
                        seal(rec.thumbnail, "thumbnail", fid, user_id)))
        return fid, token, _unit(np.asarray(rec.template, np.float32))

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

    @_guarded
    def get_user(self, user_id: str, group_id: str | None = None) -> dict:
        check_id("user_id", user_id)
        row = self._verified(self.db.execute(f"SELECT user_info, created, {mac_ok('users', 'u')} FROM users u "
                                             "WHERE user_id=?", (user_id,)), "users")
        row = row[0] if row else None
        groups = [r[0] for r in self._groups_of(user_id)]
        if not row or (group_id and group_id != "@ALL" and group_id not in groups):
            raise E.EdgeError(E.RECORD_UNEXIST, f"user {user_id} does not exist"
                              + (f" in group {group_id}" if group_id else ""), http_code=223103)
        faces = [{"face_token": t, "model": m, "create_time": _ts(c)} for t, m, c in self._verified(self.db.execute(
            f"SELECT face_token, model, created, {mac_ok('faces', 'f')} FROM faces f WHERE user_id=? ORDER BY face_id",
            (user_id,)), "faces")]
        return {"user_id": user_id, "user_info": row[0], "groups": groups, "create_time": _ts(row[1]),
                "face_list": faces}

    @_guarded
    def get_user_list(self, group_id: str, start: int = 0, length: int = 100) -> list[str]:
        check_id("group_id", group_id)
        start, length = _paging(start, length)
        if not self.db.execute("SELECT 1 FROM groups WHERE group_id=?", (group_id,)).fetchone():
            raise E.EdgeError(E.RECORD_UNEXIST, f"group {group_id} does not exist", http_code=223100)
        return [r[0] for r in self._verified(self.db.execute(
            f"SELECT user_id, {mac_ok('members', 'm')} FROM members m WHERE group_id=? ORDER BY user_id LIMIT ? OFFSET ?",
            (group_id, length, start)), "members")]

    def _groups_of(self, user_id: str) -> list[tuple]:
        return self._verified(self.db.execute(f"SELECT group_id, {mac_ok('members', 'm')} FROM members m WHERE "
                                              "user_id=? ORDER BY group_id", (user_id,)), "members")

    @_guarded
    def get_thumbnail(self, user_id: str) -> bytes | None:
        row = self.db.execute("SELECT f.face_id, i.thumbnail FROM faces f JOIN face_images i ON i.face_id=f.face_id "
                              "WHERE f.user_id=? AND i.thumbnail IS NOT NULL ORDER BY f.face_id LIMIT 1",
                              (user_id,)).fetchone()
        return self.sealer.open(row[1], "thumbnail", row[0], user_id) if row else None

    @_guarded
    def count(self, group_id: str | None = None) -> dict:
        self.sync()
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

    @_guarded
    def search(self, unit: np.ndarray, groups: list[str] | None = None, top_k: int = 1,
               user_id: str | None = None) -> list[dict]:
        """Best users by cosine: [{user_id, groups, face_token, cosine}], one row per user. The
        index is caught up with the database first, and every hit is read back from it, so a
        user whose deletion is committed is never returned. Under the write lock: the HTTP API
        writes from its threads while the camera loop searches, and FAISS must not be searched
        while a write resizes it."""
        if groups:
            for g in groups:
                check_id("group_id", g)
        if user_id is not None:
            # an empty id restricts to nobody, never to everybody (`--user "$ID"` with ID unset
            # matched whoever was at the door)
            check_id("user_id", user_id)
        with self._lock:
            gen = self.sync()
            key = allowed = None
            if groups:
                key = (tuple(sorted(set(groups))), gen)
                allowed = self._allowed_cache.get(key)
                if allowed is None:
                    # members of these groups at this generation; recomputed only after a write
                    self._allowed_cache = {key: self._allowed(key[0])}
                    allowed = self._allowed_cache[key]
                if len(allowed) == self.index.ntotal:
                    key = allowed = None   # the groups hold every face: a plain search is faster
            if user_id is not None:
                allowed_u = np.array([r[0] for r in self.db.execute(
                    "SELECT face_id FROM faces WHERE user_id=? AND model=?", (user_id, self.model))], np.int64)
                allowed = allowed_u if allowed is None else np.intersect1d(allowed, allowed_u)
                key = None
            # several faces per user: look a little deeper so top_k distinct users come back
            D, I = self.index.search(unit, top_k * self.max_faces_per_user, allowed, key)
            ids = [int(f) for f in I]
            with tx(self.db, "DEFERRED"):        # every hit read back from one snapshot
                rows = {fid: (uid, tok, info) for fid, uid, tok, info in self._verified(self.db.execute(
                    f"SELECT f.face_id, f.user_id, f.face_token, u.user_info, {mac_ok('faces', 'f')} AND "
                    f"{mac_ok('users', 'u')} FROM faces f JOIN users u ON u.user_id=f.user_id WHERE f.face_id IN "
                    f"({','.join('?' * len(ids))})", ids).fetchall(), "faces/users")} if ids else {}
                best: dict[str, dict] = {}
                for cos, fid in zip(D, ids):
                    row = rows.get(fid)
                    if row is None or row[0] in best:
                        continue      # deleted since the index was caught up: never returned
                    best[row[0]] = {"user_id": row[0], "face_token": row[1], "cosine": float(cos), "user_info": row[2]}
                out = self._by_mean_template(unit, best)[:top_k]
                for r in out:
                    r["groups"] = [g for (g,) in self._groups_of(r["user_id"]) if not groups or g in groups]
        return out

    def _by_mean_template(self, unit: np.ndarray, users: dict[str, dict]) -> list[dict]:
        """Users best first, a user with several faces scored by the cosine to their mean template
        (the normalised mean of their unit templates), not by their best face: on lfw-dev with 3 or
        5 enrolment photos that misses 7.1 / 3.9 % of people instead of 10.2 / 9.1 % at the same
        1 % false-positive rate (`edge eval multiphoto`, README "Several photos per user"). A user
        with one face scores as before; ``face_token`` stays the user's closest face."""
        if users:
            # the templates of the candidates that have more than one face, in one query
            rows = self.db.execute(
                f"SELECT face_id, user_id, template FROM faces WHERE model=? AND user_id IN (SELECT user_id FROM faces "
                f"WHERE model=? AND user_id IN ({','.join('?' * len(users))}) GROUP BY user_id HAVING COUNT(*) > 1)",
                (self.model, self.model, *users)).fetchall()
            faces: dict[str, list[np.ndarray]] = {}
            for fid, uid, blob in rows:
                plain = self.sealer.open(blob, "template", fid, uid)
                faces.setdefault(uid, []).append(_unit(np.frombuffer(plain, np.float32)))
            for uid, units in faces.items():
                users[uid]["cosine"] = float(_unit(np.mean(units, 0)) @ np.asarray(unit, np.float32).ravel())
        return sorted(users.values(), key=lambda r: -r["cosine"])

    @_guarded
    def face_unit(self, face_token: str) -> np.ndarray | None:
        """The unit template of one enrolled face (the v3 API's FACE_TOKEN input), or None."""
        with self._lock:
            rows = self._verified(self.db.execute(
                f"SELECT face_id, user_id, template, {mac_ok('faces', 'f')} FROM faces f WHERE face_token=? AND "
                "model=?", (face_token, self.model)).fetchall(), "faces")
            if not rows:
                return None
            fid, uid, blob = rows[0]
            return _unit(np.frombuffer(self.sealer.open(blob, "template", fid, uid), np.float32))

    # ---- migration ----------------------------------------------------------------------------
    @_guarded
    def export_templates(self, group_id: str | None = None) -> list[dict]:
        q = (f"SELECT f.user_id, f.face_token, f.model, f.template, f.face_id, {mac_ok('faces', 'f')} FROM faces f" +
             (" JOIN members m ON m.user_id=f.user_id WHERE m.group_id=?" if group_id else "") + " ORDER BY f.face_id")
        out = []
        for user_id, token, model, blob, fid in self._verified(self.db.execute(q, (group_id,) if group_id else ())
                                                               .fetchall(), "faces"):
            groups = [g for (g,) in self._groups_of(user_id)]
            info = self._verified(self.db.execute(f"SELECT user_info, {mac_ok('users', 'u')} FROM users u WHERE "
                                                  "user_id=?", (user_id,)), "users")
            if not info:
                raise sealing.Damaged(f"face {fid} belongs to user {user_id}, who has no row")
            plain = self.sealer.open(blob, "template", fid, user_id)   # an export is plain: README says so
            out.append({"user_id": user_id, "groups": groups, "user_info": info[0][0], "face_token": token,
                        "model": model, "feature": base64.b64encode(plain).decode()})
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

    @_guarded
    def faces_needing(self, model: str) -> list[tuple[int, bytes | None, str | None]]:
        """(face_id, crop JPEG, points JSON) of the faces whose template is not from ``model``."""
        out = []
        for fid, uid, crop, points in self.db.execute(
                "SELECT f.face_id, f.user_id, i.crop, i.points FROM faces f LEFT JOIN face_images i "
                "ON i.face_id=f.face_id WHERE f.model<>?", (model,)).fetchall():
            pts = self.sealer.open(points, "points", fid, uid)
            out.append((fid, self.sealer.open(crop, "crop", fid, uid), pts.decode() if pts else None))
        return out

    def replace_templates(self, updates: list[tuple[int, np.ndarray]]) -> None:
        """Store re-computed templates (current model) for existing faces, in one transaction."""
        with self._write() as (db, pending):
            for fid, vec in updates:
                row = db.execute("SELECT user_id FROM faces WHERE face_id=?", (fid,)).fetchone()
                if row is None:
                    continue            # deleted meanwhile
                blob = self.sealer.seal(np.asarray(vec, np.float32).tobytes(), "template", fid, row[0])
                db.execute("UPDATE faces SET template=?, model=? WHERE face_id=?", (blob, self.model, fid))
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
