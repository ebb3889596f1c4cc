"""Liveness over the v3 API through the official `baidu-aip` SDK (only its URLs pointed at the
device): `faceverify`, and `liveness_control` on add / search / detect / multi-search / match,
with the MiniFASNet anti-spoof models installed from ../shared/models as `edge models import`
does. ../shared/spoof: image_T1.jpg is a live capture, image_F1.jpg and image_F2.jpg attacks
(a photo of a screen or print; upstream Silent-Face-Anti-Spoofing's published samples)."""
import base64
import logging
import re

import pytest

from edge import config as C
from edge import image as I
from edge.api.app import create_app
from edge.api.auth import KeyStore
from edge.faces import FaceAnalyzer
from edge.liveness.rgb import RgbLiveness
from edge.models.registry import Runtime
from tests.api_server import Served
from tests.conftest import PUBLIC, SHARED
from tests.licensing import device, vendor  # noqa: F401  (vendor is a fixture)
from tests.test_api_sdk import point_sdk_at

SPOOF = SHARED / "spoof"
LIVE, ATTACKS = SPOOF / "image_T1.jpg", [SPOOF / "image_F1.jpg", SPOOF / "image_F2.jpg"]
PUBLIC_PHOTO = PUBLIC / "obama" / "obama_1.jpg"
NORMAL = {"liveness_control": "NORMAL"}


def b64(path):
    return base64.b64encode(path.read_bytes()).decode()


def sdk(cfg, monkeypatch):
    ak, sk = KeyStore(cfg.home).add("door", qps=1000)
    srv = Served(create_app(cfg))
    srv.__enter__()
    srv.client = point_sdk_at(monkeypatch, srv.url)("edge-app", ak, sk)
    return srv


@pytest.fixture
def served(tmp_path, antispoof_models, monkeypatch):
    srv = sdk(C.load(home=tmp_path / "home", models_dir=antispoof_models), monkeypatch)
    yield srv
    srv.__exit__()


def models_without_antispoof(models_dir, into):
    """The model pack as it is before `edge models import`: every file but the anti-spoof ones."""
    import json

    skip = set()
    for card in models_dir.glob("*.json"):
        doc = json.loads(card.read_text())
        if doc.get("kind") == "antispoof":
            skip |= {card.name, doc["file"]}
    into.mkdir()
    for f in models_dir.iterdir():
        if f.name not in skip:
            (into / f.name).symlink_to(f)
    return skip


def ok(r):
    assert r["error_code"] == 0, r
    return r["result"]


def direct_score(models_dir, path):
    """The RGB liveness score of the face the API detects first, as the camera loop's check
    computes it."""
    cfg = C.load(home=models_dir.parent / "direct-home", models_dir=models_dir)
    img = I.load(path)
    face = FaceAnalyzer(cfg).main_face(img)          # the still image's subject, as the API takes it
    rgb = RgbLiveness(models_dir, cfg.liveness.rgb_models, Runtime())
    return rgb(img, face)[0]


def test_faceverify_scores_each_image_with_the_rgb_model(served, antispoof_models):
    c = served.client
    single = {}
    for path in [LIVE, *ATTACKS, PUBLIC_PHOTO]:
        r = ok(c.faceverify([{"image": b64(path), "image_type": "BASE64", "face_field": "quality,landmark"}]))
        assert r["thresholds"] == {"frr_1e-4": 0.3, "frr_1e-3": 0.5, "frr_1e-2": 0.8}
        (face,) = r["face_list"]
        assert r["face_liveness"] == face["liveness"]["livemapscore"]
        assert set(face) >= {"face_token", "location", "face_probability", "angle", "quality", "landmark"}
        # the very score of the loop's RGB check on the same face (same models, same crop)
        assert face["liveness"]["livemapscore"] == pytest.approx(direct_score(antispoof_models, path), abs=1e-6)
        single[path.name] = r["face_liveness"]
    normal = 0.5
    assert single["image_T1.jpg"] >= normal and single["obama_1.jpg"] >= normal, single
    assert single["image_F1.jpg"] < normal and single["image_F2.jpg"] < normal, single
    # three images of one capture: the overall score is the best image's (seed), listed in order
    three = ok(c.faceverify([{"image": b64(p), "image_type": "BASE64", "option": "GATE"}
                             for p in [*ATTACKS, LIVE]]))
    assert [f["liveness"]["livemapscore"] for f in three["face_list"]] == \
        [single["image_F1.jpg"], single["image_F2.jpg"], single["image_T1.jpg"]]
    assert three["face_liveness"] == single["image_T1.jpg"]
    assert c.faceverify([{"image": b64(LIVE), "image_type": "BASE64"}] * 2)["error_code"] == 222208


def test_liveness_control_refuses_attacks_on_enrolment_and_search(served, caplog):
    c = served.client
    with caplog.at_level(logging.INFO, logger="edge.api"):
        for attack in ATTACKS:
            r = c.addUser(b64(attack), "BASE64", "staff", "attacker", NORMAL)
            assert (r["error_code"], r["error_msg"], r["result"]) == (223120, "liveness check fail", None)
    # the device log says why under the answer's log_id, with the score and the level
    logged = [m.getMessage() for m in caplog.records if "223120" in m.getMessage()]
    assert len(logged) == 2 and all(re.search(r"liveness 0\.0\d+ < 0\.5 \(NORMAL", m) for m in logged), logged
    # nothing was enrolled by the refused calls
    assert c.getUser("attacker", "@ALL")["error_code"] == 223103

    live = ok(c.addUser(b64(LIVE), "BASE64", "staff", "live_person", NORMAL))
    ok(c.addUser(b64(PUBLIC_PHOTO), "BASE64", "staff", "obama", NORMAL))
    hit = ok(c.search(b64(LIVE), "BASE64", "staff", NORMAL))["user_list"][0]
    assert hit["user_id"] == "live_person" and hit["score"] >= 80
    assert ok(c.search(b64(PUBLIC / "obama" / "obama_2.jpg"), "BASE64", "staff", NORMAL))["user_list"][0][
        "user_id"] == "obama"
    # the published attacks show the live sample's person: without the control the API finds
    # them as the enrolled person (the attack works); with it they are refused
    threshold = {"match_threshold": 80}
    for attack in ATTACKS:
        assert ok(c.search(b64(attack), "BASE64", "staff", threshold))["user_list"][0]["user_id"] == "live_person"
        assert c.search(b64(attack), "BASE64", "staff", NORMAL | threshold)["error_code"] == 223120
    # the enrolled face's own token has no image to judge: not passed unchecked
    assert c.search(live["face_token"], "FACE_TOKEN", "staff", NORMAL)["error_code"] == 222209
    # match: the control applies per image
    pair = [{"image": b64(LIVE), "image_type": "BASE64", "liveness_control": "NORMAL"},
            {"image": b64(ATTACKS[0]), "image_type": "BASE64", "liveness_control": "NONE"}]
    assert ok(c.match(pair))["score"] >= 80
    pair[1]["liveness_control"] = "NORMAL"
    assert c.match(pair)["error_code"] == 223120


def test_detect_tokens_keep_what_liveness_needs(served):
    """A detect face_token used later with liveness_control is judged on the whole image's crops
    (kept with the token), exactly as the image itself: same score, same verdict."""
    c = served.client
    ok(c.groupAdd("staff"))
    # 222207: the live face passed the control and is searched (nobody is enrolled)
    for path, verdict in [(LIVE, 222207), (ATTACKS[0], 223120), (ATTACKS[1], 223120)]:
        token = ok(c.detect(b64(path), "BASE64"))["face_list"][0]["face_token"]
        assert c.search(token, "FACE_TOKEN", "staff", NORMAL)["error_code"] == verdict
        by_token = ok(c.faceverify([{"image": token, "image_type": "FACE_TOKEN"}]))["face_liveness"]
        by_image = ok(c.faceverify([{"image": b64(path), "image_type": "BASE64"}]))["face_liveness"]
        assert by_token == by_image
    # detect filters the faces below the level out of its result (seed), and reports the score of the rest
    assert ok(c.detect(b64(ATTACKS[0]), "BASE64", NORMAL)) == {"face_num": 0, "face_list": []}
    (face,) = ok(c.detect(b64(LIVE), "BASE64", NORMAL))["face_list"]
    assert face["liveness"]["livemapscore"] >= 0.5
    assert "liveness" not in ok(c.detect(b64(LIVE), "BASE64"))["face_list"][0]


def test_multi_search_leaves_out_the_faces_below_the_level(served):
    c = served.client
    group = PUBLIC / "multi" / "obama_and_biden.jpg"
    ok(c.addUser(b64(PUBLIC / "obama" / "obama_1.jpg"), "BASE64", "staff", "obama"))
    ok(c.addUser(b64(PUBLIC / "biden" / "biden_1.jpg"), "BASE64", "staff", "biden"))
    scores = {}
    for f in ok(c.detect(b64(group), "BASE64", {"liveness_control": "LOW", "max_face_num": 5}))["face_list"]:
        scores[f["face_token"]] = f["liveness"]["livemapscore"]
    assert len(scores) == 2
    for level, thr in (("LOW", 0.3), ("NORMAL", 0.5), ("HIGH", 0.8)):
        r = c.multiSearch(b64(group), "BASE64", "staff", {"liveness_control": level, "max_face_num": 5})
        kept = {t for t, s in scores.items() if s >= thr}
        if not kept:
            assert r["error_code"] == 222207
            continue
        assert {f["face_token"] for f in ok(r)["face_list"]} == kept, (level, scores)


def test_without_the_models_216102_until_they_are_installed(tmp_path, antispoof_models, monkeypatch):
    """The model pack as `edge models build` leaves it: liveness requests are not supported, the
    rest works; `edge models import` while the service runs makes them work at the next call."""
    bare = tmp_path / "models"
    antispoof_files = models_without_antispoof(antispoof_models, bare)
    srv = sdk(C.load(home=tmp_path / "home", models_dir=bare), monkeypatch)
    try:
        c = srv.client
        assert c.addUser(b64(LIVE), "BASE64", "staff", "live_person", NORMAL)["error_code"] == 216102
        ok(c.addUser(b64(LIVE), "BASE64", "staff", "live_person"))
        assert c.search(b64(LIVE), "BASE64", "staff", NORMAL)["error_code"] == 216102
        assert c.search(b64(ATTACKS[0]), "BASE64", "staff", NORMAL)["error_code"] == 216102
        assert c.faceverify([{"image": b64(LIVE), "image_type": "BASE64"}])["error_code"] == 216102
        assert c.detect(b64(LIVE), "BASE64", NORMAL)["error_code"] == 216102
        assert ok(c.search(b64(LIVE), "BASE64", "staff"))["user_list"][0]["user_id"] == "live_person"
        for name in antispoof_files:          # installed while the service runs
            (bare / name).symlink_to(antispoof_models / name)
        assert ok(c.search(b64(LIVE), "BASE64", "staff", NORMAL))["user_list"][0]["user_id"] == "live_person"
        assert c.search(b64(ATTACKS[0]), "BASE64", "staff", NORMAL)["error_code"] == 223120
    finally:
        srv.__exit__()


def test_a_licence_without_rgb_liveness_answers_the_licence_error(tmp_path, vendor, antispoof_models,  # noqa: F811
                                                                  monkeypatch):
    import edge.license as L

    dev = device(tmp_path, vendor)
    monkeypatch.setattr(L, "FINGERPRINT_ROOT", str(dev.root))
    dev.activate_online(vendor.add_serials(1, {"liveness": ["nir", "depth"]})[0], vendor.url)
    srv = sdk(C.load(home=dev.dir.parent, models_dir=antispoof_models), monkeypatch)
    try:
        c = srv.client
        ok(c.groupAdd("staff"))
        assert c.faceverify([{"image": b64(LIVE), "image_type": "BASE64"}])["error_code"] == 6
        assert c.search(b64(LIVE), "BASE64", "staff", NORMAL)["error_code"] == 6
        assert c.search(b64(LIVE), "BASE64", "staff")["error_code"] == 222207      # recognition is licensed
    finally:
        srv.__exit__()


def test_the_admin_page_enrols_with_a_liveness_check(tmp_path, antispoof_models):
    from fastapi.testclient import TestClient

    from edge.api.auth import AdminAccount

    cfg = C.load(home=tmp_path / "home", models_dir=antispoof_models)
    AdminAccount(cfg.home).set_password("kiosk-pass-1")
    c = TestClient(create_app(cfg), follow_redirects=False)
    csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/admin/login").text).group(1)
    assert c.post("/admin/login", data={"csrf": csrf, "username": "admin", "password": "kiosk-pass-1"}).status_code == 303
    page = c.get("/admin/enrol").text
    assert 'id="enrol-liveness"' in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)

    def enrol(path, user, **extra):
        return c.post("/admin/enrol", data={"csrf": csrf, "user_id": user, "group_id": "staff", "source": "upload",
                                            **extra}, files={"photo": (path.name, path.read_bytes(), "image/jpeg")})
    r = enrol(ATTACKS[1], "attacker", liveness="1")
    assert r.status_code == 422 and "Liveness check failed" in r.text and "223120" in r.text
    assert re.search(r"liveness 0\.0\d+ &lt; 0\.5 \(NORMAL\)", r.text)
    assert enrol(LIVE, "live_person", liveness="1").status_code == 303
    # unchecked: the enrolment policy alone, as before (the attack photo is enrolled)
    assert enrol(ATTACKS[1], "attacker").status_code == 303
