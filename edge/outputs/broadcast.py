"""An output that fans events out to live subscribers (the HTTP API's Server-Sent Events, the
admin page's event list), and keeps the last few for anyone who connects later.

Each subscriber has its own bounded queue; a subscriber that does not keep up loses its oldest
events (counted), so a stalled browser never holds up the other subscribers or the camera loop.
"""
from __future__ import annotations

import collections
import threading

from . import Sink


class Subscriber:
    def __init__(self, size: int, wake):
        self.q: collections.deque = collections.deque(maxlen=size)
        self.dropped = 0
        self._wake = wake          # called (from the output's thread) when an event arrives

    def push(self, event: dict) -> None:
        if len(self.q) == self.q.maxlen:
            self.dropped += 1
        self.q.append(event)
        try:
            self._wake()
        except RuntimeError:       # the subscriber's event loop is gone: it will be removed
            pass

    def drain(self) -> list[dict]:
        out = []
        while self.q:
            out.append(self.q.popleft())
        return out


class Broadcast(Sink):
    name = "broadcast"

    def __init__(self, per_subscriber: int = 100, keep: int = 50, max_subscribers: int = 32):
        self.per_subscriber, self.max_subscribers = per_subscriber, max_subscribers
        self.recent: collections.deque = collections.deque(maxlen=keep)
        self._subs: list[Subscriber] = []
        self._lock = threading.Lock()
        self.published = 0

    def handle(self, event: dict) -> None:
        with self._lock:
            self.recent.append(event)
            self.published += 1
            subs = list(self._subs)
        for s in subs:
            s.push(event)

    def subscribe(self, wake) -> Subscriber | None:
        """A new subscriber, or None when ``max_subscribers`` are already listening."""
        with self._lock:
            if len(self._subs) >= self.max_subscribers:
                return None
            s = Subscriber(self.per_subscriber, wake)
            self._subs.append(s)
            return s

    def unsubscribe(self, s: Subscriber) -> None:
        with self._lock:
            if s in self._subs:
                self._subs.remove(s)

    def last(self, n: int = 20) -> list[dict]:
        with self._lock:
            return list(self.recent)[-n:]
