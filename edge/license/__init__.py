"""Licensing: serial numbers bound to a hardware fingerprint, signed with the vendor's Ed25519 key.

Enforcement is on when the vendor's public key is installed on the device
(``license.public_key`` in the config, or ``EDGE_HOME/license/vendor.pub``): then recognition,
the camera loop and liveness refuse to run without a valid license. An installation without a
vendor key (open-source use) runs unlicensed; integrators who ship terminals install their key.
"""
from __future__ import annotations

from pathlib import Path

from .. import errors as E


def key_path(cfg) -> Path | None:
    if cfg.license.public_key:
        p = Path(cfg.license.public_key).expanduser()
        if not p.is_file():
            raise E.EdgeError(E.LICENSE_FILE_NOT_EXIST, f"license.public_key {p} does not exist: install the "
                              "vendor's public key there")
        return p
    p = cfg.home / "license" / "vendor.pub"
    return p if p.is_file() else None


def licensing(cfg):
    """The device's ``Licensing``, or None when no vendor key is installed."""
    from .device import Licensing

    key = key_path(cfg)
    return Licensing(cfg.home, key, cfg.license.root) if key else None


def require(cfg, feature: str | None = None, value=None) -> dict | None:
    """The license payload (None when licensing is off); raises -13 / -1015..-1020 otherwise."""
    lic = licensing(cfg)
    return lic.check(feature, value) if lic else None
