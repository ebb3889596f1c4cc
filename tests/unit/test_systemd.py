"""sd_notify on a fake $NOTIFY_SOCKET: READY first, watchdog pings at half WATCHDOG_USEC, nothing
for a process the watchdog is not meant for, and no error when the socket is gone."""
import os
import socket

import pytest

from edge import errors as E
from edge.systemd import Notifier, watchdog_interval


@pytest.fixture
def notify_socket(tmp_path):
    path = str(tmp_path / "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(0.5)
    yield path, s
    s.close()


def received(s):
    out = []
    s.setblocking(False)
    try:
        while True:
            out.append(s.recv(4096).decode())
    except BlockingIOError:
        pass
    return out


class Clock:
    t = 100.0

    def __call__(self):
        return self.t


def test_ready_once_then_pings_at_half_the_watchdog_timeout(notify_socket):
    path, s = notify_socket
    clock = Clock()
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}, clock)
    assert n.interval == 1.0
    n.tick()
    assert received(s) == ["READY=1\nSTATUS=camera loop running"]
    for _ in range(10):            # many iterations within one interval: no ping flood
        clock.t += 0.05
        n.tick()
    assert received(s) == []
    clock.t += 0.6
    n.tick()
    assert received(s) == ["WATCHDOG=1"]
    for _ in range(3):
        clock.t += 1.0
        n.tick()
    assert received(s) == ["WATCHDOG=1"] * 3 and n.pings == 4
    n.stopping()
    assert received(s) == ["STOPPING=1"]


def test_no_pings_for_another_process_or_without_a_watchdog(notify_socket):
    path, _ = notify_socket
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "garbage"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert Notifier({"NOTIFY_SOCKET": path}).interval is None


def test_abstract_socket_address():
    name = f"edge-test-{os.getpid()}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(b"\0" + name.encode())
    s.settimeout(1)
    try:
        Notifier({"NOTIFY_SOCKET": "@" + name}).tick()
        assert s.recv(100).startswith(b"READY=1")
    finally:
        s.close()


def test_outside_systemd_and_with_the_socket_gone(tmp_path):
    n = Notifier({})
    assert not n.enabled
    n.tick()
    n.stopping()                   # no-ops
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens"), "WATCHDOG_USEC": "1000"})
    gone.tick()                    # logged, not raised: the loop must keep running
    assert not gone.ready_sent


def test_fault_hook_refuses_a_malformed_value(monkeypatch):
    from edge.runner import FAULT_ENV, _fault_from_env

    monkeypatch.setenv(FAULT_ENV, "explode:soon")
    with pytest.raises(E.EdgeError) as e:
        _fault_from_env()
    assert e.value.code == E.PARARM_ERROR
    monkeypatch.setenv(FAULT_ENV, "die:5")
    fault = _fault_from_env()
    fault(4.9)                     # not yet
    with pytest.raises(RuntimeError):
        fault(5.0)
