"""Attendance records: one check-in / check-out row per user per window, in SQLite, exported
to CSV. The first recognition in a window is the check-in; later ones (at least
``min_checkout_gap`` after it) move the check-out forward."""
from __future__ import annotations

import csv
import datetime as dt
import io
import sqlite3
import threading
from pathlib import Path

from .config import AttendanceConfig
from .files import private_dir, private_file

SCHEMA = """CREATE TABLE IF NOT EXISTS attendance (
    user_id TEXT NOT NULL, window TEXT NOT NULL, check_in REAL NOT NULL, check_out REAL,
    check_in_score REAL, check_out_score REAL, PRIMARY KEY (user_id, window))"""


class Attendance:
    def __init__(self, path: Path, cfg: AttendanceConfig):
        self.cfg = cfg
        private_dir(path.parent)
        self.db = sqlite3.connect(str(private_file(path)), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(SCHEMA)
        self._lock = threading.Lock()

    def window(self, t: float) -> str:
        """The window's start as local ISO time: windows of ``window_hours`` from ``window_start``."""
        local = dt.datetime.fromtimestamp(t)
        day0 = local.replace(hour=self.cfg.window_start, minute=0, second=0, microsecond=0)
        if local < day0:
            day0 -= dt.timedelta(days=1)
        span = dt.timedelta(hours=self.cfg.window_hours)
        n = (local - day0) // span
        return (day0 + n * span).isoformat(timespec="minutes")

    def record(self, user_id: str, t: float, score: float) -> str | None:
        """'check_in', 'check_out', or None when the sighting changes nothing."""
        w = self.window(t)
        with self._lock, self.db:
            row = self.db.execute("SELECT check_in FROM attendance WHERE user_id=? AND window=?", (user_id, w)).fetchone()
            if row is None:
                self.db.execute("INSERT INTO attendance (user_id, window, check_in, check_in_score) VALUES (?,?,?,?)",
                                (user_id, w, t, score))
                return "check_in"
            if t - row[0] < self.cfg.min_checkout_gap:
                return None
            # only ever later: a clock set back into a past window must not pull its check-out back
            moved = self.db.execute("UPDATE attendance SET check_out=?, check_out_score=? WHERE user_id=? AND "
                                    "window=? AND (check_out IS NULL OR check_out < ?)", (t, score, user_id, w, t))
            return "check_out" if moved.rowcount else None

    def rows(self, since: float | None = None) -> list[dict]:
        q = "SELECT user_id, window, check_in, check_out, check_in_score, check_out_score FROM attendance"
        args: tuple = ()
        if since is not None:
            q += " WHERE check_in >= ?"
            args = (since,)
        iso = lambda t: dt.datetime.fromtimestamp(t).isoformat(timespec="seconds") if t else ""
        return [{"user_id": u, "window": w, "check_in": iso(ci), "check_out": iso(co),
                 "check_in_score": ci_s, "check_out_score": co_s}
                for u, w, ci, co, ci_s, co_s in self.db.execute(q + " ORDER BY window, user_id", args)]

    def csv(self, since: float | None = None) -> str:
        out = io.StringIO()
        fields = ["user_id", "window", "check_in", "check_out", "check_in_score", "check_out_score"]
        w = csv.DictWriter(out, fields)
        w.writeheader()
        w.writerows(self.rows(since))
        return out.getvalue()

    def close(self):
        self.db.close()
