"""Scores that mean false-accept rates: the pack's calibrated card reaches existing installs, and
`edge models calibrate` computes a calibration from a folder of real faces."""
import json
import shutil

import numpy as np
import pytest

from edge import config as C
from edge.cli import main
from edge.engine import FaceEngine
from edge.models import build as B
from edge.models import cards
from tests.conftest import PUBLIC


@pytest.fixture
def pack(models_dir, tmp_path):
    md = tmp_path / "models"
    shutil.copytree(models_dir, md)
    return md


def test_build_rewrites_a_card_whose_recipe_changed_without_converting_again(pack):
    path = cards.card_path(pack, "dlib_resnet")
    old = json.loads(path.read_text())
    del old["metric"]["calibration"]              # a card written before the calibration existed
    path.write_text(json.dumps(old))
    onnx = {p.name: p.stat().st_mtime_ns for p in pack.glob("*.onnx")}
    B.build(pack, quiet=True)
    card = json.loads(path.read_text())
    assert card["metric"]["calibration"] == B.RECIPE["dlib_resnet"]["metric"]["calibration"]
    assert {p.name: p.stat().st_mtime_ns for p in pack.glob("*.onnx")} == onnx   # nothing converted


def test_a_site_calibration_survives_a_build(pack):
    path = cards.card_path(pack, "dlib_resnet")
    card = json.loads(path.read_text())
    site = dict(card["metric"]["calibration"]["flip"], by="site", date="2026-01-01")
    card["metric"]["calibration"]["flip"] = site
    path.write_text(json.dumps(card))
    B.build(pack, quiet=True)
    after = json.loads(path.read_text())["metric"]["calibration"]
    assert after["flip"] == site and after["single"]["by"] == "recipe"


def test_scores_are_read_from_the_card(pack, tmp_path):
    """Moving the card's 80 anchor moves the score of the very same pair: nothing is hard-coded."""
    a, b = str(PUBLIC / "obama" / "obama_1.jpg"), str(PUBLIC / "obama" / "obama_2.jpg")
    cfg = C.load(home=tmp_path / "h1", models_dir=pack)
    e = FaceEngine(cfg, open_library=False)
    r = e.compare(a, b)
    scale = e.embedder.scale
    assert scale.calibrated and r["score"] == pytest.approx(scale.score(r["cosine"]), abs=0.01)
    path = cards.card_path(pack, "dlib_resnet")
    card = json.loads(path.read_text())
    card["metric"]["calibration"]["flip"]["anchors"] = [[-1.0, 0.0], [r["cosine"], 80.0], [1.0, 100.0]]
    path.write_text(json.dumps(card))
    e2 = FaceEngine(C.load(home=tmp_path / "h2", models_dir=pack), open_library=False)
    assert e2.compare(a, b)["score"] == pytest.approx(80.0, abs=0.02)


def test_calibrate_a_model_on_a_folder_of_people(pack, lfw_subset, tmp_path, capsys):
    """60 lfw-dev people x 6 photos (17,700 protocol impostor pairs): the measured points put the
    documented share of impostors above them; the card is used by the next engine."""
    folder, _, home = lfw_subset
    assert main(["--json", "--home", str(home), "models", "calibrate", "dlib_resnet", str(folder),
                 "--models-dir", str(pack), "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    cal = out["calibration"]
    # 60 x 5 probes x 59 other people = 17,700 pairs, less any photo without a face
    assert out["variant"] == "flip" and cal["by"] == "site" and 17_000 < cal["impostor_pairs"] <= 17_700
    pts = cal["points"]
    assert pts["50"]["how"] == "measured" and pts["60"]["how"] == "measured"
    for s in ("50", "60"):
        assert pts[s]["protocol_far"] <= pts[s]["far"] and pts[s]["protocol_far"] >= 0.9 * pts[s]["far"]
    assert pts["90"]["how"] in ("measured, all pairs", "fitted")
    cos = [a[0] for a in cal["anchors"]]
    assert all(np.diff(cos) > 0)
    # a small folder lands near the pack's lfw-dev calibration at 1e-2 (same faces, fewer of them)
    pack_60 = dict(map(tuple, B.RECIPE["dlib_resnet"]["metric"]["calibration"]["flip"]["anchors"]))
    assert abs(pts["60"]["cosine"] - next(c for c, s in pack_60.items() if s == 60.0)) < 0.01
    card = json.loads(cards.card_path(pack, "dlib_resnet").read_text())
    assert card["metric"]["calibration"]["flip"]["anchors"] == cal["anchors"]
    e = FaceEngine(C.load(home=tmp_path / "h3", models_dir=pack), open_library=False)
    assert e.embedder.scale.cosine(60.0) == pytest.approx(pts["60"]["cosine"])


def test_calibrate_refuses_a_folder_that_cannot_resolve_a_rate(pack, tmp_path, capsys):
    folder = tmp_path / "few"
    for person in ("biden", "obama"):
        (folder / person).mkdir(parents=True)
        for f in sorted((PUBLIC / person).iterdir())[:2]:
            (folder / person / f.name).symlink_to(f)
    assert main(["--json", "--home", str(tmp_path / "h"), "models", "calibrate", "dlib_resnet", str(folder),
                 "--models-dir", str(pack), "--quiet", "--no-cache"]) == 1
    err = json.loads(capsys.readouterr().out)
    assert err["errno"] == -1002 and "impostor pairs" in err["msg"]
    assert main(["--json", "--home", str(tmp_path / "h"), "models", "calibrate", "dlib_resnet",
                 str(tmp_path / "nowhere"), "--models-dir", str(pack)]) == 1
    assert json.loads(capsys.readouterr().out)["errno"] == -1007
