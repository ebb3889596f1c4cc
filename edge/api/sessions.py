"""Admin page sessions: a random id in an HttpOnly, SameSite=Strict cookie, a CSRF token per
session that every form (and every script's POST, as the ``X-CSRF-Token`` header) must carry.

Sessions live in memory: a restart logs everyone out, which is acceptable for one admin account
and keeps no session secrets on disk.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie

COOKIE = "edge_session"
LOGIN_COOKIE = "edge_login"          # double-submit token of the login form (no session yet)
MAX_SESSIONS = 64


@dataclass
class Session:
    user: str
    csrf: str
    expires: float


class Sessions:
    def __init__(self, hours: float, secure: bool = False, clock=time.time):
        self.ttl, self.secure, self.clock = hours * 3600.0, secure, clock
        self._s: dict[str, Session] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(sid: str) -> str:
        # only a digest of the id is kept, so a memory dump does not hand out live cookies
        return hashlib.sha256(sid.encode()).hexdigest()

    def create(self, user: str) -> tuple[str, Session]:
        sid = secrets.token_urlsafe(32)
        s = Session(user, secrets.token_urlsafe(24), self.clock() + self.ttl)
        with self._lock:
            now = self.clock()
            self._s = {k: v for k, v in self._s.items() if v.expires > now}
            while len(self._s) >= MAX_SESSIONS:
                self._s.pop(min(self._s, key=lambda k: self._s[k].expires))
            self._s[self._key(sid)] = s
        return sid, s

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        with self._lock:
            s = self._s.get(self._key(sid))
            if s is None or s.expires <= self.clock():
                self._s.pop(self._key(sid), None)
                return None
            return s

    def drop(self, sid: str | None) -> None:
        if sid:
            with self._lock:
                self._s.pop(self._key(sid), None)

    def from_scope(self, scope) -> Session | None:
        for k, v in scope.get("headers") or []:
            if k == b"cookie":
                c = SimpleCookie()
                try:
                    c.load(v.decode("latin-1"))
                except Exception:   # a malformed cookie header is no session
                    return None
                if COOKIE in c:
                    return self.get(c[COOKIE].value)
        return None

    def cookie_args(self) -> dict:
        return {"httponly": True, "samesite": "strict", "secure": self.secure, "path": "/",
                "max_age": int(self.ttl)}


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())
