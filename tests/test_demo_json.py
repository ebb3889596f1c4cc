"""`edge --json demo` prints one JSON object on stdout, as every command does (its table of
results went to stdout before the JSON, so the output did not parse); the table is on stderr."""
import json
import os
import shutil
import subprocess
import sys

from tests.conftest import PUBLIC


def test_demo_json_is_one_object(cfg, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(PUBLIC / "biden/biden_1.jpg", photos / "a_biden-1.jpg")       # the first two are enrolled
    shutil.copy(PUBLIC / "obama/obama_1.jpg", photos / "b_obama-1.jpg")
    shutil.copy(PUBLIC / "obama/obama_2.jpg", photos / "c_probe.jpg")
    env = dict(os.environ, EDGE_HOME=str(cfg.home), EDGE_MODELS_DIR=str(cfg.models_path))
    r = subprocess.run([sys.executable, "-m", "edge.cli", "--json", "demo", "--source", str(photos)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert [x["recognised"] for x in doc["results"]] == ["b_obama"]
    assert "c_probe.jpg" in r.stderr and "b_obama" in r.stderr
