"""Done-when 2 of the device service: schemathesis, authenticated, against /openapi.json finds no
5xx and no answer that breaks the schema. Real fixture photos are the schema's examples for
`image`, so the generated calls reach detection, search and enrolment, not only rejections."""
import atexit
import base64
import copy
import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from edge import config as C
from edge.api.app import create_app
from edge.api.auth import KeyStore
from tests.conftest import PUBLIC

EXAMPLES = 25           # per operation under /rest and /oauth (18 operations)
ALIAS_EXAMPLES = 3      # per /face-api operation (32 aliases of the same handlers)


def _app():
    """One app for the module: schemathesis builds its tests from the schema at collection."""
    home = Path(tempfile.mkdtemp(prefix="edge-schemathesis-"))
    atexit.register(shutil.rmtree, home, True)
    cfg = C.load(home=home, models_dir=C.edge_home() / "models")
    cfg.serve.qps = 100000.0          # the generator is one client firing as fast as it can
    app = create_app(cfg)             # the engine (models) is built at the first call, not here
    app.state.test_key = KeyStore(home).add("schemathesis")
    return app


def _schema(app):
    spec = copy.deepcopy(app.openapi())
    photo = PUBLIC / "obama" / "obama_5_480p.jpg"
    example = base64.b64encode(photo.read_bytes()).decode() if photo.is_file() else None
    for s in spec["components"]["schemas"].values():
        props = s.get("properties", {})
        if "image" in props and example:
            props["image"]["example"] = example
        for field, value in (("user_id", "obama"), ("group_id", "staff"), ("group_id_list", "staff"),
                             ("src_group_id", "staff"), ("dst_group_id", "staff"), ("image_type", "BASE64"),
                             ("quality_control", "NONE"), ("liveness_control", "NONE"),
                             ("spoofing_control", "NONE"), ("face_field", "landmark,quality")):
            if field in props:
                props[field]["example"] = value
    schema = schemathesis.openapi.from_dict(spec)
    schema.app = app
    # the coverage phase enumerates every boundary case of every field whatever max_examples
    # says (minutes here); the examples and fuzzing phases are bounded by it
    schema.config.phases.update(phases=["examples", "fuzzing"])
    # /events streams until the client leaves: it has its own test (tests/unit/test_api_events.py)
    return schema.exclude(path="/events")


APP = _app()
schema = _schema(APP)


@pytest.fixture(scope="module")
def token(models_dir):
    from fastapi.testclient import TestClient

    ak, sk = APP.state.test_key
    r = TestClient(APP).post("/oauth/2.0/token", params={"grant_type": "client_credentials", "client_id": ak,
                                                         "client_secret": sk})
    return r.json()["access_token"]


def _call(case, token):
    from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                     status_code_conformance)

    # the v3 API answers every error in its envelope with HTTP 200, as the cloud does, so the
    # checks that expect 4xx for bad input or a missing token do not apply; the schema and 5xx
    # checks do, and a missing token is tested in tests/unit/test_api_gate.py
    case.call_and_validate(params={"access_token": token}, checks=[
        not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance])
    assert APP.state.edge.unexpected == 0


@schema.include(path_regex="^/(rest|oauth)/").parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_cloud_paths_no_5xx_and_every_answer_matches_the_schema(case, token):
    _call(case, token)


@schema.include(path_regex="^/face-api/").parametrize()
@settings(max_examples=ALIAS_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_private_deployment_paths_no_5xx_and_every_answer_matches_the_schema(case, token):
    """The same handlers under the private deployment's paths: fewer examples each."""
    _call(case, token)
