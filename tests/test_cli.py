"""The `edge` command: JSON out, seed error codes, exit status."""
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import photos


@pytest.fixture
def edge(cfg):
    env = dict(os.environ, EDGE_HOME=str(cfg.home), EDGE_MODELS_DIR=str(cfg.models_dir))

    def run(*args, ok=True):
        p = subprocess.run([sys.executable, "-m", "edge.cli", "--json", *args], env=env,
                           capture_output=True, text=True, timeout=300)
        assert (p.returncode == 0) == ok, (p.returncode, p.stdout, p.stderr)
        return json.loads(p.stdout)
    return run


def test_compare_json(edge):
    r = edge("compare", str(photos("obama")[0]), str(photos("obama")[1]))
    assert set(r) >= {"score", "threshold", "match"}
    assert 80 <= r["score"] <= 100 and r["match"] is True and r["threshold"] == 80
    r = edge("compare", str(photos("obama")[0]), str(photos("rose_leslie")[0]))
    assert r["score"] < 80 and r["match"] is False


def test_enrol_identify_manage(edge):
    edge("user", "add", str(photos("biden")[0]), "--user", "biden", "--group", "staff", "--info", "Joe")
    edge("user", "add", str(photos("obama")[0]), "--user", "obama", "--group", "staff")
    r = edge("identify", str(photos("biden")[1]), "--group", "staff", "--top-k", "2")
    assert r["user_id"] == "biden" and len(r["user_list"]) == 2
    assert edge("user", "list", "--group", "staff")["user_id_list"] == ["biden", "obama"]
    assert edge("count")["users"] == 2
    d = edge("detect", str(photos("obama")[0]))
    f = d["face_list"][0]
    assert d["face_num"] == 1 and len(f["landmark"]) == 5 and set(f["angle"]) == {"yaw", "pitch", "roll"}
    assert 0 <= f["quality"]["illumination"] <= 255 and 0 <= f["quality"]["blur"] <= 1
    err = edge("user", "delete", "--user", "nobody", "--group", "staff", ok=False)
    assert err["errno"] == -1005 and err["error"] == "RECORD_UNEXIST"
    err = edge("group", "add", "staff", ok=False)
    assert err["errno"] == -1006
    err = edge("user", "add", str(photos("obama")[0]), "--user", "bad-name", "--group", "staff", ok=False)
    assert err["errno"] == -1002
    exp = edge("export")
    assert len(exp["faces"]) == 2


def test_errors_for_missing_and_bad_images(edge, tmp_path):
    err = edge("compare", str(tmp_path / "nope.jpg"), str(photos("obama")[0]), ok=False)
    assert err["errno"] == -1007
    bad = tmp_path / "x.jpg"
    bad.write_text("hello")
    assert edge("detect", str(bad), ok=False)["errno"] == -15


def test_tampered_model_is_refused(cfg, tmp_path, edge):
    import shutil
    md = tmp_path / "models"
    shutil.copytree(cfg.models_dir, md)
    with open(md / "facemesh.onnx", "r+b") as f:
        f.seek(5000)
        f.write(b"\x00\x01\x02\x03")
    env = dict(os.environ, EDGE_HOME=str(cfg.home), EDGE_MODELS_DIR=str(md))
    p = subprocess.run([sys.executable, "-m", "edge.cli", "--json", "detect", str(photos("obama")[0])],
                       env=env, capture_output=True, text=True)
    err = json.loads(p.stdout)
    assert p.returncode == 1 and err["errno"] == -4 and "sha256" in err["msg"]
    (md / "dlib_resnet.onnx").unlink()
    p = subprocess.run([sys.executable, "-m", "edge.cli", "--json", "compare", str(photos("obama")[0]),
                        str(photos("obama")[1])], env=env, capture_output=True, text=True)
    assert json.loads(p.stdout)["errno"] == -4


def test_library_commands_work_without_the_model_pack(edge, cfg, tmp_path):
    """Listing, exporting and deleting need no models: a missing or damaged model pack must never
    stop a user's data from being deleted."""
    edge("user", "add", str(photos("biden")[0]), "--user", "biden", "--group", "staff")
    edge("user", "add", str(photos("obama")[0]), "--user", "obama", "--group", "staff")
    env = dict(os.environ, EDGE_HOME=str(cfg.home), EDGE_MODELS_DIR=str(tmp_path / "no-models"))

    def bare(*args, ok=True):
        p = subprocess.run([sys.executable, "-m", "edge.cli", "--json", *args], env=env, capture_output=True,
                           text=True, timeout=120)
        assert (p.returncode == 0) == ok, (p.stdout, p.stderr)
        return json.loads(p.stdout)

    assert bare("identify", str(photos("biden")[1]), ok=False)["errno"] == -4      # recognition needs them
    assert bare("count") == {"users": 2, "faces": 2, "indexed": 2}
    assert bare("user", "list", "--group", "staff")["user_id_list"] == ["biden", "obama"]
    assert len(bare("export")["faces"]) == 2
    bare("user", "delete", "--user", "biden")
    assert bare("user", "get", "--user", "biden", ok=False)["errno"] == -1005
    assert bare("group", "list")["group_id_list"] == ["staff"]
    # and the library is whole for the full engine afterwards
    r = edge("identify", str(photos("obama")[1]))
    assert r["user_list"][0]["user_id"] == "obama" and edge("count")["users"] == 1
