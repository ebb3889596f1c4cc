"""A dependency-free progress line on stderr for long jobs (model build, import, benchmark)."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, label: str, quiet: bool = False):
        self.total = max(total, 0)
        self.label = label
        self.n = 0
        self.quiet = quiet
        self.t0 = time.monotonic()
        self._last = 0.0

    def step(self, what: str = "", n: int = 1) -> None:
        self.n += n
        if self.quiet:
            return
        now = time.monotonic()
        if now - self._last < 0.2 and self.n < self.total:
            return
        self._last = now
        pct = 100.0 * self.n / self.total if self.total else 100.0
        sys.stderr.write(f"\r{self.label}: {self.n}/{self.total} ({pct:5.1f}%) {what[:50]:<50}")
        sys.stderr.flush()

    def done(self) -> None:
        if not self.quiet:
            sys.stderr.write(f"\r{self.label}: {self.n}/{self.total} done in {time.monotonic() - self.t0:.1f}s"
                             + " " * 50 + "\n")
            sys.stderr.flush()
