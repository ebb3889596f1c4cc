"""`edge run`'s loop with its threads: a camera that is unplugged and comes back, outputs that
are down, slow or on GPIO lines, MQTT against a real Mosquitto broker."""
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from edge import outputs as O
from edge import sources as S
from edge import wiegand
from edge.runner import Runner
from edge_tools.scenes import Actor, Scene
from tests.conftest import PUBLIC, frames
from tests.helpers import Collector, free_port, wait_for
from tests.test_pipeline import enrol


class Unplugged(S.Source):
    """A camera that stalls (returns nothing) after ``after`` frames for ``stall_s``, then is gone
    (reads and opens fail) for ``gone_s``, then works again."""

    def __init__(self, inner, after=30, stall_s=1.0, gone_s=1.0):
        self.inner, self.name = inner, "unplugged"
        self.after, self.stall_s, self.gone_s = after, stall_s, gone_s
        self.n, self.phase, self.until, self.opens = 0, "ok", 0.0, 0
        self._inner_open = False

    def open(self):
        if self.phase == "gone":
            if time.monotonic() < self.until:
                raise S.SourceError("/dev/video0: no such device")
            self.phase = "back"
        if not self._inner_open:
            self.inner.open()
            self._inner_open = True
        self.opens += 1

    def read(self):
        now = time.monotonic()
        if self.phase == "ok" and self.n >= self.after:
            self.phase, self.until = "stall", now + self.stall_s
        if self.phase == "stall":
            if now < self.until:
                time.sleep(0.01)
                return None
            self.phase, self.until = "gone", now + self.gone_s
        if self.phase == "gone":
            raise S.SourceError("device disconnected")
        f = self.inner.read()
        self.n += 1
        return f


def test_unplugged_camera_reconnects_and_webhook_loses_nothing(cfg, engine):
    enrol(engine)
    port = free_port()
    cfg.outputs.webhook.url = f"http://127.0.0.1:{port}/events"
    cfg.outputs.webhook.retry_max = 0.5
    cfg.camera.stall_timeout = 0.3
    cfg.camera.backoff_max = 0.4
    find = lambda img: engine.analyzer.largest(img).box
    # obama passes before the camera is unplugged (frame 30), biden after it is back
    scene = Scene([Actor(PUBLIC / "obama/obama_2.jpg", 2, 28, (250, 200), (300, 200), name="obama"),
                   Actor(PUBLIC / "biden/biden_2.jpg", 110, 170, (300, 240), (350, 240), name="biden")],
                  175, find_face=find)
    cam = Unplugged(S.Replay(scene, fps=25, paced=True))
    runner = Runner(cfg, engine, cam, status_every=0.2, on_status=lambda st: None)
    summary = runner.run(seconds=60)
    assert cam.phase == "back" and cam.opens >= 2
    assert summary["reconnects"] >= 2, summary
    assert runner.source.stats.errors >= 2
    # the loop carried on: both people were decided, and the events wait on disk for the webhook
    decisions = [e for e in map(json.loads, (cfg.home / "events/events.jsonl").read_text().splitlines())
                 if e["type"] == "decision"]
    assert [e["user_id"] for e in decisions] == ["obama", "biden"]
    # the target comes up; a restarted output (same on-disk queue) delivers everything, in order
    Collector.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from edge.outputs.webhook import Webhook
        hook = Webhook(cfg.outputs.webhook.url, cfg.home / "queue" / "webhook.db", retry_max=0.5,
                       types=cfg.outputs.webhook.types)
        assert wait_for(lambda: hook.pending() == 0)
        hook.close()
    finally:
        server.shutdown()
    got = [(e["type"], e.get("user_id"), e["frame"]) for e in Collector.received]
    assert [g for g in got if g[0] == "decision"] == [(e["type"], e["user_id"], e["frame"]) for e in decisions]


def test_relay_and_wiegand_on_mock_pins(cfg):
    from gpiozero import DigitalInputDevice
    from gpiozero.pins.mock import MockConnectedPin, MockFactory

    f = MockFactory()
    # the controller's side: DATA0 / DATA1 inputs wired to our output lines
    d0_in, d1_in = f.pin(22), f.pin(23)
    f.pin(17, pin_class=MockConnectedPin, input_pin=d0_in)
    f.pin(27, pin_class=MockConnectedPin, input_pin=d1_in)
    reader = wiegand.WiegandReader(DigitalInputDevice(22, pull_up=False, pin_factory=f),
                                   DigitalInputDevice(23, pull_up=False, pin_factory=f))
    cfg.outputs.jsonl.path = ""
    cfg.outputs.relay.pin, cfg.outputs.relay.pulse_ms = "GPIO5", 200
    cfg.outputs.wiegand.d0, cfg.outputs.wiegand.d1, cfg.outputs.wiegand.facility = "GPIO17", "GPIO27", 18
    d = O.build(cfg, pin_factory=f)
    relay = f.pin(5)
    d.publish({"type": "unknown", "track_id": 1})
    d.publish({"type": "decision", "action": "cooldown", "user_id": "obama", "user_info": '{"card": 1}'})
    d.publish({"type": "decision", "action": "open", "user_id": "obama", "user_info": '{"card": 4242}'})
    d.publish({"type": "decision", "action": "open", "user_id": "biden", "user_info": "no card"})
    assert wait_for(lambda: relay.state == 1, 5)
    assert wait_for(lambda: relay.state == 0, 5)
    d.close()
    # pulsed on "open" only (each open restarts the pulse), for at least pulse_ms
    changes = [s for a, s in zip(relay.states, relay.states[1:]) if s.state != a.state]
    assert [s.state for s in changes][0] == 1 and changes[-1].state == 0
    assert changes[-1].timestamp - changes[0].timestamp >= 0.19   # pin clock rounding
    received = reader.flush()
    assert [wiegand.decode(fr) for fr in received] == [(18, 4242)]      # only the open with a card
    assert len(received[0]) == 26


@pytest.fixture(scope="module")
def mqtt_broker(tmp_path_factory):
    """The Mosquitto broker .ci/run installs and starts (EDGE_TEST_MQTT=host:port); without that
    variable, one is started here on a free loopback port."""
    if os.environ.get("EDGE_TEST_MQTT"):
        host, port = os.environ["EDGE_TEST_MQTT"].rsplit(":", 1)
        assert wait_for(lambda: _listening(int(port)), 10), f"no broker at {host}:{port}"
        yield int(port)
        return
    exe = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if not exe:
        pytest.fail("mosquitto is not installed (apt-get install mosquitto; .ci/run does this)")
    port = free_port()
    conf = tmp_path_factory.mktemp("mqtt") / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert wait_for(lambda: _listening(port), 10), proc.stderr.read() if proc.poll() is not None else "timeout"
    yield port
    proc.terminate()
    proc.wait(10)


def _listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


def test_mqtt_events_reach_a_real_broker(cfg, mqtt_broker):
    import paho.mqtt.client as mqtt

    got = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_message = lambda c, u, m: got.append((m.topic, json.loads(m.payload)))
    subscribed = threading.Event()
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.on_connect = lambda c, *a: c.subscribe("gate1/#", qos=1)
    sub.connect("127.0.0.1", mqtt_broker)
    sub.loop_start()
    assert subscribed.wait(10)
    cfg.outputs.jsonl.path = ""
    cfg.outputs.mqtt.host, cfg.outputs.mqtt.port, cfg.outputs.mqtt.topic = "127.0.0.1", mqtt_broker, "gate1"
    d = O.build(cfg)
    events = [{"type": "decision", "user_id": "obama", "score": 93.1, "action": "open"},
              {"type": "unknown", "best_score": 61.0}]
    for ev in events:
        d.publish(ev)
    assert wait_for(lambda: len(got) == 2, 10), got
    d.close()
    sub.loop_stop()
    assert sorted(got, key=lambda g: g[0]) == [("gate1/decision", events[0]), ("gate1/unknown", events[1])]


def test_edge_run_cli_on_a_replay_folder(cfg, engine, tmp_path):
    """`edge run --source <folder>` end to end as a subprocess, stopped by SIGTERM."""
    import signal
    import sys

    import cv2

    enrol(engine)
    engine.close()
    scene = Scene([Actor(PUBLIC / "biden/biden_2.jpg", 0, 400, (300, 240), (340, 240), name="biden")], 400,
                  find_face=lambda img: engine.analyzer.largest(img).box)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(0, 40):
        cv2.imwrite(str(folder / f"{i:04d}.jpg"), scene.frame(i))
    conf = tmp_path / "gate.toml"
    conf.write_text('[camera]\nkind = "replay"\nloop = true\n[decision]\nmode = "gate"\n')
    env = dict(os.environ, EDGE_HOME=str(cfg.home), EDGE_MODELS_DIR=str(cfg.models_path))
    p = subprocess.Popen([sys.executable, "-m", "edge.cli", "--json", "--config", str(conf), "run",
                          "--source", str(folder)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    events = cfg.home / "events" / "events.jsonl"
    ok = wait_for(lambda: events.is_file() and '"decision"' in events.read_text(), 60)
    time.sleep(2.5)          # 40 frames at 25 fps: the replay loops and the person stays in view
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert ok, err.decode()[-2000:]
    assert p.returncode == 0, err.decode()[-2000:]
    summary = json.loads(out)
    assert summary["decisions"] == 1 and summary["frames"] > 40      # looped, one decision per pass
    ev = [json.loads(line) for line in events.read_text().splitlines()]
    assert [(e["user_id"], e["action"]) for e in ev if e["type"] == "decision"] == [("biden", "open")]


def test_replay_folder_with_a_corrupt_frame(tmp_path, engine):
    import cv2

    scene = Scene([Actor(PUBLIC / "biden/biden_2.jpg", 0, 12, (300, 240), (320, 240))], 12,
                  find_face=lambda img: engine.analyzer.largest(img).box)
    for i in range(12):
        cv2.imwrite(str(tmp_path / f"{i:03d}.jpg"), scene.frame(i))
    good = (tmp_path / "005.jpg").read_bytes()
    (tmp_path / "005.jpg").write_bytes(good[: len(good) // 3])       # truncated
    (tmp_path / "007.jpg").write_bytes(b"not an image at all")
    src = S.Reconnecting(S.Replay(tmp_path))
    assert [f.index for f in frames(src)] == [0, 1, 2, 3, 4, 6, 8, 9, 10, 11]
    assert src.inner.skipped == 2 and src.stats.reconnects == 0
