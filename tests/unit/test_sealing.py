"""Templates encrypted at rest and the library's own integrity, without models or photos:
sealed values bound to their rows, a key only the recorded board can unwrap, the change log that
keeps several processes' indexes in step, the checksummed index cache, damaged and replaced
databases, and file modes under any umask. Templates here are random unit vectors: these tests
are about bytes on disk, not recognition (tests/test_library_faults.py has the real faces)."""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge import errors as E
from edge.library import FaceLibrary, FaceRecord, sealing
from edge.library.check import loose_permissions, reset

DEVICES = Path(__file__).resolve().parents[1] / "fixtures" / "devices"
MODEL, DIM = "synthetic@1", 128
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(range(256)) * 8   # stands for a crop: only its bytes matter
JPEG_HEAD = JPEG[:10]


@pytest.fixture
def board(tmp_path):
    """A copy of a recorded Raspberry Pi tree (identifiers are read from here, never from "/")."""
    root = tmp_path / "rpi4-root"
    shutil.copytree(DEVICES / "rpi4", root)
    return root


def vec(i):
    v = np.random.default_rng(i).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def rec(i):
    return FaceRecord(vec(i), MODEL, JPEG + bytes([i % 256]), {"five": [[1.0, 2.0]] * 5}, JPEG[:64])


def open_lib(home, root, **kw):
    return FaceLibrary(Path(home) / "db" / "face.db", MODEL, DIM, device_root=root, **kw)


def err(fn, code):
    with pytest.raises(E.EdgeError) as e:
        fn()
    assert e.value.code == code, e.value
    assert len(e.value.message) > 40            # a sentence saying what happened and what to do
    return e.value


def top(lib, i, groups=None):
    hits = lib.search(vec(i), groups, 1)
    return hits[0]["user_id"] if hits else None


# ---- sealing ------------------------------------------------------------------------------------------
def test_sealed_values_are_bound_to_their_row(tmp_path, board):
    s = sealing.create_key(tmp_path / "face.key", "lib1", board)
    blob = s.seal(b"template bytes", "template", 7, "alice")
    assert b"template bytes" not in blob
    assert s.open(blob, "template", 7, "alice") == b"template bytes"
    for other in [("template", 8, "alice"), ("template", 7, "bob"), ("crop", 7, "alice")]:
        with pytest.raises(sealing.Damaged):
            s.open(blob, *other)                       # moved to another row, user or column
    flipped = bytearray(blob)
    flipped[20] ^= 0x01
    with pytest.raises(sealing.Damaged):
        s.open(bytes(flipped), "template", 7, "alice")
    # another library's key (same board) opens nothing of this one
    s2 = sealing.create_key(tmp_path / "other.key", "lib2", board)
    with pytest.raises(sealing.Damaged):
        s2.open(blob, "template", 7, "alice")


def test_key_unwraps_on_its_board_only(tmp_path, board):
    path = tmp_path / "face.key"
    sealing.create_key(path, "lib1", board)
    text = path.read_text()
    assert "a3b4c5d6" not in text and "6f1e2d3c" not in text        # no identifier is stored
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert sealing.load_key(path, board).bound_to == ["cpu_serial", "machine_id"]
    # a reinstalled OS (new machine-id) keeps its library: the CPU serial alone still unwraps
    (board / "etc/machine-id").write_text("00112233445566778899aabbccddeeff\n")
    assert sealing.load_key(path, board).bound_to == ["cpu_serial"]
    # another board: refused with a clear error, never silently a new key
    e = err(lambda: sealing.load_key(path, DEVICES / "rk3399"), E.DB_OP_FAILED)
    assert "another board" in e.message and "edge export" in e.message
    # the same SD card in a Pi with another CPU serial (and the old machine-id): refused
    (board / "etc/machine-id").write_text((DEVICES / "rpi4/etc/machine-id").read_text())
    cpuinfo = board / "proc/cpuinfo"
    cpuinfo.write_text(cpuinfo.read_text().replace("a3b4c5d6", "a3b4c5d7"))
    (board / "proc/device-tree/serial-number").write_text("10000000a3b4c5d7")
    err(lambda: sealing.load_key(path, board), E.DB_OP_FAILED)


def test_no_identifier_is_an_error_not_a_weak_key(tmp_path, caplog):
    empty = tmp_path / "bare"
    (empty / "proc").mkdir(parents=True)
    err(lambda: sealing.create_key(tmp_path / "face.key", "lib1", empty), E.DEVICE_ID_EMPTY)
    assert not (tmp_path / "face.key").exists()
    # machine-id alone (a container, a PC read without root): works, and says what it is worth
    (empty / "etc").mkdir()
    (empty / "etc/machine-id").write_text("b7e3c1a9d2f04e6c8a5b3d1f9e7c2a40\n")
    with caplog.at_level("WARNING", "edge.library"):
        s = sealing.create_key(tmp_path / "face.key", "lib1", empty)
    assert s.bound_to == ["machine_id"] and "a copy of this disk" in caplog.text


# ---- the library on disk -------------------------------------------------------------------------------
def test_sd_card_read_shows_no_template_or_image(tmp_path, board):
    lib = open_lib(tmp_path / "home", board)
    for i in range(5):
        lib.user_add(f"u{i}", "staff", rec(i))
    lib.save_index()
    lib.close()
    db = tmp_path / "home/db"
    raw = b"".join(p.read_bytes() for p in db.iterdir() if p.is_file())
    assert JPEG_HEAD not in raw
    for i in range(5):
        assert vec(i).tobytes()[:16] not in raw
    # plain sqlite3 sees the rows, not what is in them
    rows = sqlite3.connect(str(db / "face.db")).execute("SELECT template FROM faces").fetchall()
    assert len(rows) == 5 and all(r[0][:1] == b"\x01" and len(r[0]) == 1 + 12 + DIM * 4 + 16 for r in rows)
    # the card in another board: refused, and nothing is set aside or rewritten
    before = (db / "face.db").read_bytes()
    e = err(lambda: open_lib(tmp_path / "home", DEVICES / "rk3399"), E.DB_OP_FAILED)
    assert "another board" in e.message
    assert (db / "face.db").read_bytes() == before and not list(db.glob("*.damaged-*"))


def test_change_log_keeps_every_process_in_step(tmp_path, board, monkeypatch):
    a = open_lib(tmp_path / "home", board)
    b = open_lib(tmp_path / "home", board)          # another connection: another process's view
    for i in range(6):
        a.user_add(f"u{i}", "staff", rec(i))
    assert top(b, 3) == "u3" and b.index.ntotal == 6
    a.user_delete("u3", "@ALL")
    assert top(b, 3) != "u3"                         # never returned once the deletion is committed
    a.user_update("u4", "staff", rec(40))            # faces replaced
    assert top(b, 40) == "u4" and top(b, 4) != "u4"
    a.group_add("night")
    a.user_copy("u5", "staff", "night")
    assert top(b, 5, ["night"]) == "u5"
    gen = b.sync()
    assert b.sync() == gen == a.generation            # nothing new: one query, same generation
    # a process further behind than the kept log rebuilds
    monkeypatch.setattr("edge.library.LOG_KEEP", 2)
    stale = open_lib(tmp_path / "home", board)
    for i in range(10, 80):
        a.user_add(f"v{i}", "staff", rec(i))
    assert a._meta_int("log_floor") > stale.index_generation
    assert top(stale, 50) == "v50" and stale.index.ntotal == a.index.ntotal
    for lib in (a, b, stale):
        lib.close()


def test_index_cache_is_trusted_only_when_the_database_vouches_for_it(tmp_path, board, caplog):
    lib = open_lib(tmp_path / "home", board)
    for i in range(20):
        lib.user_add(f"u{i}", "staff", rec(i))
    assert lib.save_index()
    lib.close()
    idx = tmp_path / "home/db/face.index"
    data = bytearray(idx.read_bytes())
    for k in range(64):                               # the vectors, size unchanged
        data[len(data) // 2 + k] ^= 0x5A
    idx.write_bytes(bytes(data))
    with caplog.at_level("INFO", "edge.library"):
        lib = open_lib(tmp_path / "home", board)
    assert "does not match the checksum" in caplog.text and "index rebuilt from the database" in caplog.text
    assert [top(lib, i) for i in range(20)] == [f"u{i}" for i in range(20)]
    lib.close()
    assert idx.read_bytes() != bytes(data)            # the rebuilt index replaced the bad file
    assert not list(idx.parent.glob(".face.index.*.tmp"))


def test_damaged_emptied_or_replaced_database_is_set_aside_and_refused(tmp_path, board):
    home = tmp_path / "home"
    db = home / "db/face.db"
    lib = open_lib(home, board)
    lib.user_add("u1", "staff", rec(1))
    lib.close()
    # emptied: noticed because the key says a library lived here
    db.write_bytes(b"")
    e = err(lambda: open_lib(home, board), E.DB_OP_FAILED)
    assert "empty" in e.message and Path(e.detail["damaged"]).stat().st_size == 0
    e = err(lambda: open_lib(home, board), E.DB_OP_FAILED)          # and stays refused
    assert "missing" in e.message and not db.exists() and len(e.detail["damaged"]) == 1
    # start over: the damaged copy and the old key are kept
    out = reset(db)
    assert Path(out["retired_key"]).exists() and out["damaged_copies"] == e.detail["damaged"]
    lib = open_lib(home, board)
    assert lib.count()["users"] == 0
    lib.user_add("u2", "staff", rec(2))
    lib.close()
    # replaced by another library's database (same board, another key)
    other = open_lib(tmp_path / "other", board)
    other.user_add("x", "staff", rec(9))
    other.close()
    shutil.copy(tmp_path / "other/db/face.db", db)
    e = err(lambda: open_lib(home, board), E.DB_OP_FAILED)
    assert "replaced" in e.message
    assert Path(e.detail["damaged"]).read_bytes() == (tmp_path / "other/db/face.db").read_bytes()
    # not a database at all
    reset(db)
    lib = open_lib(home, board)
    lib.close()
    db.write_bytes(b"this is not a database" * 500)
    e = err(lambda: open_lib(home, board), E.DB_OP_FAILED)
    assert "not a readable SQLite database" in e.message


def test_a_running_process_learns_that_another_set_the_database_aside(tmp_path, board):
    running = open_lib(tmp_path / "home", board)           # a camera loop, say
    running.user_add("u1", "staff", rec(1))
    assert running.sync() == running.generation
    other = open_lib(tmp_path / "home", board)
    other._set_aside("found damaged by another process")
    e = err(running.sync, E.DB_OP_FAILED)
    assert "set aside" in e.message
    err(lambda: running.search(vec(1)), E.DB_OP_FAILED)


def test_missing_key_refuses_and_keeps_the_database(tmp_path, board):
    lib = open_lib(tmp_path / "home", board)
    lib.user_add("u1", "staff", rec(1))
    lib.close()
    (tmp_path / "home/db/face.key").unlink()
    e = err(lambda: open_lib(tmp_path / "home", board), E.DB_OP_FAILED)
    assert "key" in e.message and "missing" in e.message
    assert (tmp_path / "home/db/face.db").exists()


def test_plain_library_is_sealed_in_place(tmp_path, board):
    """A library written by the previous release (raw float32, JPEG crops, a plain FAISS index)."""
    db = tmp_path / "home/db/face.db"
    make_plain_library(db, [(f"u{i}", vec(i), JPEG + bytes([i])) for i in range(30)])
    lib = open_lib(tmp_path / "home", board)
    assert [top(lib, i) for i in range(30)] == [f"u{i}" for i in range(30)]
    assert lib.faces_needing("another@1")[3][1] == JPEG + bytes([3])      # crops survive, decrypted
    lib.user_add("new", "staff", rec(99))
    fid = lib.db.execute("SELECT face_id FROM faces WHERE user_id='new'").fetchone()[0]
    assert fid > 40                                      # ids of deleted faces are never reused
    lib.close()
    raw = b"".join(p.read_bytes() for p in db.parent.iterdir() if p.is_file())
    assert JPEG_HEAD not in raw and vec(5).tobytes()[:16] not in raw
    assert not (db.parent / "face.json").exists()


LEGACY_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE groups (group_id TEXT PRIMARY KEY, created REAL NOT NULL);
CREATE TABLE users (user_id TEXT PRIMARY KEY, user_info TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE members (group_id TEXT NOT NULL REFERENCES groups(group_id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE, created REAL NOT NULL,
    PRIMARY KEY (group_id, user_id));
CREATE INDEX members_user ON members(user_id);
CREATE TABLE faces (face_id INTEGER PRIMARY KEY AUTOINCREMENT,
    face_token TEXT NOT NULL UNIQUE, user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    model TEXT NOT NULL, template BLOB NOT NULL, crop BLOB, points TEXT, thumbnail BLOB,
    created REAL NOT NULL);
CREATE INDEX faces_user ON faces(user_id);
"""


def make_plain_library(db: Path, people, model=MODEL, deleted_ids=10):
    """The previous release's format, as it wrote it (WAL, plain rows, face.index + face.json).
    ``deleted_ids`` faces were added and deleted first, as on a device in use."""
    db.parent.mkdir(parents=True, exist_ok=True)
    c = sqlite3.connect(str(db), isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.executescript(LEGACY_SCHEMA)
    c.execute("BEGIN")
    c.execute("INSERT INTO groups VALUES ('staff', 0)")
    c.execute("INSERT INTO users VALUES ('gone', '', 0, 0)")
    for k in range(deleted_ids):
        c.execute("INSERT INTO faces(face_token, user_id, model, template, created) VALUES (?, 'gone', ?, ?, 0)",
                  (f"gone{k}", model, b"\0" * 4 * DIM))
    c.execute("DELETE FROM users WHERE user_id='gone'")
    c.execute("DELETE FROM faces WHERE user_id='gone'")
    for uid, template, crop in people:
        c.execute("INSERT INTO users VALUES (?, '', 0, 0)", (uid,))
        c.execute("INSERT INTO members VALUES ('staff', ?, 0)", (uid,))
        c.execute("INSERT INTO faces(face_token, user_id, model, template, crop, points, thumbnail, created) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, 0)", (f"t_{uid}", uid, model, np.asarray(template, np.float32).tobytes(),
                                                     crop, json.dumps({"five": [[0, 0]] * 5}), crop[:64]))
    c.execute("INSERT INTO meta VALUES ('generation', ?)", (str(len(people) + 2),))
    c.execute("COMMIT")
    c.close()
    (db.parent / "face.index").write_bytes(b"plain faiss index" + np.asarray(people[0][1], np.float32).tobytes())
    (db.parent / "face.json").write_text(json.dumps({"generation": len(people) + 2}))


PERMS_SCRIPT = r"""
import sys
from pathlib import Path
import numpy as np
from edge.attendance import Attendance
from edge.config import AttendanceConfig
from edge.library import FaceLibrary, FaceRecord
from edge.outputs import JsonLines
from edge.outputs.webhook import Webhook
home = Path(sys.argv[1])
lib = FaceLibrary(home / "db/face.db", "m@1", 8, device_root=sys.argv[2])
lib.user_add("u", "g", FaceRecord(np.ones(8, np.float32), "m@1", b"crop", None, b"thumb"))
lib.save_index()
a = Attendance(home / "db/attendance.db", AttendanceConfig())
a.record("u", 1e9, 90.0)
j = JsonLines(home / "events/events.jsonl", max_mb=0.0001, keep=2)
for i in range(5):
    j.handle({"type": "decision", "user_id": "u", "pad": "x" * 100})   # rotates
w = Webhook("http://127.0.0.1:9/none", home / "queue/webhook.db", retry_max=0.1)
w.accept({"type": "decision"})
from edge.library.check import loose_permissions
import json
print(json.dumps({"open": sorted(p.name for p in home.rglob("*")), "loose": loose_permissions(home)}))
w.close(); j.close(); a.close(); lib.close()
"""


def test_files_are_owner_only_whatever_the_umask(tmp_path, board):
    """Through the Python API (no CLI umask) with umask 000: files 0600, directories 0700."""
    home = tmp_path / "home"
    r = subprocess.run([sys.executable, "-c", PERMS_SCRIPT, str(home), str(board)], capture_output=True, text=True,
                       preexec_fn=lambda: os.umask(0), timeout=120)
    assert r.returncode == 0, r.stderr
    while_open = json.loads(r.stdout)
    assert {"face.db", "face.db-wal", "face.db-shm", "face.key", "face.index", "attendance.db", "events.jsonl",
            "events.jsonl.1", "webhook.db", "webhook.db-wal"} <= set(while_open["open"]), while_open
    assert while_open["loose"] == []
    assert loose_permissions(home) == []



def test_a_flipped_byte_in_an_id_is_never_read_as_another_id(tmp_path, board):
    """Flip one bit in every place a user id is stored (its row, its membership, its face, the
    indexes, the MACs): no read returns a wrong id, and `edge library check` and the next write
    refuse the file."""
    from edge.library.check import check
    home = tmp_path / "home"
    lib = open_lib(home, board)
    names = [f"person_{i:04d}" for i in range(8)]
    for i, n in enumerate(names):
        lib.user_add(n, "staff", rec(i))
    lib.save_index()
    lib.close()
    saved = tmp_path / "saved"
    shutil.copytree(home / "db", saved)
    good = (saved / "face.db").read_bytes()
    target = names[5].encode()
    spots = [i for i in range(len(good)) if good.startswith(target, i)]
    assert len(spots) >= 6
    for spot in spots:
        shutil.rmtree(home / "db")
        shutil.copytree(saved, home / "db")
        bad = bytearray(good)
        bad[spot + len(target) - 1] ^= 0x01                 # person_0005 -> person_0004
        (home / "db/face.db").write_bytes(bytes(bad))
        seen, refused = set(), 0
        reads = [lambda lb: lb.get_user_list("staff"), lambda lb: [h["user_id"] for h in lb.search(vec(5), None, 2)],
                 lambda lb: [lb.get_user(names[5])["user_id"]], lambda lb: [u["user_id"] for u in lb.export_templates()]]
        for read in reads:
            try:
                lb = open_lib(home, board)
                seen |= set(read(lb))
                lb.close()
            except E.EdgeError as e:
                assert e.code in (E.DB_OP_FAILED, E.RECORD_UNEXIST), e
                refused += 1
                if e.code == E.DB_OP_FAILED:
                    break                                      # set aside: the rest refuse too
        assert seen <= set(names), (spot, seen - set(names))
        if (home / "db/face.db").exists():                     # nothing noticed it yet: check and write do
            lb = open_lib(home, board)
            with pytest.raises(E.EdgeError) as e:
                check(lb, home)
            assert e.value.code == E.DB_OP_FAILED
            with pytest.raises(E.EdgeError):
                lb.user_add("late", "staff", rec(99))
        assert not (home / "db/face.db").exists() and len(list((home / "db").glob("face.db.damaged-*"))) >= 1
