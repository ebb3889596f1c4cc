"""The device's side: activation (online, offline request/import, batch bundle), the stored
license, and the check every start (and the camera loop) makes.

Files under ``EDGE_HOME/license/``: ``license.json`` (the signed license), ``state.json`` (the
last time a valid license was seen, MACed with a key derived from the license signature and the
device fingerprint), ``revocations.json`` (the newest signed revocation list), ``vendor.pub``
(the vendor's public key, installed with the device software). All writes are atomic.

Clock rules: the check uses ``max(now, last_seen)``, so setting the clock back never extends a
license; a clock more than ``clock_tolerance`` (2 h, in the license) behind the last-seen time
counts as not activated until the time is set right. A Raspberry Pi without RTC boots with
fake-hwclock's saved time (saved hourly and at shutdown), well inside that tolerance.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from .. import errors as E
from ..files import write_atomic
from . import core
from . import fingerprint as FP


def _when(t: float | None) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="seconds") if t else "never"


class Licensing:
    def __init__(self, home: Path, public_key=None, root: str | Path = "/", clock=time.time):
        self.dir = Path(home) / "license"
        self.root = root
        self.clock = clock
        key = public_key if public_key is not None else (self.dir / "vendor.pub")
        if isinstance(key, (str, Path)) and not Path(key).is_file():
            raise E.EdgeError(E.LICENSE_FILE_NOT_EXIST, f"the vendor's public key is not installed ({key}): "
                              "copy vendor.pub from your vendor into it")
        self.key = core.load_public_key(key) if not hasattr(key, "verify") else key

    @property
    def license_path(self) -> Path:
        return self.dir / "license.json"

    def fingerprint(self) -> dict:
        return FP.fingerprint(self.root)

    # ---- activation -------------------------------------------------------------------------
    def request(self, serial: str | None = None) -> dict:
        """What offline activation sends to the vendor (a file, carried by hand)."""
        fp = self.fingerprint()
        return {"type": "activation_request", "format": core.FORMAT,
                "serial": core.normalize_serial(serial) if serial else None,
                "device_id": fp["device_id"], "fingerprint": fp["components"], "device_time": self.clock()}

    def activate_online(self, serial: str, server: str, timeout: float = 10.0) -> dict:
        req = self.request(serial)
        body = json.dumps(req).encode()
        url = server.rstrip("/") + "/v1/activate"
        try:
            r = urllib.request.urlopen(urllib.request.Request(url, body, {"Content-Type": "application/json"}),
                                       timeout=timeout)
            answer = json.loads(r.read())
        except urllib.error.HTTPError as e:
            try:
                err = json.loads(e.read())
            except ValueError:
                err = {}
            if "errno" in err:
                raise E.EdgeError(err["errno"], err.get("msg", "activation refused")) from None
            raise E.EdgeError(E.NETWORK_ERROR, f"license server {server} answered HTTP {e.code}: "
                              "use offline activation (`edge license request`)") from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            if isinstance(e, (socket.timeout, TimeoutError)) or isinstance(getattr(e, "reason", None),
                                                                             (socket.timeout, TimeoutError)):
                raise E.EdgeError(E.NETWORK_TIMEOUT, f"license server {server} did not answer in {timeout:g} s: "
                                  "check the network, or use offline activation (`edge license request`)") from None
            raise E.EdgeError(E.NETWORK_ERROR, f"cannot reach license server {server} ({e}): use offline "
                              "activation (`edge license request`)") from None
        if answer.get("revocations"):
            self.import_revocations(answer["revocations"])
        return self.install(answer["license"])

    def import_file(self, path: str | Path) -> dict:
        """A license file (offline activation), a batch bundle, or a revocation list."""
        doc = core.read_json(path, "license file")
        kind = doc.get("payload", {}).get("type") if isinstance(doc, dict) else None
        if kind == "bundle":
            payload = core.verify(self.key, doc, "bundle")
            fp = self.fingerprint()
            for lic in payload.get("licenses", []):
                p = lic.get("payload", {}) if isinstance(lic, dict) else {}
                if FP.matches(p.get("fingerprint") or {}, fp["components"])[0]:
                    return self.install(lic)
            raise E.EdgeError(E.LICENSE_ALREADY_USED, "this batch bundle has no license for this device "
                              f"(device id {fp['device_id']}): ask the vendor to add it")
        if kind == "revocations":
            return self.import_revocations(doc)
        return self.install(doc)

    def import_revocations(self, doc: dict) -> dict:
        p = core.verify(self.key, doc, "revocations")
        cur = self._revocations()
        if cur is None or p["issued"] >= cur["issued"]:
            write_atomic(self.dir / "revocations.json", json.dumps(doc).encode())
        return {"revoked_serials": len(p["serials"])}

    def install(self, doc: dict) -> dict:
        """Verify a license for this device and store it. The clock record never moves back:
        importing the same license again (or an older one) keeps the latest time seen. Only a
        license newly issued by the vendor, whose signed issue time is later than that of the
        license the record was started with, starts a new record (at its issue time or now):
        that is how a device whose clock was once set far ahead recovers (activate again
        online, or import a license the vendor signed anew)."""
        p = self._verify(doc)
        now = self.clock()
        if now < p["issued"] - core.CLOCK_SKEW:
            raise E.EdgeError(E.NOT_AUTHORIZED, f"the device clock ({_when(now)}) is behind the license's issue "
                              f"time ({_when(p['issued'])}): set the date and time and import it again")
        rec = self._record(doc)
        if rec is not None and p["issued"] <= rec["issued"]:
            last_seen, issued = max(now, rec["last_seen"]), rec["issued"]
        else:
            last_seen, issued = max(now, p["issued"]), p["issued"]
        write_atomic(self.license_path, json.dumps(doc, indent=1).encode())
        self._save_state(doc, last_seen, issued)
        return self.check()

    # ---- the check ------------------------------------------------------------------------
    def _verify(self, doc) -> dict:
        p = core.verify(self.key, doc, "license")
        fp = self.fingerprint()
        ok, differ = FP.matches(p.get("fingerprint") or {}, fp["components"])
        if not ok:
            raise E.EdgeError(E.LICENSE_ALREADY_USED, f"this license belongs to another device (device id "
                              f"{p.get('device_id')}; this one is {fp['device_id']}; {len(differ)} hardware "
                              "identifiers differ): activate this device with its own serial")
        rev = self._revocations()
        if rev and p["serial"] in rev["serials"]:
            raise E.EdgeError(E.LICENSE_KEY_INVALID, f"serial {p['serial']} has been revoked by the vendor")
        return p

    def _revocations(self) -> dict | None:
        path = self.dir / "revocations.json"
        if not path.is_file():
            return None
        return core.verify(self.key, core.read_json(path, "revocation list"), "revocations")

    def _state_key(self, doc: dict) -> bytes:
        # per serial and device (not per signature), so a re-issued license of the same serial
        # finds the record its predecessor left
        fp = json.dumps(doc["payload"].get("fingerprint"), sort_keys=True)
        vendor = core.key_id(core.public_raw(self.key))
        return hashlib.sha256(b"edge-license-state-v2\0" + vendor.encode() + b"\0"
                              + str(doc["payload"]["serial"]).encode() + b"\0" + fp.encode()).digest()

    def _save_state(self, doc: dict, last_seen: float, issued: float) -> None:
        body = {"serial": doc["payload"]["serial"], "last_seen": last_seen, "issued": issued}
        mac = hmac.new(self._state_key(doc), core.canonical(body), hashlib.sha256).hexdigest()
        write_atomic(self.dir / "state.json", json.dumps(body | {"mac": mac}).encode())

    def _record(self, doc: dict) -> dict | None:
        """The clock record of this license's serial ({last_seen, issued}), or None when it is
        missing, altered or another serial's."""
        try:
            st = json.loads((self.dir / "state.json").read_text())
            body = {"serial": st["serial"], "last_seen": float(st["last_seen"]), "issued": float(st["issued"])}
            good = hmac.compare_digest(str(st["mac"]), hmac.new(self._state_key(doc), core.canonical(body),
                                                                hashlib.sha256).hexdigest())
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not good or body["serial"] != doc["payload"]["serial"]:
            return None
        return body

    def _load_state(self, doc: dict) -> dict:
        rec = self._record(doc)
        if rec is None:
            raise E.EdgeError(E.NOT_AUTHORIZED, "the license's clock record is missing or was altered: activate "
                              "again with the same serial (online, or import the license file again)")
        return rec

    def check(self, feature: str | None = None, value=None) -> dict:
        """The license's payload if this device may run (and use ``feature`` = ``value``);
        raises the seed's codes otherwise, with what to do."""
        if not self.license_path.is_file():
            raise E.EdgeError(E.LICENSE_FILE_NOT_EXIST, "this device is not activated: run `edge license activate "
                              "SERIAL --server URL`, or `edge license request SERIAL` and import the license file "
                              "the vendor sends back (`edge license import FILE`)")
        doc = core.read_json(self.license_path, "license file")
        p = self._verify(doc)
        now = self.clock()
        rec = self._load_state(doc)
        last_seen = rec["last_seen"]
        tol = float(p.get("clock_tolerance", 0))
        if now < last_seen - tol:
            raise E.EdgeError(E.NOT_AUTHORIZED, f"the clock reads {_when(now)}, before this license was last seen "
                              f"running ({_when(last_seen)}): the clock was set back. Set the correct date and time.")
        # recorded before the expiry check: an expiry once seen stays seen, whatever the clock says later
        if now > last_seen + 60 or (p.get("expires") and now > p["expires"] >= last_seen):
            self._save_state(doc, max(now, last_seen), rec["issued"])
        effective = max(now, last_seen)
        if p.get("expires") and effective > p["expires"]:
            what = "trial serial (3 months from activation)" if p.get("trial") else "license"
            raise E.EdgeError(E.LICENSE_KEY_EXPIRE, f"the {what} {p['serial']} expired on {_when(p['expires'])}: "
                              "ask the vendor for a formal serial or an extension")
        if feature is not None:
            allowed = p.get("features", {}).get(feature)
            if allowed is not None and (value not in allowed if isinstance(allowed, list) else value > allowed):
                raise E.EdgeError(E.NOT_AUTHORIZED, f"this license does not cover {feature} = {value!r} "
                                  f"(licensed: {allowed}): ask the vendor to extend it")
        return p

    def status(self) -> dict:
        fp = self.fingerprint()
        out = {"device_id": fp["device_id"], "activated": False}
        try:
            p = self.check()
        except E.EdgeError as e:
            return out | {"errno": e.code, "error": e.name, "msg": e.message}
        return out | {"activated": True, "serial": p["serial"], "trial": p["trial"], "kind": p["kind"],
                      "activated_at": _when(p["activated"]), "expires": _when(p["expires"]) if p["expires"] else None,
                      "features": p["features"]}
