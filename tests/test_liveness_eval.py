"""`edge eval liveness DIR` on the published samples as they are (EXIF orientation 6 and all):
at NORMAL the live face passes and both attacks are refused; the command reports APCER, BPCER
and ACER per level with counts. The full set and its figures come from the command
(README "Liveness"); this keeps to three images."""
import json
import shutil

import cv2

from tests.conftest import SHARED


def _eval(argv, capsys):
    from edge.cli import main

    code = main(["--json", "eval", "liveness", *argv, "--quiet"])
    return code, json.loads(capsys.readouterr().out)


def test_published_samples_at_normal(tmp_path, antispoof_models, capsys, monkeypatch):
    monkeypatch.setenv("EDGE_MODELS_DIR", str(antispoof_models))
    (tmp_path / "real").mkdir()
    (tmp_path / "spoof").mkdir()
    shutil.copyfile(SHARED / "spoof" / "image_T1.jpg", tmp_path / "real" / "image_T1.jpg")
    for f in ("image_F1.jpg", "image_F2.jpg"):
        shutil.copyfile(SHARED / "spoof" / f, tmp_path / "spoof" / f)
    code, out = _eval([str(tmp_path / ""), "--per-sample", "--plot", str(tmp_path / "plot.png")], capsys)
    assert code == 0, out
    assert cv2.imread(out["plot"]).shape == (420, 820, 3)
    verdicts = {r["sample"]: r["NORMAL"] for r in out["per_sample"]}
    assert verdicts == {"real/image_T1.jpg": True, "spoof/image_F1.jpg": False, "spoof/image_F2.jpg": False}
    normal = out["levels"]["NORMAL"]
    assert (normal["APCER"], normal["BPCER"], normal["ACER"]) == (0.0, 0.0, 0.0)
    assert normal["attacks"] == 2 and normal["bona_fide"] == 1 and normal["thresholds"] == {"rgb": 0.5}
    # NONE refuses nothing: both attacks accepted
    assert out["levels"]["NONE"]["APCER"] == 100.0 and out["levels"]["NONE"]["attacks_accepted"] == 2
    scores = {r["sample"]: r["score"] for r in out["per_sample"]}
    assert scores["real/image_T1.jpg"] > 0.9 and max(scores["spoof/image_F1.jpg"], scores["spoof/image_F2.jpg"]) < 0.1


def test_bad_folders_are_json_errors(tmp_path, antispoof_models, capsys, monkeypatch):
    monkeypatch.setenv("EDGE_MODELS_DIR", str(antispoof_models))
    code, out = _eval([str(tmp_path / "missing")], capsys)
    assert code == 1 and out["errno"] == -1007
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    code, out = _eval([str(tmp_path)], capsys)
    assert code == 0 and out["no_face"] == ["real/broken.jpg"]          # reported, not a traceback
    code, out = _eval([str(tmp_path), "--mode", "rgb+sonar"], capsys)
    assert code == 1 and out["errno"] == -1002
