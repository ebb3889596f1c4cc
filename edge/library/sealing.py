"""Templates, crops and thumbnails encrypted at rest, under a key only this board can unwrap.

A random 256-bit data key encrypts every biometric value in ``face.db`` and the saved index with
AES-256-GCM. Each value is bound to its row (library id, column, face id, user id as associated
data), so ciphertexts cannot be moved between rows or libraries, and a flipped byte is caught.

The data key is stored in ``face.key`` wrapped by a key-encryption key derived from the board's
own identifiers (``license.fingerprint.raw_components``): CPU serial, eMMC CID, DMI UUID,
machine-id, never MAC addresses (a USB network adapter is a swappable part). The identifiers are
stretched with scrypt first (a Raspberry Pi's serial has about 32 bits of entropy: cheap to
enumerate through HKDF alone, not through scrypt), then HKDF-SHA256 binds the result to the
library. The data key is wrapped under the full set of identifiers and under every set with one
missing that still holds a board identifier, as the licence tolerates one changed part: a
reinstalled OS (new machine-id) keeps its library, another board never reads it.

What it protects: a stolen or copied SD card (or disk image) yields no faces. What it does not:
root on the running device, or someone holding the board itself, can read the identifiers and
unwrap the key. On a machine where only ``/etc/machine-id`` is readable (it lives on the same
card) the key is bound to that alone, which protects nothing against a copy of the card: that
is reported (``edge library check``) and logged when the key is made.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .. import errors as E
from ..files import write_atomic
from ..license import fingerprint as FP

log = logging.getLogger("edge.library")

# where /proc, /sys and /etc are read; tests pass another tree to FaceLibrary (never config)
DEFAULT_ROOT = "/"
COMPONENTS = ("cpu_serial", "emmc_cid", "dmi_uuid", "machine_id")
BOARD = FP.BOARD
FORMAT = "edge-library-key-1"
SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}    # ~16 MB, tens of ms per unwrap on a Pi
BLOB_VERSION = b"\x01"
NONCE = 12


class KeyUnusable(E.EdgeError):
    """The key file exists but this device cannot use it (another board, or no identifiers)."""


def device_identifiers(root: str | Path | None = None) -> dict[str, str]:
    raw = FP.raw_components(DEFAULT_ROOT if root is None else root)
    return {k: raw[k] for k in COMPONENTS if k in raw}


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _unb64(s: str) -> bytes:
    return base64.b64decode(s.encode(), validate=True)


def _kek(ids: dict[str, str], names: list[str], salt: bytes, library_id: str) -> bytes:
    ikm = b"\0".join(f"{n}={ids[n]}".encode() for n in sorted(names))
    stretched = Scrypt(salt=salt, length=32, **SCRYPT).derive(ikm)
    return HKDF(hashes.SHA256(), 32, salt, b"edge library key-encryption key|" + library_id.encode()).derive(stretched)


def _wrap_sets(names: list[str]) -> list[list[str]]:
    """The full set, then each set with one identifier missing that still names the board."""
    names = sorted(names)
    sets = [names]
    if len(names) >= 2:
        for drop in names:
            rest = [n for n in names if n != drop]
            if any(n in BOARD for n in rest):
                sets.append(rest)
    return sets


class Sealer:
    """AES-256-GCM with the library's data key; ``seal``/``open`` one value bound to its row.
    ``mac`` authenticates the plain columns of a row (ids, names, times), which SQLite's own
    checks cannot vouch for: a flipped byte in a user id would otherwise just read as another id."""

    def __init__(self, data_key: bytes, library_id: str, bound_to: list[str]):
        self._aead = AESGCM(data_key)
        self._mac_key = HKDF(hashes.SHA256(), 32, None, b"edge library row mac|" + library_id.encode()).derive(data_key)
        self.library_id = library_id
        self.bound_to = bound_to          # the identifier names the unwrapping key came from

    def mac(self, table: str, *values) -> bytes:
        msg = json.dumps([table, *values], separators=(",", ":"), ensure_ascii=False).encode()
        return hmac.new(self._mac_key, msg, "sha256").digest()[:16]

    def _aad(self, column: str, *row) -> bytes:
        return "|".join([self.library_id, column, *map(str, row)]).encode()

    def seal(self, data: bytes | None, column: str, *row) -> bytes | None:
        if data is None:
            return None
        nonce = os.urandom(NONCE)
        return BLOB_VERSION + nonce + self._aead.encrypt(nonce, bytes(data), self._aad(column, *row))

    def open(self, blob: bytes | None, column: str, *row) -> bytes | None:
        if blob is None:
            return None
        blob = bytes(blob)
        if blob[:1] != BLOB_VERSION or len(blob) < 1 + NONCE + 16:
            raise Damaged(f"{column} of row {row} is not a sealed value")
        try:
            return self._aead.decrypt(blob[1:1 + NONCE], blob[1 + NONCE:], self._aad(column, *row))
        except InvalidTag:
            raise Damaged(f"{column} of row {row} fails its authentication tag (changed on disk, or moved "
                          "from another row)") from None


class Damaged(Exception):
    """A sealed value that does not authenticate: the database was altered on disk."""


def create_key(path: Path, library_id: str, root=None) -> Sealer:
    """A new random data key, wrapped for this board, written atomically (0600)."""
    ids = device_identifiers(root)
    if not ids:
        raise E.EdgeError(E.DEVICE_ID_EMPTY, "cannot protect the face library: this machine shows none of the "
                          "identifiers its key is bound to (CPU serial, eMMC CID, DMI UUID, /etc/machine-id); "
                          "check that /proc and /sys are mounted and /etc/machine-id exists")
    if not any(n in BOARD for n in ids):
        log.warning("the face library key is bound to /etc/machine-id only (no CPU serial, eMMC CID or DMI "
                    "UUID readable here): a copy of this disk can unwrap it")
    data_key = AESGCM.generate_key(256)
    salt = os.urandom(16)
    wraps = []
    for names in _wrap_sets(list(ids)):
        nonce = os.urandom(NONCE)
        kek = AESGCM(_kek(ids, names, salt, library_id))
        wraps.append({"components": names, "nonce": _b64(nonce),
                      "key": _b64(kek.encrypt(nonce, data_key, _wrap_aad(library_id, names)))})
    doc = {"format": FORMAT, "library_id": library_id, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "cipher": "AES-256-GCM", "kdf": {"scrypt": SCRYPT, "then": "HKDF-SHA256"}, "salt": _b64(salt),
           "wraps": wraps}
    write_atomic(path, (json.dumps(doc, indent=1) + "\n").encode(), 0o600)
    return Sealer(data_key, library_id, sorted(ids))


def _wrap_aad(library_id: str, names: list[str]) -> bytes:
    return f"edge-library-key|{library_id}|{','.join(names)}".encode()


def read_key_file(path: Path) -> dict:
    try:
        doc = json.loads(path.read_bytes())
        if doc.get("format") != FORMAT or not isinstance(doc.get("wraps"), list):
            raise ValueError("not an edge library key file")
        return doc
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise KeyUnusable(E.DB_OP_FAILED, f"the library key file {path} is unreadable ({e}): restore it from "
                        "the backup you took with the library, or restore the library from an export") from None


def load_key(path: Path, root=None) -> Sealer:
    """Unwrap the data key with this board's identifiers; a clear error on another board."""
    doc = read_key_file(path)
    ids = device_identifiers(root)
    lib = doc["library_id"]
    salt = _unb64(doc["salt"])
    for w in doc["wraps"]:
        names = w["components"]
        if not all(n in ids for n in names):
            continue
        try:
            kek = AESGCM(_kek(ids, names, salt, lib))
            key = kek.decrypt(_unb64(w["nonce"]), _unb64(w["key"]), _wrap_aad(lib, names))
        except (InvalidTag, ValueError):
            continue
        if names != doc["wraps"][0]["components"]:
            log.warning("library key unwrapped with one identifier changed (%s of %s)", names,
                        doc["wraps"][0]["components"])
        return Sealer(key, lib, names)
    wanted = doc["wraps"][0]["components"] if doc["wraps"] else []
    raise KeyUnusable(E.DB_OP_FAILED, f"this face library was sealed on another board (its key is bound to "
                    f"{', '.join(wanted) or 'nothing'}; this machine's differ): a replaced board cannot read the "
                    "old library, by design. Restore it from an `edge export` file (README: Device state)")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
