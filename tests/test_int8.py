"""int8 models (edge models quantize) on real faces: selected by one key, the same identities as
float on the public photos, templates close to float's. The held-out accuracy figure (lfw-dev
rank-1 and FAR, float vs int8) is `edge bench recognition --int8`'s, not a test's: the
calibration photos here are the public fixtures themselves."""
import copy
import json

import pytest

from edge import config as C
from edge import image as I
from edge.models import cards
from edge.models.quantize import quantize
from tests.conftest import IDENTITIES, PUBLIC, photos
from tests.helpers import SMALL_LIBRARY_THRESHOLD


@pytest.fixture(scope="module")
def float_cfg(models_dir, tmp_path_factory):
    return C.load(home=tmp_path_factory.mktemp("int8"), models_dir=models_dir)


@pytest.fixture(scope="module")
def int8_cfg(float_cfg):
    quantize(float_cfg, PUBLIC, progress=False)
    cfg = copy.deepcopy(float_cfg)
    cfg.precision = "int8"
    return cfg


def test_one_key_selects_every_int8_card(int8_cfg, float_cfg):
    from edge.faces import FaceAnalyzer

    an = FaceAnalyzer(int8_cfg)
    ids = [an.detector.card["id"], an.mesh.card["id"], an.embedder.card["id"]]
    assert ids == ["blazeface_full_int8", "facemesh_int8", "dlib_resnet_int8"]
    for card in (an.detector.card, an.mesh.card, an.embedder.card):
        q = card["quantized"]
        src = cards.read_card(cards.card_path(float_cfg.models_path, q["from"]))
        assert q["format"] == "QDQ" and q["per_channel"] and q["from_sha256"] == src["sha256"]
        assert cards.verify(card)                      # the int8 file matches its own card
    # int8 templates are another model: a library enrolled with float re-embeds, never mixes
    assert an.embedder.model.startswith("dlib_resnet_int8@")


def test_quantize_again_is_a_no_op(float_cfg, int8_cfg):
    f = float_cfg.models_path / "dlib_resnet_int8.onnx"
    before = f.stat().st_mtime_ns
    quantize(float_cfg, PUBLIC, progress=False)
    assert f.stat().st_mtime_ns == before


def test_the_int8_card_follows_the_float_cards_calibration(float_cfg, int8_cfg):
    """The float card calibrated after quantising (an older int8 card: the old score mapping)
    is followed by the next `edge models quantize` without quantising again."""
    md = float_cfg.models_path
    path = cards.card_path(md, "dlib_resnet_int8")
    old = json.loads(path.read_text())
    stale = dict(old, metric={"kind": "cosine", "same_person_cosine": 0.9103})
    path.write_text(json.dumps(stale))
    f = md / "dlib_resnet_int8.onnx"
    before = f.stat().st_mtime_ns
    quantize(float_cfg, PUBLIC, progress=False)
    assert json.loads(path.read_text())["metric"] == cards.read_card(cards.card_path(md, "dlib_resnet"))["metric"]
    assert f.stat().st_mtime_ns == before


def test_int8_identifies_every_public_photo_as_float_does(int8_cfg):
    from edge.engine import FaceEngine

    eng = FaceEngine(int8_cfg)
    try:
        for ident in IDENTITIES:
            eng.user_add(str(photos(ident)[0]), ident, "staff")
        checked = 0
        for ident in IDENTITIES:
            for f in photos(ident)[1:]:
                r = eng.identify(str(f), ["staff"], top_k=3, threshold=SMALL_LIBRARY_THRESHOLD)
                assert r["user_id"] == ident, (f.name, r["user_list"])
                assert r["user_list"][0]["score"] >= SMALL_LIBRARY_THRESHOLD
                checked += 1
        assert checked == 9
    finally:
        eng.close()


def test_int8_templates_stay_close_to_float(int8_cfg, float_cfg):
    from edge.faces import FaceAnalyzer

    a, b = FaceAnalyzer(float_cfg), FaceAnalyzer(int8_cfg)
    cos = []
    for ident in IDENTITIES:
        for f in photos(ident):
            img = I.load(f)
            fa, fb = a.largest(img), b.largest(img)
            # the int8 detector and landmarks find the same face, within a few pixels
            assert abs(fa.box[0] - fb.box[0]) < 0.05 * fa.box[2] and abs(fa.box[1] - fb.box[1]) < 0.05 * fa.box[3]
            cos.append(float(a.template(img, fa).unit @ b.template(img, fb).unit))
    assert len(cos) == 15 and min(cos) > 0.99, cos
