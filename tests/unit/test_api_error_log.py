"""A v3 "system error" (222302) tells the client nothing; the device's log must say what to fix,
at the level `edge serve` shows by default (WARNING), under the same log_id."""
import base64
import logging

import cv2
import numpy as np
from fastapi.testclient import TestClient

from edge import config as C
from edge.api.app import create_app
from edge.api.auth import KeyStore


def test_a_system_error_is_explained_in_the_default_log(tmp_path, caplog):
    cfg = C.load(home=tmp_path / "home", models_dir=tmp_path / "no-models")     # a model pack never built
    ak, sk = KeyStore(cfg.home).add("door")
    c = TestClient(create_app(cfg))
    tok = c.post("/oauth/2.0/token", params={"grant_type": "client_credentials", "client_id": ak,
                                             "client_secret": sk}).json()["access_token"]
    png = base64.b64encode(cv2.imencode(".png", np.full((64, 64, 3), 128, np.uint8))[1].tobytes()).decode()
    with caplog.at_level(logging.WARNING, logger="edge.api"):
        r = c.post(f"/rest/2.0/face/v3/detect?access_token={tok}", json={"image": png, "image_type": "BASE64"})
    d = r.json()
    assert d["error_code"] == 222302 and d["error_msg"] == "system error"
    said = [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.WARNING]
    assert any(str(d["log_id"]) in m and "edge models build" in m for m in said), said
