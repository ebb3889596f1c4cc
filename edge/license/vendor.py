"""The vendor's side (never needed on a device): signing key, serials, activations, revocation.

One SQLite database holds the serials (features, trial flag, how many devices each may
activate, revoked) and every activation (serial, device, fingerprint hashes). The same
``Vendor.activate`` serves online activation (the reference server), offline requests and batch
bundles, so all three obey the same rules.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from .. import errors as E
from ..files import write_atomic
from . import core
from . import fingerprint as FP

TRIAL_DAYS = 90            # seed: test serials are valid 3 months from activation
CLOCK_TOLERANCE = 7200.0   # a board without RTC may boot up to this far behind the last-seen time

SCHEMA = """
CREATE TABLE IF NOT EXISTS serials (serial TEXT PRIMARY KEY, features TEXT NOT NULL, trial INTEGER NOT NULL,
    max_activations INTEGER NOT NULL, valid_days INTEGER, revoked REAL, created REAL NOT NULL, note TEXT);
CREATE TABLE IF NOT EXISTS activations (id INTEGER PRIMARY KEY AUTOINCREMENT, serial TEXT NOT NULL
    REFERENCES serials(serial), device_id TEXT NOT NULL, fingerprint TEXT NOT NULL, kind TEXT NOT NULL,
    activated REAL NOT NULL, expires REAL, last_seen REAL NOT NULL);
"""

DEFAULT_FEATURES = {"max_users": 30000, "liveness": ["rgb", "nir", "depth", "action"],
                    "modes": ["gate", "attendance", "verify"]}


def keygen(directory: Path) -> dict:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    directory.mkdir(parents=True, exist_ok=True)
    priv_path, pub_path = directory / "vendor.key", directory / "vendor.pub"
    if priv_path.exists():
        raise E.EdgeError(E.RECORD_ALREADY_EXIST, f"{priv_path} exists: keep using it (licenses already issued "
                          "are tied to it) or move it away first")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    write_atomic(priv_path, pem, 0o600)
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    write_atomic(pub_path, pub, 0o644)
    return {"private_key": str(priv_path), "public_key": str(pub_path),
            "key_id": core.key_id(core.public_raw(key.public_key()))}


def load_private_key(path: str | Path):
    from cryptography.hazmat.primitives import serialization

    p = Path(path)
    if not p.is_file():
        raise E.EdgeError(E.FILE_NOT_EXIST, f"vendor signing key not found: {p} (create one with `edge-license keygen`)")
    return serialization.load_pem_private_key(p.read_bytes(), password=None)


class Vendor:
    def __init__(self, db_path: str | Path, key_path: str | Path, clock=time.time):
        self.key = load_private_key(key_path)
        self.clock = clock
        Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(db_path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self._lock = threading.Lock()

    # ---- serials ----------------------------------------------------------------------------
    def add_serials(self, n: int = 1, features: dict | None = None, trial: bool = False,
                    max_activations: int = 1, valid_days: int | None = None, note: str = "") -> list[str]:
        feats = DEFAULT_FEATURES | (features or {})
        out = []
        with self._lock, self.db:
            for _ in range(n):
                s = core.new_serial()
                self.db.execute("INSERT INTO serials VALUES (?,?,?,?,?,?,?,?)",
                                (s, json.dumps(feats, sort_keys=True), int(trial), max_activations,
                                 TRIAL_DAYS if trial and valid_days is None else valid_days, None, self.clock(), note))
                out.append(s)
        return out

    def revoke(self, serial: str) -> None:
        s = core.normalize_serial(serial)
        with self._lock, self.db:
            if self.db.execute("UPDATE serials SET revoked=? WHERE serial=?", (self.clock(), s)).rowcount == 0:
                raise E.EdgeError(E.LICENSE_KEY_INVALID, f"serial {s} was never issued")

    def serials(self) -> list[dict]:
        rows = self.db.execute("SELECT s.serial, s.trial, s.max_activations, s.revoked, s.note, "
                               "(SELECT COUNT(*) FROM activations a WHERE a.serial=s.serial) FROM serials s ORDER BY created")
        return [{"serial": r[0], "trial": bool(r[1]), "max_activations": r[2], "revoked": r[3] is not None,
                 "note": r[4], "activations": r[5]} for r in rows]

    def revocations(self) -> dict:
        revoked = sorted(r[0] for r in self.db.execute("SELECT serial FROM serials WHERE revoked IS NOT NULL"))
        return core.sign(self.key, {"type": "revocations", "format": core.FORMAT, "serials": revoked,
                                    "issued": self.clock()})

    # ---- activation (online, offline request, batch) ---------------------------------------
    def activate(self, serial: str, device_id: str, fingerprint: dict, kind: str,
                 device_time: float | None = None) -> dict:
        s = core.normalize_serial(serial)
        if not isinstance(fingerprint, dict) or not fingerprint or not device_id:
            raise E.EdgeError(E.DEVICE_ID_EMPTY, "the request carries no device fingerprint: run "
                              "`edge license fingerprint` on the device and check it reads its hardware")
        now = self.clock()
        if device_time is not None and abs(device_time - now) > core.CLOCK_SKEW:
            raise E.EdgeError(E.NOT_AUTHORIZED, f"the device clock is {abs(device_time - now) / 60:.0f} minutes "
                              "off the license server's: set the date and time (or enable NTP) and activate again",
                              server_time=now)
        with self._lock, self.db:
            row = self.db.execute("SELECT features, trial, max_activations, valid_days, revoked FROM serials "
                                  "WHERE serial=?", (s,)).fetchone()
            if row is None:
                raise E.EdgeError(E.LICENSE_KEY_INVALID, f"serial {s} is not known to the license server: "
                                  "check it, or ask the vendor")
            features, trial, max_act, valid_days, revoked = row
            if revoked is not None:
                raise E.EdgeError(E.LICENSE_KEY_INVALID, f"serial {s} has been revoked by the vendor")
            acts = self.db.execute("SELECT id, fingerprint, activated, expires FROM activations WHERE serial=? "
                                   "ORDER BY id", (s,)).fetchall()
            # the same device again (reinstalled OS or package, one part replaced): same license terms
            same = next((a for a in acts if FP.matches(json.loads(a[1]), fingerprint)[0]), None)
            if same is not None:
                activated, expires = same[2], same[3]
                self.db.execute("UPDATE activations SET fingerprint=?, device_id=?, last_seen=? WHERE id=?",
                                (json.dumps(fingerprint, sort_keys=True), device_id, now, same[0]))
            else:
                if len(acts) >= max_act:
                    if max_act == 1:
                        raise E.EdgeError(E.LICENSE_ALREADY_USED, f"serial {s} is already activated on another "
                                          "device: each device needs its own serial")
                    raise E.EdgeError(E.LICENSE_ALREADY_USED, f"serial {s} has reached its activation limit "
                                      f"({max_act} devices): license use times has reached the upper limit")
                activated = now
                expires = now + valid_days * 86400 if valid_days else None
                self.db.execute("INSERT INTO activations (serial, device_id, fingerprint, kind, activated, expires, "
                                "last_seen) VALUES (?,?,?,?,?,?,?)",
                                (s, device_id, json.dumps(fingerprint, sort_keys=True), kind, activated, expires, now))
        payload = {"type": "license", "format": core.FORMAT, "serial": s, "device_id": device_id,
                   "fingerprint": fingerprint, "features": json.loads(features), "trial": bool(trial),
                   "activated": activated, "issued": now, "expires": expires, "kind": kind,
                   "clock_tolerance": CLOCK_TOLERANCE}
        return core.sign(self.key, payload)

    def sign_request(self, request: dict) -> dict:
        """Offline activation: the request file a device wrote -> its license file."""
        if not isinstance(request, dict) or request.get("type") != "activation_request":
            raise E.EdgeError(E.LICENSE_KEY_INVALID, "this is not an activation request (edge license request)")
        # an offline request may be days old: the device clock is checked when it imports
        return self.activate(request.get("serial"), request.get("device_id"), request.get("fingerprint"), "offline")

    def bundle(self, requests: list[dict], features: dict | None = None, trial: bool = False) -> dict:
        """Batch activation: one signed file with a license for each device's request. Requests
        without a serial get a fresh one."""
        lics = []
        for r in requests:
            if not r.get("serial"):
                r = r | {"serial": self.add_serials(1, features, trial, note="batch")[0]}
            lics.append(self.activate(r["serial"], r.get("device_id"), r.get("fingerprint"), "batch"))
        return core.sign(self.key, {"type": "bundle", "format": core.FORMAT, "issued": self.clock(),
                                    "licenses": lics})

    def close(self):
        self.db.close()
