"""`edge serve --camera`: the API and the camera loop share one engine, so an enrolment or a
deletion made through the API applies to the loop's very next search (the issue asks < 1 s)."""
import base64
import time

from edge import sources as S
from edge.api.app import create_app
from edge.api.auth import KeyStore
from edge_tools.scenes import Actor, Scene
from tests.api_server import Served
from tests.conftest import PUBLIC
from tests.helpers import wait_for


def collect(sub, into: list) -> list:
    into += sub.drain()
    return into


def test_api_enrolment_and_deletion_reach_the_running_loop_at_once(cfg, analyzer):
    import requests

    actor = Actor(PUBLIC / "obama/obama_2.jpg", 0, 70, (260, 240), (330, 240), face_px=150, name="obama")
    scene = Scene([actor], 90, find_face=lambda img: analyzer.largest(img).box)
    ak, sk = KeyStore(cfg.home).add()
    app = create_app(cfg, camera=True, source=S.Replay(scene, fps=25, paced=True, loop=True))
    st = app.state.edge
    events = []
    with Served(app) as srv:
        tok = requests.get(f"{srv.url}/oauth/2.0/token", params={"grant_type": "client_credentials",
                                                                  "client_id": ak, "client_secret": sk}).json()
        v3 = f"{srv.url}/rest/2.0/face/v3"
        q = {"access_token": tok["access_token"]}
        assert wait_for(lambda: st.device.runner is not None and st.live.seq > 5, 30)
        sub = st.hub.subscribe(lambda: None)
        runner = st.device.runner
        assert runner.pipeline.engine is st.service.engine()           # one engine, one library
        frame = scene.frame(30)
        probe = analyzer.template(frame, analyzer.largest(frame)).unit
        assert runner.pipeline.engine.identify_template(probe, None)["match"] is False

        photo = base64.b64encode((PUBLIC / "obama/obama_1.jpg").read_bytes()).decode()
        r = requests.post(f"{v3}/faceset/user/add", params=q, json={"image": photo, "image_type": "BASE64",
                                                                     "group_id": "staff", "user_id": "obama"}).json()
        assert r["error_code"] == 0
        t_add = time.monotonic()
        # the loop's own engine finds the new user at once ...
        hit = runner.pipeline.engine.identify_template(probe, None)
        assert hit["match"] and hit["user_id"] == "obama" and time.monotonic() - t_add < 1.0
        # ... and the loop decides on the person it is watching
        assert wait_for(lambda: any(e["type"] == "decision" and e["user_id"] == "obama"
                                    for e in collect(sub, events)), 30), events

        r = requests.post(f"{v3}/faceset/user/delete", params=q, json={"group_id": "staff", "user_id": "obama"}).json()
        assert r["error_code"] == 0
        t_del = time.monotonic()
        assert runner.pipeline.engine.identify_template(probe, None)["user_list"] == []
        assert time.monotonic() - t_del < 1.0
        sub.drain()
        # the next pass of the same person is unknown, never a decision for the deleted user
        later = []
        assert wait_for(lambda: any(e["type"] == "unknown" for e in collect(sub, later)), 30), later
        assert not [e for e in later if e["type"] == "decision"]
        st.hub.unsubscribe(sub)
