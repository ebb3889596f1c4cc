"""liveness_control / spoofing_control / faceverify over the v3 API where no model can answer
them: the seed's "not supported" (216102) before any image is read, and the field codes for
values that are no level. (With the anti-spoof models: tests/test_api_liveness.py.)"""
import base64
import hashlib
import json
import logging

import pytest
from fastapi.testclient import TestClient

from edge import config as C
from edge.api import liveness as AL
from edge.api.app import create_app
from edge.api.auth import KeyStore
from edge.liveness import levels

V3 = "/rest/2.0/face/v3"
# bytes that are no image: a request that reached the image would answer 222203, not 216102
NOT_AN_IMAGE = base64.b64encode(b"no image here" * 20).decode()


@pytest.fixture
def call(tmp_path):
    cfg = C.load(home=tmp_path / "home", models_dir=tmp_path / "models")
    (tmp_path / "models").mkdir()
    app = create_app(cfg)
    ak, sk = KeyStore(cfg.home).add("t", qps=1000)
    client = TestClient(app)
    tok = client.get("/oauth/2.0/token", params={"grant_type": "client_credentials", "client_id": ak,
                                                 "client_secret": sk}).json()["access_token"]

    def post(path, body):
        r = client.post(f"{V3}/{path}", params={"access_token": tok}, json=body)
        assert r.status_code == 200 and app.state.edge.unexpected == 0, r.text
        return r.json()
    post.cfg = cfg
    return post


def img(**kw):
    return {"image": NOT_AN_IMAGE, "image_type": "BASE64"} | kw


@pytest.mark.parametrize("level", ["LOW", "NORMAL", "HIGH"])
def test_without_the_anti_spoof_models_every_liveness_request_is_not_supported(call, level):
    lc = {"liveness_control": level}
    answers = {
        "detect": call("detect", img(**lc)),
        "search": call("search", img(group_id_list="staff", **lc)),
        "multi-search": call("multi-search", img(group_id_list="staff", **lc)),
        "user/add": call("faceset/user/add", img(group_id="staff", user_id="u1", **lc)),
        "user/update": call("faceset/user/update", img(group_id="staff", user_id="u1", **lc)),
        "match": call("match", [img(), img(**lc)]),
        "faceverify": call("faceverify", [img()]),
        "faceverify x3": call("faceverify", [img(), img(option="GATE"), img()]),
    }
    for what, r in answers.items():
        assert (r["error_code"], r["error_msg"], r["result"]) == (216102, "service not support", None), what


def test_spoofing_control_is_not_supported_with_or_without_liveness_models(call):
    # synthetic-image detection has no model in any build: refused, never passed unchecked
    for level in ("LOW", "NORMAL", "HIGH"):
        assert call("search", img(group_id_list="staff", spoofing_control=level))["error_code"] == 216102
        assert call("match", [img(spoofing_control=level), img()])["error_code"] == 216102


def test_a_control_that_is_no_level_gets_its_field_code(call):
    assert call("search", img(group_id_list="staff", liveness_control="MEDIUM"))["error_code"] == 222020
    assert call("detect", img(liveness_control="yes"))["error_code"] == 222020
    assert call("search", img(group_id_list="staff", spoofing_control="ON"))["error_code"] == 223130
    assert call("faceverify", [img(option="FINANCE")])["error_code"] == 222001
    # the image count is checked before the models: 2 images is no faceverify request
    assert call("faceverify", [img(), img()])["error_code"] == 222208


def test_a_tampered_anti_spoof_model_is_refused_and_logged_not_used(call, caplog):
    """Cards present but the model file does not match its sha256: 216102, with the reason in
    the device log, until the cards change."""
    models = call.cfg.models_path
    for mid in call.cfg.liveness.rgb_models:
        (models / f"{mid}.onnx").write_bytes(b"not the converted model")
        card = {"id": mid, "kind": "antispoof", "adapter": "minifasnet", "file": f"{mid}.onnx",
                "sha256": hashlib.sha256(b"the converted model").hexdigest(),
                "input": {"shape": [1, 3, 80, 80], "layout": "NCHW BGR", "crop_scale": 2.7},
                "outputs": {"real_index": 1}}
        (models / f"{mid}.json").write_text(json.dumps(card))
    with caplog.at_level(logging.ERROR, logger="edge.api"):
        assert call("faceverify", [img()])["error_code"] == 216102
        assert call("search", img(group_id_list="staff", liveness_control="LOW"))["error_code"] == 216102
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "sha256" in errors[0], errors      # tried once, not on every request


def test_faceverify_thresholds_are_the_levels_thresholds_in_the_seeds_order():
    t = AL.thresholds()
    # the seed's example: {"frr_1e-4": 0.05, "frr_1e-3": 0.3, "frr_1e-2": 0.9} = its LOW / NORMAL / HIGH
    assert list(t) == ["frr_1e-4", "frr_1e-3", "frr_1e-2"]
    assert [t[k] for k in t] == [levels.THRESHOLDS["rgb"][lv] for lv in ("LOW", "NORMAL", "HIGH")]
    assert t["frr_1e-4"] < t["frr_1e-3"] < t["frr_1e-2"]
    assert AL.threshold("NONE") == 0.0
