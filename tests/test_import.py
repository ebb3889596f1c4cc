"""Batch import: per-file report, zip input, and a SIGKILL midway leaves the library whole."""
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile

from edge import batch_import
from edge.engine import FaceEngine
from tests.conftest import LFW, PUBLIC, photos


def _folder(tmp_path):
    d = tmp_path / "import"
    d.mkdir()
    shutil.copy(photos("obama")[0], d / "obama-staff.jpg")
    shutil.copy(photos("biden")[0], d / "biden-staff.jpg")
    shutil.copy(photos("obama")[1], d / "obama-staff.png")          # same user+group: duplicate
    shutil.copy(PUBLIC / "edge_cases" / "obama_240p.jpg", d / "obama240-staff.jpg")
    shutil.copy(photos("rose_leslie")[0], d / "rose_leslie.jpg")    # no "-group" part
    shutil.copy(photos("kit_harington")[0], d / "kit-a-b.jpg")      # three parts
    (d / "notes-staff.jpg").write_bytes(b"this is not a picture")
    img = photos("obama")[0].read_bytes()
    (d / "cut-staff.jpg").write_bytes(img[: len(img) // 2])
    import cv2
    from edge import image as I
    wall = I.load(photos("obama")[0])[:150, :150]
    cv2.imwrite(str(d / "wall-staff.jpg"), wall)
    dark = (I.load(photos("lin_manuel_miranda")[0]).astype(float) * 0.1).astype("uint8")
    cv2.imwrite(str(d / "dark-staff.jpg"), dark)
    return d


def _check_report(rep):
    s = rep["summary"]
    assert {i["user_id"] for i in rep["imported"]} == {"obama", "biden", "obama240"}
    assert [i["file"] for i in rep["duplicate"]] == ["obama-staff.png"]
    assert sorted(i["file"] for i in rep["bad_name"]) == ["kit-a-b.jpg", "rose_leslie.jpg"]
    assert sorted(i["file"] for i in rep["bad_image"]) == ["cut-staff.jpg", "notes-staff.jpg"]
    assert [i["file"] for i in rep["no_face"]] == ["wall-staff.jpg"]
    assert [i["file"] for i in rep["poor_quality"]] == ["dark-staff.jpg"]
    assert "illumination" in rep["poor_quality"][0]["reason"]
    assert s["imported"] == 3


def test_import_folder_report(engine, tmp_path):
    rep = batch_import.run(engine, _folder(tmp_path)).to_dict()
    _check_report(rep)
    assert engine.identify(str(photos("obama")[2]), ["staff"])["user_id"] == "obama"


def test_import_zip(engine, tmp_path):
    d = _folder(tmp_path)
    z = tmp_path / "Face.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in sorted(d.iterdir()):
            zf.write(f, f"Face/{f.name}")
    _check_report(batch_import.run(engine, z).to_dict())


def _consistent(cfg):
    e = FaceEngine(cfg)
    db = e.library.db
    users = db.execute("SELECT COUNT(*) FROM users").fetchone()[0]
    faces = db.execute("SELECT COUNT(*) FROM faces").fetchone()[0]
    half = db.execute("SELECT COUNT(*) FROM users u WHERE NOT EXISTS (SELECT 1 FROM faces f WHERE f.user_id=u.user_id)"
                      " OR NOT EXISTS (SELECT 1 FROM members m WHERE m.user_id=u.user_id)").fetchone()[0]
    orphans = db.execute("SELECT COUNT(*) FROM faces f WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.user_id=f.user_id)").fetchone()[0]
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert half == 0 and orphans == 0
    assert e.library.index.ntotal == faces == users
    e.close()
    return users


def test_sigkill_midway_leaves_library_consistent(cfg, tmp_path):
    src = tmp_path / "many"
    src.mkdir()
    people = sorted(p for p in LFW.iterdir() if p.is_dir())[:60]
    for p in people:
        shutil.copy(sorted(p.iterdir())[0], src / f"{p.name}-lfw.jpg")
    env = dict(os.environ, EDGE_HOME=str(cfg.home), PYTHONPATH=os.getcwd())
    cmd = [sys.executable, "-m", "edge.cli", "--json", "--home", str(cfg.home), "import", str(src), "--quiet"]
    if cfg.models_dir:
        env["EDGE_MODELS_DIR"] = str(cfg.models_dir)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    db_path = cfg.db_path
    deadline = time.time() + 120
    n = 0
    while time.time() < deadline and proc.poll() is None:
        if db_path.exists():
            try:
                con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1)
                n = con.execute("SELECT COUNT(*) FROM faces").fetchone()[0]
                con.close()
            except sqlite3.Error:
                n = 0
            if n >= 10:
                break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _consistent(cfg)
    assert 10 <= done < len(people), done
    # running the import again finishes the job: the users already in are duplicates
    e = FaceEngine(cfg)
    rep = batch_import.run(e, src).to_dict()
    e.close()
    assert len(rep["duplicate"]) == done
    assert _consistent(cfg) == done + len(rep["imported"])
