"""The library's files and the checks made every time it is opened.

``db/face.db`` (SQLite, WAL) is the only source of truth. Beside it: ``face.key`` (the wrapped data
key, ``sealing``), ``face.index`` (a sealed cache of the search index, trusted only when the
database records its generation and checksum), ``face.lock`` (``flock``: creating, migrating,
setting aside and saving the index happen one process at a time; SQLite orders the writes).

Every open, cheaply: the database must be a SQLite file holding this library (the library id is
stored both in the database and in the key file, so a 0-byte, foreign or replaced ``face.db``
beside an existing key is noticed) and the key must unwrap on this board. A damaged database is
never written again: it is renamed aside (``face.db.damaged-<time>``, never deleted) and every
later open refuses with DB_OP_FAILED until the operator restores a backup or runs
``edge library reset``.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import time
import uuid
from pathlib import Path

from .. import errors as E
from ..files import private_dir, private_file
from . import sealing

log = logging.getLogger("edge.library")

SCHEMA_VERSION = "2"
BASE_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS groups (group_id TEXT PRIMARY KEY, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS users (user_id TEXT PRIMARY KEY, user_info TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS members (group_id TEXT NOT NULL REFERENCES groups(group_id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE, created REAL NOT NULL,
    PRIMARY KEY (group_id, user_id));
CREATE INDEX IF NOT EXISTS members_user ON members(user_id);
"""
# templates alone in their table, so rebuilding the index scans ~600 bytes a face, not the crops
FACES = """CREATE TABLE {name} (face_id INTEGER PRIMARY KEY AUTOINCREMENT,
    face_token TEXT NOT NULL UNIQUE, user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    model TEXT NOT NULL, template BLOB NOT NULL, created REAL NOT NULL)"""
IMAGES = """CREATE TABLE IF NOT EXISTS face_images (face_id INTEGER PRIMARY KEY
    REFERENCES {faces}(face_id) ON DELETE CASCADE, crop BLOB, points BLOB, thumbnail BLOB)"""
# one row per face whose index entry changed in a generation: +1 added (or replaced), -1 removed
CHANGES = """CREATE TABLE IF NOT EXISTS changes (generation INTEGER NOT NULL, face_id INTEGER NOT NULL,
    op INTEGER NOT NULL, PRIMARY KEY (generation, face_id)) WITHOUT ROWID"""
# The plain columns of these rows carry a keyed MAC (``Sealer.mac``) in ``macs``, kept by triggers
# that call ``edge_mac``, a function only edge's own connections have: reads verify what they
# return, and a row written by anything else (sqlite3 on a stolen card) does not verify.
MACS = {  # table: (key expression, columns)
    "groups": ("{p}group_id", ("group_id", "created")),
    "users": ("{p}user_id", ("user_id", "user_info", "created", "updated")),
    "members": ("{p}group_id || '/' || {p}user_id", ("group_id", "user_id", "created")),
    "faces": ("CAST({p}face_id AS TEXT)", ("face_id", "face_token", "user_id", "model", "created")),
}
MACS_TABLE = "CREATE TABLE IF NOT EXISTS macs (tbl TEXT NOT NULL, k TEXT NOT NULL, mac BLOB NOT NULL, " \
             "PRIMARY KEY (tbl, k)) WITHOUT ROWID"
CORE_TABLES = ("meta", "groups", "users", "members", "faces", "changes", "macs")
MIGRATE_CHUNK = 256           # faces per transaction when sealing a plain library (resumable)
LOCK_TIMEOUT = 120.0          # s to wait for another process creating or migrating the library


def mac_expr(table: str, prefix: str = "") -> str:
    """SQL for the MAC of a row of ``table`` (columns qualified with ``prefix``)."""
    cols = ", ".join(prefix + c for c in MACS[table][1])
    return f"edge_mac('{table}', {cols})"


def mac_ok(table: str, alias: str) -> str:
    """SQL: true when the row ``alias`` of ``table`` has its MAC."""
    key = MACS[table][0].format(p=alias + ".")
    return (f"(SELECT mac FROM macs WHERE tbl='{table}' AND k={key}) IS {mac_expr(table, alias + '.')}")


def mac_triggers(table: str) -> list[str]:
    key, cols = MACS[table][0], MACS[table][1]
    put = f"INSERT OR REPLACE INTO macs VALUES ('{table}', {key.format(p='NEW.')}, {mac_expr(table, 'NEW.')})"
    return [f"CREATE TRIGGER IF NOT EXISTS {table}_mac_i AFTER INSERT ON {table} BEGIN {put}; END",
            f"CREATE TRIGGER IF NOT EXISTS {table}_mac_u AFTER UPDATE OF {', '.join(cols)} ON {table} BEGIN "
            f"DELETE FROM macs WHERE tbl='{table}' AND k={key.format(p='OLD.')}; {put}; END",
            f"CREATE TRIGGER IF NOT EXISTS {table}_mac_d AFTER DELETE ON {table} BEGIN "
            f"DELETE FROM macs WHERE tbl='{table}' AND k={key.format(p='OLD.')}; END"]


def add_macs(db, tables) -> None:
    """Inside a transaction: MACs for the existing rows of ``tables`` and the triggers that keep them."""
    db.execute(MACS_TABLE)
    for t in tables:
        db.execute(f"INSERT OR REPLACE INTO macs SELECT '{t}', {MACS[t][0].format(p='')}, {mac_expr(t)} FROM {t}")
        for trig in mac_triggers(t):
            db.execute(trig)


def register(db, sealer: sealing.Sealer) -> None:
    db.create_function("edge_mac", -1, sealer.mac, deterministic=True)


def is_corruption(e: BaseException) -> bool:
    m = str(e).lower()
    return isinstance(e, sqlite3.DatabaseError) and any(
        s in m for s in ("malformed", "not a database", "file is encrypted", "corrupt"))


class Store:
    def __init__(self, db_path: Path, device_root=None):
        self.db_path = Path(db_path)
        self.dir = self.db_path.parent
        self.key_path = self.db_path.with_suffix(".key")
        self.index_path = self.db_path.with_suffix(".index")
        self.lock_path = self.db_path.with_suffix(".lock")
        self.device_root = device_root
        self.readonly = False
        self._writer_fd = None
        self.inode = None                # of the face.db this process opened

    # ---- locking -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, blocking: bool = True):
        """Exclusive ``flock`` on face.lock; yields False instead of waiting when not ``blocking``."""
        private_dir(self.dir)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            end = time.monotonic() + LOCK_TIMEOUT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    got = True
                    break
                except BlockingIOError:
                    if not blocking:
                        got = False
                        break
                    if time.monotonic() > end:
                        raise E.EdgeError(E.DB_OP_FAILED, f"another process has held {self.lock_path} for "
                                          f"{LOCK_TIMEOUT:.0f} s (migrating a large library?): try again") from None
                    time.sleep(0.02)
            yield got
        finally:
            os.close(fd)      # closing drops the lock

    def writer_turn(self) -> "_Turn":
        """Writers queue on an ``flock`` (woken the moment the previous one commits) rather than
        on SQLite's busy handler, which sleeps in growing steps: 4 writer processes then enrol as
        fast as one."""
        if self._writer_fd is None:
            self._writer_fd = os.open(self.db_path.with_suffix(".writer.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._writer_fd, fcntl.LOCK_EX)
        return _Turn(self._writer_fd)

    def close(self):
        if self._writer_fd is not None:
            os.close(self._writer_fd)
            self._writer_fd = None

    # ---- open ----------------------------------------------------------------------------------
    def open(self) -> tuple[sqlite3.Connection, sealing.Sealer]:
        private_dir(self.dir)
        sealer = None
        with self.lock():
            db = self._open_checked()
            try:
                state = _meta(db)
                ready = state.get("state") == "ready" and state.get("sealed") == "1" and not _is_v1(db)
                if not (ready and self.key_path.exists()):
                    sealer = self._key_for(db, state)
                    if _is_v1(db) or _meta(db).get("state") == "migrating":
                        if self.readonly:
                            raise E.EdgeError(E.DB_OP_FAILED, "the disk is full: this plain library cannot be "
                                              f"sealed now; free some space under {self.dir}")
                        self._migrate(db, sealer)
            except BaseException:
                db.close()
                raise
        if sealer is None:       # the slow part (scrypt) outside the lock: opens run side by side
            try:
                sealer = sealing.load_key(self.key_path, self.device_root)
            except BaseException:
                db.close()
                raise
            register(db, sealer)
        self.inode = os.stat(self.db_path).st_ino
        return db, sealer

    def moved(self) -> bool:
        """True when face.db is no longer the file this process opened (another process set it
        aside as damaged, or it was replaced): one stat."""
        try:
            return os.stat(self.db_path).st_ino != self.inode
        except FileNotFoundError:
            return True

    def _connect(self, uri: str | None = None) -> sqlite3.Connection:
        db = sqlite3.connect(uri or str(self.db_path), uri=uri is not None, check_same_thread=False,
                             isolation_level=None, timeout=30)
        if uri is None:
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA secure_delete=ON")    # a deleted user's bytes are overwritten, not left free
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def _open_checked(self) -> sqlite3.Connection:
        """A connection to a database that is this library's, or a new one; raises otherwise."""
        key = self.key_path.exists()
        if not self.db_path.exists():
            if key:
                raise self.missing()
            return self._create()
        size = self.db_path.stat().st_size
        if size == 0:
            if key or self.index_path.exists() or self.db_path.with_suffix(".json").exists():
                raise self.set_aside("it is empty (0 bytes) although this library has a key and an index")
            self.db_path.unlink()           # an empty file and nothing else: a first open that died
            return self._create()
        private_file(self.db_path)          # tighten files an older version left 0644
        db = None
        try:
            db = self._connect()
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as e:
            if db is not None:
                db.close()
            if isinstance(e, sqlite3.OperationalError):
                if "disk i/o" in str(e).lower() or "full" in str(e).lower():
                    return self._open_readonly(e)
                raise
            raise self.set_aside(f"it is not a readable SQLite database ({e})") from None
        if not tables:
            db.close()
            if key:
                raise self.set_aside("it holds no tables although this library has a key")
            self.db_path.unlink()
            for suffix in ("-wal", "-shm"):
                Path(f"{self.db_path}{suffix}").unlink(missing_ok=True)
            return self._create()
        if not {"meta", "users", "faces"} <= tables:
            db.close()
            raise self.set_aside(f"it is not an edge face library (tables: {', '.join(sorted(tables))})")
        try:
            lib_id = _meta(db).get("library_id")
        except sqlite3.DatabaseError as e:
            db.close()
            raise self.set_aside(f"its library record cannot be read ({e})") from None
        if key:
            want = sealing.read_key_file(self.key_path)["library_id"]
            if lib_id != want:
                db.close()
                raise self.set_aside(f"it holds library {lib_id or '(none: an unsealed library)'} but the key "
                                     f"beside it belongs to library {want}: the file was replaced")
        return db

    def _open_readonly(self, err) -> sqlite3.Connection:
        """The disk is full and no process has the database open (SQLite cannot create its shared-
        memory file): read the database file alone, which is exact only when no write-ahead log
        holds commits; then refuse writes."""
        wal = Path(f"{self.db_path}-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise E.EdgeError(E.DB_OP_FAILED, f"cannot open {self.db_path} ({err}): the disk is full; free some "
                              "space under " + str(self.dir)) from None
        log.warning("the disk is full: the face library is open read-only (%s)", err)
        self.readonly = True
        return self._connect(f"file:{self.db_path}?immutable=1")

    def _create(self) -> sqlite3.Connection:
        """A new, empty library. The database records its library id before the key file exists,
        so a crash in between leaves an unsealed empty library whose key is simply made again."""
        private_file(self.db_path)
        db = self._connect()
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("BEGIN IMMEDIATE")
            for stmt in _statements(BASE_TABLES + ";" + FACES.format(name="faces") + ";" +
                                    "CREATE INDEX faces_user ON faces(user_id);" + IMAGES.format(faces="faces") +
                                    ";" + CHANGES):
                db.execute(stmt)
            db.execute(MACS_TABLE)
            for t in MACS:
                for trig in mac_triggers(t):
                    db.execute(trig)
            lib_id = uuid.uuid4().hex
            set_meta(db, library_id=lib_id, schema=SCHEMA_VERSION, state="ready", sealed="0", generation="0",
                 log_floor="0")
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            db.close()
            raise
        log.info("new face library %s at %s", lib_id, self.db_path)
        return db

    def _key_for(self, db, state: dict) -> sealing.Sealer:
        lib_id = state.get("library_id")
        if self.key_path.exists():
            sealer = sealing.load_key(self.key_path, self.device_root)
        elif state.get("sealed") == "1":
            raise E.EdgeError(E.DB_OP_FAILED, f"the library key {self.key_path} is missing, so the sealed "
                              f"templates in {self.db_path} cannot be read: restore face.key from the backup you "
                              "took with the library, or restore the library from an export")
        else:
            if self.readonly:
                raise E.EdgeError(E.DB_OP_FAILED, "the disk is full: the library cannot be sealed now")
            if not lib_id:          # a plain library from before encryption: give it an id first
                lib_id = uuid.uuid4().hex
                with tx(db):
                    set_meta(db, library_id=lib_id)
            sealer = sealing.create_key(self.key_path, lib_id, self.device_root)
        register(db, sealer)
        if state.get("sealed") != "1" and not self.readonly:
            with tx(db):
                if _is_v1(db):
                    self._begin_migration(db)
                set_meta(db, sealed="1")
        return sealer

    # ---- migration of a plain (pre-encryption) library ----------------------------------------------
    def _begin_migration(self, db):
        """Inside a transaction: the new tables beside the old one; faces move in chunks."""
        seq = db.execute("SELECT seq FROM sqlite_sequence WHERE name='faces'").fetchone()
        db.execute(FACES.format(name="faces_new"))
        db.execute(IMAGES.format(faces="faces_new"))
        db.execute(CHANGES)
        add_macs(db, ("groups", "users", "members"))
        set_meta(db, state="migrating", schema=SCHEMA_VERSION, migration_seq=str(seq[0] if seq else 0))
        # the old index file holds plain templates; it is only a cache
        for p in (self.index_path, self.db_path.with_suffix(".json")):
            p.unlink(missing_ok=True)

    def _migrate(self, db, sealer: sealing.Sealer):
        total = db.execute("SELECT COUNT(*) FROM faces").fetchone()[0]
        if total:
            log.warning("sealing the face library: encrypting %d faces in place (resumable)", total)
        done = 0
        while True:
            with tx(db):
                rows = db.execute("SELECT face_id, face_token, user_id, model, template, crop, points, thumbnail, "
                                  "created FROM faces ORDER BY face_id LIMIT ?", (MIGRATE_CHUNK,)).fetchall()
                for fid, token, uid, model, tpl, crop, points, thumb, created in rows:
                    db.execute("INSERT INTO faces_new VALUES (?, ?, ?, ?, ?, ?)",
                               (fid, token, uid, model, sealer.seal(tpl, "template", fid, uid), created))
                    if crop is not None or points is not None or thumb is not None:
                        db.execute("INSERT INTO face_images VALUES (?, ?, ?, ?)",
                                   (fid, sealer.seal(crop, "crop", fid, uid),
                                    sealer.seal(points.encode() if isinstance(points, str) else points,
                                                "points", fid, uid),
                                    sealer.seal(thumb, "thumbnail", fid, uid)))
                if rows:
                    db.execute(f"DELETE FROM faces WHERE face_id IN ({','.join('?' * len(rows))})",
                               [r[0] for r in rows])
            done += len(rows)
            if len(rows) < MIGRATE_CHUNK:
                break
        with tx(db):
            seq = int(_meta(db).get("migration_seq", 0))
            db.execute("DROP TABLE faces")
            db.execute("ALTER TABLE faces_new RENAME TO faces")
            db.execute("CREATE INDEX IF NOT EXISTS faces_user ON faces(user_id)")
            add_macs(db, ("faces",))
            db.execute("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name='faces'", (seq,))
            gen = int(_meta(db).get("generation", 0)) + 1
            set_meta(db, state="ready", generation=str(gen), log_floor=str(gen))
            db.execute("DELETE FROM meta WHERE key='migration_seq'")
        log.warning("face library sealed: %d faces encrypted", done)
        # old plain pages freed before this version (no secure_delete then) are dropped by VACUUM
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.execute("VACUUM")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as e:
            log.warning("VACUUM after sealing failed (%s): pages freed by older versions may still hold plain "
                        "data until `edge library check --vacuum` succeeds", e)

    # ---- damage ----------------------------------------------------------------------------------
    def set_aside(self, why: str) -> E.EdgeError:
        """Rename the damaged database (and its WAL) aside, never deleting it; the error to raise."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = self.dir / f"{self.db_path.name}.damaged-{stamp}"
        n = 1
        while aside.exists():
            n += 1
            aside = self.dir / f"{self.db_path.name}.damaged-{stamp}-{n}"
        moved = False
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.db_path}{suffix}")
            with contextlib.suppress(FileNotFoundError):
                os.rename(src, f"{aside}{suffix}")
                moved = moved or suffix == ""
        log.error("face library %s is damaged (%s): moved to %s", self.db_path, why, aside)
        where = f"it was moved to {aside} (kept, never deleted)" if moved else "another process set it aside"
        return E.EdgeError(E.DB_OP_FAILED, f"the face library {self.db_path} is damaged: {why}; {where} and "
                           "nothing more is written to it. Restore a backup (README: Device state) or start an "
                           "empty library with `edge library reset`", damaged=str(aside) if moved else None)

    def damaged_copies(self) -> list[str]:
        return sorted(str(p) for p in self.dir.glob(f"{self.db_path.name}.damaged-*")
                      if not p.name.endswith(("-wal", "-shm")))

    def missing(self) -> E.EdgeError:
        copies = self.damaged_copies()
        return E.EdgeError(E.DB_OP_FAILED, f"the face library database {self.db_path} is missing although its key "
                           f"{self.key_path.name} is there" + (f" (damaged copies kept: {', '.join(copies)})"
                                                               if copies else "") +
                           ": nothing is written until you restore a backup or start an empty library with "
                           "`edge library reset`", damaged=copies)

    def reset(self) -> dict:
        """Retire the key of a library whose database is gone or set aside, so that the next open
        makes a new, empty library. Refuses while the database is there."""
        with self.lock():
            if self.db_path.exists() and self.db_path.stat().st_size > 0:
                raise E.EdgeError(E.PARARM_ERROR, f"{self.db_path} is there: `edge library reset` only starts over "
                                  "after a damaged database was set aside (delete users or groups instead; run "
                                  "`edge library check` to test it)")
            kept = self.damaged_copies()
            retired = None
            if self.key_path.exists():
                retired = self.dir / f"{self.key_path.name}.retired-{time.strftime('%Y%m%dT%H%M%S')}"
                os.rename(self.key_path, retired)      # it still opens the damaged copies on this board
            self.index_path.unlink(missing_ok=True)
            self.db_path.unlink(missing_ok=True)
        return {"reset": True, "retired_key": str(retired) if retired else None, "damaged_copies": kept}

    def check_structure(self, db, tables=None, integrity: bool = False) -> list[str]:
        """``PRAGMA quick_check`` (or ``integrity_check``: also every index against its table, which
        finds a flipped byte in any id) of the whole file or of some tables; [] when sound."""
        pragma = "integrity_check" if integrity else "quick_check"
        out = []
        for t in tables or [None]:
            rows = [r[0] for r in db.execute(f"PRAGMA {pragma}" if t is None else f"PRAGMA {pragma}({t})")]
            out += [r for r in rows if r != "ok"]
        return out


class _Turn:
    def __init__(self, fd):
        self.fd = fd

    def release(self):
        fcntl.flock(self.fd, fcntl.LOCK_UN)


def _statements(script: str):
    return [s.strip() for s in script.split(";") if s.strip()]


def _meta(db) -> dict:
    return dict(db.execute("SELECT key, value FROM meta").fetchall())


def set_meta(db, **kv):
    for k, v in kv.items():
        db.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                   (k, v))


def _is_v1(db) -> bool:
    cols = {r[1] for r in db.execute("PRAGMA table_info(faces)")}
    return "crop" in cols


@contextlib.contextmanager
def tx(db, kind: str = "IMMEDIATE"):
    """A transaction: IMMEDIATE to write, DEFERRED for one consistent snapshot of several reads."""
    db.execute(f"BEGIN {kind}")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
