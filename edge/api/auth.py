"""Credentials of the device service: API key/secret pairs, access tokens, the admin password.

Secrets are stored as scrypt hashes (``hashlib.scrypt``, N=2^14, r=8, p=1, 16-byte salt): the
admin password is chosen by a person and may be weak, and an ``EDGE_SECRET_KEY`` may be too, so
both get a memory-hard hash rather than a fast salted digest. Verification takes ~50 ms on a
Pi 4, which is why the token endpoint and the login form are throttled (``Throttle``).

Access tokens are stateless: ``24.<mac>.<ttl>.<expiry>.<nonce>-<key id>`` (the cloud's shape),
the MAC an HMAC-SHA256 under a random device secret kept in ``EDGE_HOME/api/token.secret``, so
tokens survive a restart. Deleting a key invalidates its tokens at once (the key id no longer
resolves); expiry is checked against the wall clock, so a clock set forward expires tokens early
and one set back keeps them longer (bounded by ``token_ttl`` from the issue time it claims).
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .. import errors as E
from ..files import locked, write_atomic

SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}
KEY_ID_BYTES = 6


def hash_secret(secret: str) -> str:
    salt = os.urandom(16)
    dk = hashlib.scrypt(secret.encode(), salt=salt, dklen=32, maxmem=64 * 2**20, **SCRYPT)
    return "scrypt${n}${r}${p}$".format(**SCRYPT) + base64.b64encode(salt).decode() + "$" + base64.b64encode(dk).decode()


def check_secret(secret: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, dk = stored.split("$")
        if kind != "scrypt":
            return False
        want = base64.b64decode(dk)
        got = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(want), maxmem=64 * 2**20)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def _read_json(path: Path, default):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as e:
        raise E.EdgeError(E.FILE_NOT_EXIST, f"{path} is unreadable or corrupt ({e}): restore it or delete it "
                          "and set the credentials again") from None


def _write_private(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, json.dumps(data, indent=1).encode(), 0o600)


@dataclass
class ApiKey:
    api_key: str
    secret_hash: str
    qps: float | None = None         # None: serve.qps
    daily_limit: int | None = None   # None: serve.daily_limit
    name: str = ""

    @property
    def key_id(self) -> str:
        # tokens name the key by a digest, so a token never reveals the API key itself
        return hashlib.sha256(self.api_key.encode()).hexdigest()[:2 * KEY_ID_BYTES]


class KeyStore:
    """API key/secret pairs from ``EDGE_HOME/api/keys.json`` (hashed secrets) and, optionally,
    one pair from the environment (``EDGE_API_KEY`` / ``EDGE_SECRET_KEY``)."""

    def __init__(self, home: Path, environ=os.environ):
        self.path = Path(home) / "api" / "keys.json"
        self._lock = threading.Lock()
        self._env: ApiKey | None = None
        ak, sk = environ.get("EDGE_API_KEY", ""), environ.get("EDGE_SECRET_KEY", "")
        if ak and sk:
            self._env = ApiKey(ak, hash_secret(sk), name="environment")
        self._cache: tuple[float, dict[str, ApiKey]] | None = None
        self._dummy: str | None = None

    def _load(self) -> dict[str, ApiKey]:
        # re-read when the file changes, so `edge api key add/delete` applies to a running server
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = -1
        if self._cache and self._cache[0] == mtime:
            return self._cache[1]
        raw = _read_json(self.path, {"keys": []})
        keys = {}
        for k in raw.get("keys", []):
            keys[k["api_key"]] = ApiKey(k["api_key"], k["secret_hash"], k.get("qps"), k.get("daily_limit"),
                                        k.get("name", ""))
        self._cache = (mtime, keys)
        return keys

    def all(self) -> list[ApiKey]:
        with self._lock:
            keys = list(self._load().values())
        return keys + ([self._env] if self._env else [])

    def get(self, api_key: str) -> ApiKey | None:
        if self._env and hmac.compare_digest(self._env.api_key, api_key):
            return self._env
        with self._lock:
            return self._load().get(api_key)

    def by_id(self, key_id: str) -> ApiKey | None:
        for k in self.all():
            if hmac.compare_digest(k.key_id, key_id):
                return k
        return None

    def verify(self, api_key: str, secret: str) -> ApiKey | None:
        k = self.get(api_key)
        if k is None:
            # the same cost as a known key (one scrypt), so timing does not tell which keys exist
            if self._dummy is None:
                self._dummy = hash_secret(secrets.token_hex(16))
            check_secret(secret, self._dummy)
            return None
        return k if check_secret(secret, k.secret_hash) else None

    def add(self, name: str = "", qps: float | None = None, daily_limit: int | None = None,
            api_key: str | None = None, secret: str | None = None) -> tuple[str, str]:
        """A new pair; returns (api_key, secret). The secret is shown once and stored hashed."""
        api_key = api_key or secrets.token_urlsafe(18)
        secret = secret or secrets.token_urlsafe(24)
        if len(secret) < 12:
            raise E.EdgeError(E.PARARM_ERROR, "a secret key needs at least 12 characters")
        if qps is not None and not 0.1 <= qps <= 100000:
            raise E.EdgeError(E.PARARM_ERROR, f"--qps {qps}: use 0.1..100000")
        if daily_limit is not None and daily_limit < 0:
            raise E.EdgeError(E.PARARM_ERROR, f"--daily-limit {daily_limit}: use 0 (no limit) or more")
        with self._lock, locked(self.path.with_suffix(".lock")):
            raw = _read_json(self.path, {"keys": []})
            if any(k["api_key"] == api_key for k in raw["keys"]):
                raise E.EdgeError(E.RECORD_ALREADY_EXIST, f"API key {api_key} already exists")
            entry = {"api_key": api_key, "secret_hash": hash_secret(secret), "name": name, "created": int(time.time())}
            if qps is not None:
                entry["qps"] = float(qps)
            if daily_limit is not None:
                entry["daily_limit"] = int(daily_limit)
            raw["keys"].append(entry)
            _write_private(self.path, raw)
            self._cache = None
        return api_key, secret

    def delete(self, api_key: str) -> None:
        with self._lock, locked(self.path.with_suffix(".lock")):
            raw = _read_json(self.path, {"keys": []})
            keep = [k for k in raw["keys"] if k["api_key"] != api_key]
            if len(keep) == len(raw["keys"]):
                raise E.EdgeError(E.RECORD_UNEXIST, f"no API key {api_key}")
            _write_private(self.path, {"keys": keep})
            self._cache = None


class TokenError(Exception):
    def __init__(self, code: int):
        self.code = code        # 110 invalid, 111 expired


class Tokens:
    """Issues and checks access tokens (see the module docstring for the format)."""

    def __init__(self, home: Path, keys: KeyStore, ttl: int, clock=time.time):
        self.keys, self.ttl, self.clock = keys, int(ttl), clock
        path = Path(home) / "api" / "token.secret"
        raw = _read_json(path, None)
        if raw is None:
            raw = {"secret": secrets.token_hex(32)}
            _write_private(path, raw)
        self._secret = bytes.fromhex(raw["secret"])

    def _mac(self, body: str) -> str:
        return hmac.new(self._secret, body.encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self, key: ApiKey) -> tuple[str, int]:
        exp = int(self.clock()) + self.ttl
        body = f"{self.ttl}.{exp}.{secrets.token_hex(4)}-{key.key_id}"
        return f"24.{self._mac(body)}.{body}", self.ttl

    def check(self, token: str) -> ApiKey:
        parts = token.split(".") if isinstance(token, str) else []
        if len(parts) != 5 or parts[0] != "24":
            raise TokenError(110)
        body = ".".join(parts[2:])
        if not hmac.compare_digest(self._mac(body), parts[1]):
            raise TokenError(110)
        try:
            exp = int(parts[3])
        except ValueError:
            raise TokenError(110) from None
        key = self.keys.by_id(parts[4].rpartition("-")[2])
        if key is None:
            raise TokenError(110)          # the key was deleted: its tokens die with it
        if self.clock() >= exp:
            raise TokenError(111)
        return key


class Throttle:
    """Failed attempts per client (address or key); after ``limit`` in ``window`` seconds the
    client is refused for ``block`` seconds without checking the secret (brute force, and the
    scrypt cost as a denial of service)."""

    def __init__(self, limit: int = 10, window: float = 60.0, block: float = 60.0, clock=time.monotonic):
        self.limit, self.window, self.block, self.clock = limit, window, block, clock
        self._fails: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, who: str) -> bool:
        now = self.clock()
        with self._lock:
            recent = [t for t in self._fails.get(who, []) if now - t < max(self.window, self.block)]
            if recent:
                self._fails[who] = recent
            else:
                self._fails.pop(who, None)
            return len(recent) >= self.limit and now - recent[-1] < self.block

    def failed(self, who: str) -> None:
        with self._lock:
            if len(self._fails) > 10000:       # bounded memory under a spray of addresses
                self._fails.clear()
            self._fails.setdefault(who, []).append(self.clock())

    def succeeded(self, who: str) -> None:
        with self._lock:
            self._fails.pop(who, None)


class Busy(Exception):
    """A secret check refused without running: ``blocked`` (the client failed too often) or
    ``busy`` (too many checks already waiting)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class SecretChecks:
    """Runs the scrypt checks of the token endpoint and the login form: one at a time
    (``slots``), never for a client the throttle blocks (checked again once its turn comes, so
    a burst from one address costs at most ``Throttle.limit`` checks), and with at most
    ``queue`` requests waiting; beyond that the caller answers "busy" at once. A check costs
    16 MB and ~50 ms here: 320 wrong client ids sprayed 40 at a time took the service from 330
    to 1,104 MB and its API answers to 2.3 s before, when each request ran its own check."""

    def __init__(self, throttle: Throttle, slots: int = 1, queue: int = 16):
        self.throttle, self.queue = throttle, queue
        self._sem = asyncio.Semaphore(slots)
        self._waiting = 0

    async def run(self, who: str, fn, *args):
        """``fn(*args)`` on a worker thread once it is ``who``'s turn; raises ``Busy``."""
        from starlette.concurrency import run_in_threadpool

        if self.throttle.blocked(who):
            raise Busy("blocked")
        if self._waiting >= self.queue:
            raise Busy("busy")
        self._waiting += 1
        try:
            async with self._sem:
                if self.throttle.blocked(who):       # failures recorded while this one waited
                    raise Busy("blocked")
                return await run_in_threadpool(fn, *args)
        finally:
            self._waiting -= 1


def check_user(user: str) -> str:
    if not user or not user.isascii() or not user.replace("_", "").isalnum() or len(user) > 64:
        raise E.EdgeError(E.PARARM_ERROR, f"admin user name {user!r}: 1-64 letters, digits and '_'")
    return user


class AdminAccount:
    """The one admin account of the page, in ``EDGE_HOME/api/admin.json`` (scrypt hash, 0600)."""

    def __init__(self, home: Path):
        self.path = Path(home) / "api" / "admin.json"

    def configured(self) -> bool:
        return self.path.is_file()

    def set_password(self, password: str, user: str = "admin") -> None:
        check_user(user)
        if len(password) < 8:
            raise E.EdgeError(E.PARARM_ERROR, "the admin password needs at least 8 characters")
        _write_private(self.path, {"user": user, "hash": hash_secret(password), "set": int(time.time())})

    def check(self, user: str, password: str) -> bool:
        raw = _read_json(self.path, None)
        if raw is None:
            return False
        ok_user = hmac.compare_digest(str(raw.get("user", "")).encode(), str(user).encode())
        return check_secret(password, raw.get("hash", "")) and ok_user
