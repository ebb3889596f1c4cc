"""At service start the crops (most of the database file, never read by recognition) are checked
on a thread of their own: the loop starts without reading them, and damage in them still sets
the library aside (README "Device state")."""
import sqlite3

import numpy as np
import pytest

from edge import errors as E
from edge.library import FaceLibrary, FaceRecord

MODEL, DIM = "m@1", 8


def _library(path, n=60):
    lib = FaceLibrary(path, MODEL, DIM)
    rng = np.random.default_rng(3)
    for i in range(n):
        # crops larger than a page, as real JPEG crops are: they fill face_images' overflow pages
        lib.user_add(f"u{i}", "g", FaceRecord(rng.standard_normal(DIM).astype(np.float32), MODEL,
                                              crop=rng.bytes(6000), thumbnail=rng.bytes(2000)))
    lib.close()


def _flip_page_header(path, table):
    c = sqlite3.connect(str(path))
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = c.execute("PRAGMA page_size").fetchone()[0]
    root = c.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (table,)).fetchone()[0]
    c.close()
    data = bytearray(path.read_bytes())
    off = (root - 1) * page
    data[off + 1: off + 8] = bytes(b ^ 0xA5 for b in data[off + 1: off + 8])
    path.write_bytes(bytes(data))


def test_sound_crops_check_in_the_background_and_leave_the_library_working(tmp_path):
    db = tmp_path / "db" / "face.db"
    _library(db)
    lib = FaceLibrary(db, MODEL, DIM)
    t = lib.check_structure()
    assert t is not None and t.name == "library-crops-check"
    t.join(30)
    assert not t.is_alive()
    assert lib.search(np.eye(DIM, dtype=np.float32)[0], ["g"])        # still answers
    lib.close()


@pytest.fixture
def damaged_crops(tmp_path):
    db = tmp_path / "db" / "face.db"
    _library(db)
    _flip_page_header(db, "face_images")
    lib = FaceLibrary(db, MODEL, DIM)
    yield lib
    lib.close()


def test_damaged_crops_found_after_start_set_the_library_aside(damaged_crops):
    lib = damaged_crops
    t = lib.check_structure()              # the core tables are sound: start goes on at once
    t.join(30)
    with pytest.raises(E.EdgeError) as e:
        lib.search(np.eye(DIM, dtype=np.float32)[0], ["g"])
    assert e.value.code == E.DB_OP_FAILED and "face_images" in e.value.message
    assert lib.store.damaged_copies()      # kept as found, for `edge library check`


def test_edge_library_check_still_checks_everything_at_once(damaged_crops):
    with pytest.raises(E.EdgeError) as e:
        damaged_crops.check_structure(full=True)
    assert e.value.code == E.DB_OP_FAILED


def test_damage_found_after_the_library_closed_is_logged_not_raised(tmp_path, caplog):
    """The service stopped while its crops check ran: the damage is still set aside and said in
    the log, with no traceback from a thread."""
    db = tmp_path / "db" / "face.db"
    _library(db)
    _flip_page_header(db, "face_images")
    lib = FaceLibrary(db, MODEL, DIM)
    lib.close()
    lib._check_crops()                     # what the thread runs, after the close
    assert "quick_check(face_images)" in caplog.text and "Traceback" not in caplog.text
    assert list(db.parent.glob("face.db.damaged-*"))    # kept as found; the next open says so
