"""Done-when 1 of the device service: the official `baidu-aip` SDK from PyPI, with only its
service URLs pointed at the device, runs unchanged against real fixture photos."""
import base64
import time

import cv2
import pytest

from edge import config as C
from edge.api.app import create_app
from edge.api.auth import KeyStore
from edge_tools.scenes import background
from tests.api_server import Served
from tests.conftest import PUBLIC
from tests.licensing import device, vendor  # noqa: F401  (vendor is a fixture)

CLOUD = "https://aip.baidubce.com"


def b64(rel):
    return base64.b64encode((PUBLIC / rel).read_bytes()).decode()


def point_sdk_at(monkeypatch, base):
    """The only change to the SDK: its service URLs (name-mangled class attributes)."""
    from aip import AipFace
    from aip.base import AipBase

    for name, value in list(vars(AipFace).items()):
        if name.startswith("_AipFace__") and isinstance(value, str) and value.startswith(CLOUD):
            monkeypatch.setattr(AipFace, name, value.replace(CLOUD, base))
    monkeypatch.setattr(AipBase, "_AipBase__accessTokenUrl", base + "/oauth/2.0/token")
    return AipFace


@pytest.fixture
def served(cfg, monkeypatch):
    clock = [time.time()]
    keys = KeyStore(cfg.home)
    # the main key is not what is limited here (its calls can exceed the default 20 QPS on a fast
    # machine); the burst key, limited to 2 QPS, is
    pairs = {"main": keys.add("integration", qps=1000), "burst": keys.add("burst", qps=2)}
    with Served(create_app(cfg, clock=lambda: clock[0])) as srv:
        srv.clock, srv.pairs = clock, pairs
        srv.AipFace = point_sdk_at(monkeypatch, srv.url)
        yield srv


def client(srv, which="main"):
    ak, sk = srv.pairs[which]
    return srv.AipFace("edge-app", ak, sk)


def ok(r):
    assert r["error_code"] == 0, r
    assert r["error_msg"] == "SUCCESS" and isinstance(r["log_id"], int) and r["cached"] == 0
    assert abs(r["timestamp"] - time.time()) < 60
    return r["result"]


def test_sdk_runs_unchanged_against_the_device(served):
    c = client(served)
    # enrol: the SDK fetches a token (scope brain_all_scope) and uses it, signing nothing
    add = ok(c.addUser(b64("obama/obama_1.jpg"), "BASE64", "staff", "obama", {"user_info": "奥巴马 Obama"}))
    assert len(add["face_token"]) == 32 and add["location"]["width"] > 100
    assert set(add["location"]) == {"left", "top", "width", "height", "rotation"}
    ok(c.addUser(b64("biden/biden_1.jpg"), "BASE64", "staff", "biden"))
    ok(c.addUser(b64("rose_leslie/rose_leslie_1.jpg"), "BASE64", "staff", "rose_leslie"))
    assert c.addUser(b64("obama/obama_1.jpg"), "BASE64", "staff", "obama")["error_code"] == 223105
    assert c._isCloudUser is False          # the SDK took the access-token path
    # an enrolled face's token is a permanent FACE_TOKEN: searchable, not detectable
    own = ok(c.search(add["face_token"], "FACE_TOKEN", "staff"))["user_list"][0]
    assert own["user_id"] == "obama" and own["score"] > 99
    assert c.detect(add["face_token"], "FACE_TOKEN")["error_code"] == 222209
    assert ok(c.multiSearch(add["face_token"], "FACE_TOKEN", "staff"))["face_list"][0]["location"] is None

    det = ok(c.detect(b64("obama/obama_2.jpg"), "BASE64", {"face_field": "landmark,quality", "max_face_num": 5}))
    assert det["face_num"] == 1
    f = det["face_list"][0]
    assert set(f["angle"]) == {"yaw", "pitch", "roll"} and 0 < f["face_probability"] <= 1
    assert len(f["landmark"]) == 4 and all(set(p) == {"x", "y"} for p in f["landmark"])
    left_eye, right_eye = f["landmark"][0], f["landmark"][1]
    loc = f["location"]
    assert loc["left"] < left_eye["x"] < right_eye["x"] < loc["left"] + loc["width"]
    q = f["quality"]
    assert set(q["occlusion"]) == {"left_eye", "right_eye", "nose", "mouth", "left_cheek", "right_cheek",
                                   "chin_contour"}
    assert 0 <= q["blur"] <= 1 and 0 <= q["illumination"] <= 255 and q["completeness"] in (0, 1)
    # the detect face_token works as an image in match (same image, same token)
    again = ok(c.detect(b64("obama/obama_2.jpg"), "BASE64"))["face_list"][0]["face_token"]
    assert again == f["face_token"]

    s = ok(c.search(b64("obama/obama_2.jpg"), "BASE64", "staff", {"max_user_num": 3}))
    assert [u["user_id"] for u in s["user_list"]][0] == "obama"
    top = s["user_list"][0]
    assert top["score"] >= 80 and top["group_id"] == "staff" and top["user_info"] == "奥巴马 Obama"
    assert all(u["score"] < 80 for u in s["user_list"][1:])
    assert c.search(b64("lin_manuel_miranda/lin_manuel_miranda_1.png"), "BASE64", "staff",
                    {"match_threshold": 80})["error_code"] == 222207

    ms = ok(c.multiSearch(b64("multi/obama_and_biden.jpg"), "BASE64", "staff", {"max_face_num": 5}))
    assert ms["face_num"] == 2
    assert sorted(f["user_list"][0]["user_id"] for f in ms["face_list"]) == ["biden", "obama"]
    assert all(f["user_list"][0]["score"] >= 80 and f["location"]["width"] > 0 for f in ms["face_list"])

    same = ok(c.match([{"image": b64("obama/obama_1.jpg"), "image_type": "BASE64"},
                       {"image": f["face_token"], "image_type": "FACE_TOKEN"}]))
    assert same["score"] >= 80 and [x["face_token"] for x in same["face_list"]][1] == f["face_token"]
    other = ok(c.match([{"image": b64("obama/obama_1.jpg"), "image_type": "BASE64"},
                        {"image": b64("biden/biden_2.jpg"), "image_type": "BASE64"}]))
    assert other["score"] < 80

    # update replaces the user's faces; get, face list, copy, delete
    ok(c.groupAdd("visitors"))
    assert c.groupAdd("visitors")["error_code"] == 223101
    upd = ok(c.updateUser(b64("biden/biden_2.jpg"), "BASE64", "staff", "biden", {"user_info": "Joe"}))
    faces = ok(c.faceGetlist("biden", "staff"))["face_list"]
    assert [x["face_token"] for x in faces] == [upd["face_token"]] and len(faces[0]["ctime"]) == 19
    assert ok(c.getUser("biden", "staff"))["user_list"] == [{"user_info": "Joe", "group_id": "staff"}]
    ok(c.userCopy("biden", {"src_group_id": "staff", "dst_group_id": "visitors"}))
    assert sorted(g["group_id"] for g in ok(c.getUser("biden", "@ALL"))["user_list"]) == ["staff", "visitors"]
    assert ok(c.getGroupUsers("visitors"))["user_id_list"] == ["biden"]
    assert ok(c.getGroupUsers("staff", {"start": 1, "length": 1}))["user_id_list"] == ["obama"]
    assert sorted(ok(c.getGroupList())["group_id_list"]) == ["staff", "visitors"]
    # a face added, then deleted; the user's last face deletes the user
    rose2 = ok(c.addUser(b64("rose_leslie/rose_leslie_2.jpg"), "BASE64", "staff", "rose_leslie"))["face_token"]
    assert len(ok(c.faceGetlist("rose_leslie", "staff"))["face_list"]) == 2
    assert ok(c.faceDelete("rose_leslie", "staff", rose2)) is None
    only = ok(c.faceGetlist("rose_leslie", "staff"))["face_list"][0]["face_token"]
    ok(c.faceDelete("rose_leslie", "staff", only))
    assert c.getUser("rose_leslie", "@ALL")["error_code"] == 223103
    assert c.faceDelete("obama", "staff", "0" * 32)["error_code"] == 223106
    # deletion reaches search at once
    ok(c.deleteUser("staff", "obama"))
    assert c.search(b64("obama/obama_2.jpg"), "BASE64", "staff", {"match_threshold": 80})["error_code"] == 222207
    ok(c.groupDelete("visitors"))
    assert ok(c.getGroupList())["group_id_list"] == ["staff"]
    assert c.groupDelete("visitors")["error_code"] == 223100


def test_sdk_gets_the_documented_error_codes(served):
    c = client(served)
    ok(c.groupAdd("staff"))
    # a user that does not exist
    assert c.getUser("nobody", "staff")["error_code"] == 223103
    assert c.deleteUser("staff", "nobody")["error_code"] == 223103
    assert c.updateUser(b64("obama/obama_1.jpg"), "BASE64", "staff", "nobody")["error_code"] == 223103
    # no face: a real scene background with nobody in it
    _, empty = cv2.imencode(".jpg", background())
    assert c.detect(base64.b64encode(empty.tobytes()).decode(), "BASE64")["error_code"] == 222202
    assert c.search(base64.b64encode(empty.tobytes()).decode(), "BASE64", "staff")["error_code"] == 222202
    # a bad image: a real photo cut short, bytes that are no image, base64 that is not base64
    cut = (PUBLIC / "obama/obama_1.jpg").read_bytes()[:20000]
    assert c.detect(base64.b64encode(cut).decode(), "BASE64")["error_code"] == 222203
    assert c.detect(base64.b64encode(b"not an image at all" * 50).decode(), "BASE64")["error_code"] == 222203
    assert c.detect("%%%not base64%%%", "BASE64")["error_code"] == 222203
    assert c.detect(b64("obama/obama_1.jpg"), "URL")["error_code"] == 222204      # offline device
    assert c.detect("f" * 32, "FACE_TOKEN")["error_code"] == 222209
    assert c.detect(b64("obama/obama_1.jpg"), "BASE64", {"max_face_num": 99})["error_code"] == 222016
    assert c.search(b64("obama/obama_1.jpg"), "BASE64", "no_such_group")["error_code"] == 223100
    assert c.addUser(b64("obama/obama_1.jpg"), "BASE64", "bad-group!", "obama")["error_code"] == 222006
    assert c.match([{"image": b64("obama/obama_1.jpg"), "image_type": "BASE64"}])["error_code"] == 222208
    # liveness_control and faceverify, with and without the anti-spoof models: tests/test_api_liveness.py
    # (whether this model pack has them depends on which tests ran before)
    # an expired token: the device's clock passes the token's lifetime; the SDK keeps sending it
    served.clock[0] += 2592000 + 1
    assert c.getGroupList()["error_code"] == 111
    served.clock[0] -= 2592000 + 1
    assert ok(c.getGroupList())["group_id_list"] == ["staff"]
    # an invalid token (forged): 110
    import requests
    r = requests.post(f"{served.url}/rest/2.0/face/v3/faceset/group/getlist",
                      params={"access_token": "24.0123456789abcdef0123456789abcdef.2592000.9999999999.1-abc"}, json={})
    assert r.json()["error_code"] == 110 and r.json()["result"] is None
    # wrong secret: the token endpoint refuses; the SDK then gets 110 from the API
    bad = served.AipFace("edge-app", served.pairs["main"][0], "wrong-secret-123456")
    assert bad.getGroupList()["error_code"] == 110
    # an over-QPS burst with a key limited to 2 QPS: error 18, then served again after a pause
    burst = client(served, "burst")
    codes = [burst.getGroupList()["error_code"] for _ in range(8)]
    assert 18 in codes and codes[0] == 0, codes
    time.sleep(1.1)
    assert burst.getGroupList()["error_code"] == 0


def test_licence_failure_answers_the_licence_error_in_the_envelope(tmp_path, vendor, models_dir, monkeypatch):  # noqa: F811
    """A vendor key installed and no valid licence: face endpoints answer v3 code 6."""
    import edge.license as L

    dev = device(tmp_path, vendor)
    cfg = C.load(home=dev.dir.parent, models_dir=models_dir)
    monkeypatch.setattr(L, "FINGERPRINT_ROOT", str(dev.root))
    ak, sk = KeyStore(cfg.home).add("lic")
    with Served(create_app(cfg)) as srv:
        AipFace = point_sdk_at(monkeypatch, srv.url)
        c = AipFace("edge-app", ak, sk)
        for r in (c.search(b64("obama/obama_1.jpg"), "BASE64", "staff"), c.detect(b64("obama/obama_1.jpg"), "BASE64"),
                  c.getGroupList()):
            assert r["error_code"] == 6 and r["error_msg"] == "No permission to access data" and r["result"] is None
        # activated: the same running service recognises (no restart)
        serial = vendor.add_serials(1, {"max_users": 100})[0]
        dev.activate_online(serial, vendor.url)
        assert c.getGroupList()["error_code"] == 0
