"""sd_notify without libsystemd: READY, STATUS, STOPPING and watchdog pings as datagrams on
``$NOTIFY_SOCKET`` (the protocol in sd_notify(3)).

The camera loop calls ``Notifier.tick()`` once per iteration. The first tick says READY=1 (the
service is up only once frames flow, not when the process starts); later ticks send WATCHDOG=1
at most every half of ``$WATCHDOG_USEC``. A loop that hangs or whose thread dies stops ticking,
so systemd's ``WatchdogSec=`` expires and ``Restart=always`` starts the service again.

Outside systemd (no ``$NOTIFY_SOCKET``) every call is a no-op.
"""
from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger("edge.systemd")


def _address(raw: str) -> str | bytes:
    # "@name" is a Linux abstract socket: a leading NUL byte instead of "@"
    return b"\0" + raw[1:].encode() if raw.startswith("@") else raw


def watchdog_interval(env=os.environ) -> float | None:
    """Seconds between pings systemd asks for (half its timeout), or None when it asks for none.

    ``WATCHDOG_PID`` names the process the watchdog is meant for; a child that inherited the
    environment must not ping on its parent's behalf.
    """
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid.isdigit() and int(pid) != os.getpid()):
        return None
    try:
        us = int(usec)
    except ValueError:
        return None
    return us / 2e6 if us > 0 else None


class Notifier:
    def __init__(self, env=os.environ, clock=time.monotonic):
        self.path = env.get("NOTIFY_SOCKET") or None
        self.interval = watchdog_interval(env) if self.path else None
        self.clock = clock
        self.ready_sent = False
        self.pings = 0
        self._last_ping = float("-inf")
        self._sock = None

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def notify(self, *lines: str) -> bool:
        """Send one datagram of ``KEY=value`` lines; False (logged once) if the socket is gone."""
        if not self.path:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(lines).encode(), _address(self.path))
            return True
        except OSError as e:
            # systemd restarted or the socket vanished: the service keeps running; systemd's own
            # watchdog is what notices a loop that stopped pinging
            log.warning("sd_notify to %s failed: %s", self.path, e)
            return False

    def tick(self) -> None:
        """Once per loop iteration: READY=1 on the first call, then watchdog pings as asked."""
        if not self.path:
            return
        now = self.clock()
        if not self.ready_sent:
            self.ready_sent = self.notify("READY=1", "STATUS=camera loop running")
            self._last_ping = now
            return
        if self.interval is not None and now - self._last_ping >= self.interval:
            if self.notify("WATCHDOG=1"):
                self.pings += 1
            self._last_ping = now

    def status(self, text: str) -> None:
        self.notify(f"STATUS={text}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
