"""Serial numbers and signed documents (licenses, bundles, revocation lists).

Serial: 16 characters of Crockford base32 in four groups (``3G59-M5JK-889A-7LQA`` as the seed's),
the last one a check character (Luhn mod 32), so a mistyped serial is caught on the device.

A signed document is ``{"payload": {...}, "signature": base64(Ed25519(canonical JSON)),
"key_id": ...}``. Devices hold only the vendor's public key.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from pathlib import Path

from .. import errors as E

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TYPO = str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V"})
FORMAT = 1
CLOCK_SKEW = 300.0   # seed: activation needs the device clock within ~5 minutes of the issuer's


def _check_char(body: str) -> str:
    total, factor = 0, 2
    for ch in reversed(body):
        v = factor * ALPHABET.index(ch)
        total += v // 32 + v % 32
        factor = 1 if factor == 2 else 2
    return ALPHABET[(32 - total % 32) % 32]


def new_serial() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(15))
    s = body + _check_char(body)
    return "-".join(s[i:i + 4] for i in range(0, 16, 4))


def normalize_serial(serial: str | None) -> str:
    if serial is None or not str(serial).strip():
        raise E.EdgeError(E.LICENSE_KEY_EMPTY, "no serial number given: it is printed on the device's label "
                          "or in the order (16 characters, e.g. 3G59-M5JK-889A-7LQA)")
    s = str(serial).upper().replace("-", "").replace(" ", "").translate(_TYPO)
    if len(s) != 16 or any(c not in ALPHABET for c in s) or _check_char(s[:15]) != s[15]:
        raise E.EdgeError(E.LICENSE_KEY_INVALID, f"{serial!r} is not a valid serial number: check it for typos "
                          "(16 characters in four groups)")
    return "-".join(s[i:i + 4] for i in range(0, 16, 4))


def canonical(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def public_raw(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_public_key(data: bytes | str | Path):
    """An Ed25519 public key: a file or bytes in PEM, or base64 of the 32 raw bytes."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if isinstance(data, Path) or (isinstance(data, str) and os.path.isfile(data)):
        data = Path(data).read_bytes()
    if isinstance(data, str):
        data = data.encode()
    data = data.strip()
    try:
        if data.startswith(b"-----BEGIN"):
            return serialization.load_pem_public_key(data)
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(data, validate=True))
    except (ValueError, TypeError) as e:
        raise E.EdgeError(E.LICENSE_KEY_INVALID, f"the vendor public key is not an Ed25519 key: {e}") from None


def sign(private_key, payload: dict) -> dict:
    sig = private_key.sign(canonical(payload))
    return {"payload": payload, "signature": base64.b64encode(sig).decode(),
            "key_id": key_id(public_raw(private_key.public_key()))}


def verify(public_key, doc, kind: str) -> dict:
    """The payload of a document signed by ``public_key``; -1017 when it was edited, signed by
    someone else, or is not a ``kind`` document."""
    from cryptography.exceptions import InvalidSignature

    what = {"license": "license", "bundle": "license bundle", "revocations": "revocation list"}[kind]
    if not isinstance(doc, dict) or not isinstance(doc.get("payload"), dict) or not isinstance(doc.get("signature"), str):
        raise E.EdgeError(E.LICENSE_KEY_INVALID, f"this is not a {what} file")
    try:
        public_key.verify(base64.b64decode(doc["signature"], validate=True), canonical(doc["payload"]))
    except (InvalidSignature, ValueError):
        raise E.EdgeError(E.LICENSE_KEY_INVALID, f"the {what}'s signature does not match: it was edited, or it "
                          "was not issued by this device's vendor. Ask the vendor for a new one.") from None
    p = doc["payload"]
    if p.get("type") != kind or p.get("format") != FORMAT:
        raise E.EdgeError(E.LICENSE_KEY_INVALID, f"this is a {p.get('type')!r} document, not a {what}")
    return p


def read_json(path: str | Path, what: str) -> dict:
    p = Path(path)
    if not p.is_file():
        raise E.EdgeError(E.LICENSE_FILE_NOT_EXIST, f"{what} not found: {p}")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise E.EdgeError(E.LICENSE_KEY_INVALID, f"{p} is not a {what} (not JSON)") from None
