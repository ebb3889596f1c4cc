"""Per-key request limits: QPS (the v3 API's error 18) and a daily count (error 17).

QPS is a token bucket per API key: ``qps`` requests per second on average, bursts of up to
``max(1, qps)``. The daily count restarts at local midnight and with the process (it guards the
device's CPU, it is not billing).
"""
from __future__ import annotations

import datetime as dt
import threading
import time


class Limits:
    def __init__(self, clock=time.monotonic, today=lambda: dt.date.today().isoformat()):
        self.clock, self.today = clock, today
        self._buckets: dict[str, tuple[float, float]] = {}     # key -> (tokens, last refill)
        self._days: dict[str, tuple[str, int]] = {}             # key -> (date, count)
        self._lock = threading.Lock()

    def admit(self, key: str, qps: float, daily: int = 0) -> int:
        """0 when the request may go ahead, else the v3 error code (18 QPS, 17 daily)."""
        now = self.clock()
        with self._lock:
            cap = max(1.0, qps)
            tokens, last = self._buckets.get(key, (cap, now))
            tokens = min(cap, tokens + (now - last) * qps)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return 18
            if daily:
                day = self.today()
                d, n = self._days.get(key, (day, 0))
                if d != day:
                    n = 0
                if n >= daily:
                    self._buckets[key] = (tokens, now)
                    return 17
                self._days[key] = (day, n + 1)
            self._buckets[key] = (tokens - 1.0, now)
            return 0
