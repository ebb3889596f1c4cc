"""The camera loop as a systemd service would see it: READY=1 once frames flow, WATCHDOG=1 from
the loop's own iterations, and silence once the loop's thread hangs (so systemd's WatchdogSec
restarts it); without systemd, `edge run` exits non-zero when its loop hangs or dies."""
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from edge import errors as E
from edge import sources as S
from edge.runner import FAULT_ENV, Runner, run_supervised
from edge_tools.scenes import Actor, Scene
from tests.conftest import PUBLIC
from tests.test_pipeline import enrol


@pytest.fixture
def notify(tmp_path, monkeypatch):
    path = str(tmp_path / "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "400000")          # ping every 0.2 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    got = []

    def listen():
        while True:
            try:
                got.append((time.monotonic(), s.recv(4096).decode()))
            except OSError:
                return
    threading.Thread(target=listen, daemon=True).start()
    yield got
    s.close()


def scene(engine, n=50):
    return Scene([Actor(PUBLIC / "biden/biden_2.jpg", 0, n, (300, 240), (340, 240), name="biden")], n,
                 find_face=lambda img: engine.analyzer.largest(img).box)


def test_watchdog_pings_stop_when_the_loop_thread_hangs(cfg, engine, notify, monkeypatch):
    enrol(engine)
    monkeypatch.setenv(FAULT_ENV, "hang:2.0")
    runner = Runner(cfg, engine, S.Replay(scene(engine), fps=25, paced=True, loop=True),
                    status_every=0.5, on_status=lambda st: None)
    t0 = time.monotonic()
    with pytest.raises(E.EdgeError) as err:
        run_supervised(runner, seconds=60, stall_exit=2.5)
    assert err.value.code == E.SYSTEM_ERROR and "has not run" in err.value.message
    msgs = [m for _, m in notify]
    assert msgs[0].startswith("READY=1")
    pings = [t - t0 for t, m in notify if m == "WATCHDOG=1"]
    assert len(pings) >= 5, notify                   # ~every 0.2 s while the loop ran
    hung_at = runner.last_tick - t0
    assert max(pings) <= hung_at + 0.05              # none after the hang: systemd would restart it
    assert time.monotonic() - t0 > hung_at + 2.5     # and silence lasted past the stall limit
    assert runner.pipeline.stats.frames > 10
    runner.stop()


def test_edge_run_exits_non_zero_when_its_loop_thread_dies(cfg, engine, tmp_path):
    import cv2

    folder = tmp_path / "frames"
    folder.mkdir()
    sc = scene(engine, 20)
    for i in range(20):
        cv2.imwrite(str(folder / f"{i:04d}.jpg"), sc.frame(i))
    engine.close()
    conf = tmp_path / "gate.toml"
    conf.write_text('[camera]\nkind = "replay"\nloop = true\n')
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(30)
    env = dict(os.environ, EDGE_HOME=str(cfg.home), EDGE_MODELS_DIR=str(cfg.models_path),
               NOTIFY_SOCKET=str(tmp_path / "notify"), **{FAULT_ENV: "die:1.0"})
    try:
        p = subprocess.run([sys.executable, "-m", "edge.cli", "--json", "--config", str(conf), "run",
                            "--source", str(folder)], env=env, capture_output=True, timeout=120)
        assert sock.recv(4096).startswith(b"READY=1")
    finally:
        sock.close()
    assert p.returncode == 1, p.stderr.decode()[-2000:]
    out = json.loads(p.stdout)
    assert out["errno"] == E.SYSTEM_ERROR and "thread died" in out["msg"]


def test_serve_answers_systemd_for_the_api_and_the_camera_loop(cfg, engine, notify, monkeypatch):
    """`edge serve --camera` under systemd: READY once the API is up, pings while the camera loop
    iterates, none once the loop is stuck inside an iteration (systemd then restarts it)."""
    from starlette.testclient import TestClient

    from edge.api.app import create_app

    enrol(engine)
    monkeypatch.setenv(FAULT_ENV, "hang:2.0")
    app = create_app(cfg, engine, camera=True, source=S.Replay(scene(engine), fps=25, paced=True, loop=True))
    app.state.edge.device.hang_after = 1.0
    with TestClient(app):
        t0 = time.monotonic()
        time.sleep(5.0)
        runner = app.state.edge.device.runner
    msgs = [m for _, m in notify]
    assert msgs[0].startswith("READY=1") and msgs[-1] == "STOPPING=1"
    pings = [t - t0 for t, m in notify if m == "WATCHDOG=1"]
    hung = runner.last_tick - t0                   # when the loop's last iteration began
    assert len([p for p in pings if p < hung]) >= 4, (pings, hung)
    assert not [p for p in pings if p > hung + 1.0 + 0.3], (pings, hung)   # silent once stuck
