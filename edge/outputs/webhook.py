"""Webhook: POST each event as JSON. Events are written to an on-disk queue (SQLite, WAL) before
anything else, delivered oldest first, and deleted only after a 2xx answer, so a target that is
down, or a restart, loses nothing."""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
import urllib.error
import urllib.request
from pathlib import Path

from ..files import private_dir, private_file
from . import Sink

log = logging.getLogger("edge.outputs.webhook")


class Webhook(Sink):
    name = "webhook"

    def __init__(self, url: str, queue_path: Path, timeout: float = 3.0, retry_max: float = 60.0, types=()):
        self.url, self.timeout, self.retry_max = url, timeout, retry_max
        self.types = tuple(types)
        private_dir(queue_path.parent)
        self._db = sqlite3.connect(str(private_file(queue_path)), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                         "body TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0)")
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.delivered = 0
        self._t = threading.Thread(target=self._deliver_loop, name="webhook-deliver", daemon=True)
        self._t.start()

    def accept(self, event):
        with self._lock:
            self._db.execute("INSERT INTO outbox (body) VALUES (?)", (json.dumps(event, ensure_ascii=False),))
        self._wake.set()

    def handle(self, event):
        pass   # persisted in accept(); the delivery thread sends it

    def pending(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def _post(self, body: str) -> None:
        req = urllib.request.Request(self.url, data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=self.timeout) as r:
            if not 200 <= r.status < 300:
                raise urllib.error.HTTPError(self.url, r.status, "not 2xx", r.headers, None)

    def _deliver_loop(self):
        backoff = 0.5
        while not self._stop.is_set():
            with self._lock:
                row = self._db.execute("SELECT id, body FROM outbox ORDER BY id LIMIT 1").fetchone()
            if row is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            try:
                self._post(row[1])
            except (OSError, urllib.error.URLError, ValueError) as e:
                with self._lock:
                    self._db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id=?", (row[0],))
                log.info("webhook %s unreachable (%s); retrying in %.1f s", self.url, e, backoff)
                self._stop.wait(backoff)
                backoff = min(self.retry_max, backoff * 2)
                continue
            backoff = 0.5
            with self._lock:
                self._db.execute("DELETE FROM outbox WHERE id=?", (row[0],))
            self.delivered += 1

    def close(self):
        self._stop.set()
        self._wake.set()
        self._t.join(timeout=self.timeout + 1)
        with self._lock:
            self._db.close()
