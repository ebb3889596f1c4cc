"""Server-Sent Events: the camera loop's events reach /events subscribers as they happen; a
slow subscriber loses its oldest events instead of holding anyone up."""
import http.client
import json
import threading
import time

from edge import config as C
from edge import outputs as O
from edge.api.app import create_app
from edge.api.auth import KeyStore
from edge.outputs.broadcast import Broadcast
from tests.api_server import Served
from tests.helpers import wait_for


def read_events(conn, n, timeout=10.0):
    """n SSE events from an open streaming response, as (type, data)."""
    out, ev, buf = [], None, b""
    conn.sock.settimeout(timeout)
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("content-type").startswith("text/event-stream")
    while len(out) < n:
        line = resp.fp.readline()
        if not line:
            break
        line = line.rstrip(b"\r\n")
        if line.startswith(b"event: "):
            ev = line[7:].decode()
        elif line.startswith(b"data: "):
            buf = line[6:]
        elif line == b"" and ev:
            out.append((ev, json.loads(buf)))
            ev = None
    return out


def test_sse_streams_loop_events_to_token_holders(tmp_path):
    cfg = C.load(home=tmp_path / "home", models_dir=tmp_path / "none")
    ak, sk = KeyStore(cfg.home).add()
    app = create_app(cfg)
    hub = app.state.edge.hub
    disp = O.Dispatcher([])
    disp.add(hub)                      # as `edge serve --camera` adds it to the loop's outputs
    with Served(app) as srv:
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        c.request("GET", "/events")
        r = c.getresponse()
        assert json.loads(r.read())["error_code"] == 110            # no token, no events
        c.close()
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        c.request("GET", f"/oauth/2.0/token?grant_type=client_credentials&client_id={ak}&client_secret={sk}")
        tok = json.loads(c.getresponse().read())["access_token"]
        c.close()
        got = []
        stream = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        stream.request("GET", f"/events?access_token={tok}")
        reader = threading.Thread(target=lambda: got.extend(read_events(stream, 3)))
        reader.start()
        assert wait_for(lambda: len(hub._subs) == 1, 10)
        for i, kind in enumerate(["decision", "unknown", "prompt"]):
            disp.publish({"type": kind, "track_id": i, "user_id": "alice" if kind == "decision" else None})
        reader.join(10)
        stream.close()
        disp.close()
    assert [(k, d["track_id"]) for k, d in got] == [("decision", 0), ("unknown", 1), ("prompt", 2)]
    assert got[0][1]["user_id"] == "alice"


def test_a_slow_subscriber_drops_its_oldest_events_and_blocks_nobody():
    hub = Broadcast(per_subscriber=5)
    wakes = []
    slow = hub.subscribe(lambda: wakes.append(1))
    fast = hub.subscribe(lambda: None)
    seen = []
    t0 = time.monotonic()
    for i in range(100):
        hub.handle({"type": "decision", "n": i})
        seen += fast.drain()
    assert time.monotonic() - t0 < 1.0
    assert [e["n"] for e in seen] == list(range(100))
    assert [e["n"] for e in slow.drain()] == [95, 96, 97, 98, 99] and slow.dropped == 95
    assert [e["n"] for e in hub.last(3)] == [97, 98, 99]
    hub.unsubscribe(slow)
    hub.unsubscribe(fast)
    assert Broadcast(max_subscribers=1).subscribe(lambda: None) is not None
    full = Broadcast(max_subscribers=1)
    full.subscribe(lambda: None)
    assert full.subscribe(lambda: None) is None
