"""Licensing: serial numbers bound to a hardware fingerprint, signed with the vendor's Ed25519 key.

Enforcement is on when the vendor's public key is installed on the device: then recognition,
the camera loop and liveness refuse to run without a valid license. An installation without a
vendor key (open-source use) runs unlicensed; integrators who ship terminals install their key.

Where the key is looked for, first match wins:
1. ``SYSTEM_KEY`` (``/etc/edge/vendor.pub``, written by ``deploy/install.sh`` as root). Once it
   is there, nothing a user controls can replace it: not the config, not an environment
   variable, not ``EDGE_HOME`` pointed at a home holding another ``vendor.pub`` (or none).
2. ``EDGE_HOME/license/vendor.pub``, for installations without the system key; this one moves
   with ``EDGE_HOME``, so it guards against edited licenses but not against a user who can
   choose ``EDGE_HOME``.

The fingerprint is read under ``FINGERPRINT_ROOT`` (``/``). Neither is a config key: tests set
these module attributes (``tests/licensing.py``), or pass ``Licensing(..., root=...)``.
"""
from __future__ import annotations

from pathlib import Path

SYSTEM_KEY = Path("/etc/edge/vendor.pub")
FINGERPRINT_ROOT = "/"


def key_path(cfg) -> Path | None:
    if SYSTEM_KEY.is_file():
        return SYSTEM_KEY
    p = cfg.home / "license" / "vendor.pub"
    return p if p.is_file() else None


def licensing(cfg):
    """The device's ``Licensing``, or None when no vendor key is installed."""
    from .device import Licensing

    key = key_path(cfg)
    return Licensing(cfg.home, key, FINGERPRINT_ROOT) if key else None


def require(cfg, feature: str | None = None, value=None) -> dict | None:
    """The license payload (None when licensing is off); raises -13 / -1015..-1020 otherwise."""
    lic = licensing(cfg)
    return lic.check(feature, value) if lic else None
