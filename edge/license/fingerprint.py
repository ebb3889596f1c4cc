"""The device's hardware fingerprint, read from /proc, /sys and /etc under a configurable root
(tests use recorded trees of a Raspberry Pi, an RK3399 board and a PC).

Components (each hashed with SHA-256 and a salt, so the raw serials never leave the device):
- ``cpu_serial``: Raspberry Pi CPU serial (``/proc/cpuinfo`` "Serial", else the device tree's
  ``serial-number``, which Rockchip boards fill too);
- ``emmc_cid``: the eMMC's CID (``/sys/block/mmcblk*/device/cid``, type MMC only);
- ``dmi_uuid``: DMI product UUID (PCs, x86 boards);
- ``machine_id``: ``/etc/machine-id`` (changes when the OS is reinstalled);
- ``mac:<hash>``: one per physical network interface (those with a ``device`` link in
  ``/sys/class/net``), in sorted order, as the seed's "multiple NICs read in order".

Board components (cpu_serial, emmc_cid, dmi_uuid) identify the board; a license matches a
device when at most one licensed component differs and, if the license has board components,
at least one of them still matches: a replaced USB network adapter or a reinstalled OS keeps the
license, another board does not.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from .. import errors as E

SALT = b"edge-license-fingerprint-v1"
BOARD = ("cpu_serial", "emmc_cid", "dmi_uuid")
ZERO_SERIALS = {"", "0", "0000000000000000", "00000000-0000-0000-0000-000000000000", "none",
                "not specified", "to be filled by o.e.m.", "default string", "03000200-0400-0500-0006-000700080009"}


def _read(p: Path) -> str:
    try:
        return p.read_bytes().replace(b"\x00", b"").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _usable(v: str) -> bool:
    return v.strip().lower() not in ZERO_SERIALS and set(v.strip()) - {"0", ":", "-"} != set()


def raw_components(root: str | Path = "/") -> dict[str, str]:
    """The raw identifiers found under ``root`` (never stored or sent; see ``components``)."""
    r = Path(root)
    out: dict[str, str] = {}
    for line in _read(r / "proc/cpuinfo").splitlines():
        key, _, val = line.partition(":")
        if key.strip().lower() == "serial" and _usable(val):
            out["cpu_serial"] = val.strip().lower().lstrip("0") or "0"
    if "cpu_serial" not in out:
        for p in (r / "proc/device-tree/serial-number", r / "sys/firmware/devicetree/base/serial-number"):
            v = _read(p)
            if _usable(v):
                out["cpu_serial"] = v.lower().lstrip("0")
                break
    for blk in sorted((r / "sys/block").glob("mmcblk*")):
        dev = blk / "device"
        if _read(dev / "type") in ("MMC", "") and _usable(_read(dev / "cid")):
            out["emmc_cid"] = _read(dev / "cid").lower()
            break
    uuid = _read(r / "sys/class/dmi/id/product_uuid")
    if _usable(uuid):
        out["dmi_uuid"] = uuid.lower()
    mid = _read(r / "etc/machine-id")
    if _usable(mid):
        out["machine_id"] = mid.lower()
    macs = []
    net = r / "sys/class/net"
    for iface in sorted(net.iterdir()) if net.is_dir() else []:
        mac = _read(iface / "address").lower()
        if (iface / "device").exists() and _usable(mac):   # physical: virtual ones have no device
            macs.append(mac)
    for mac in sorted(set(macs)):
        out[f"mac:{mac}"] = mac
    return out


def _h(name: str, value: str) -> str:
    return hashlib.sha256(SALT + b"\0" + name.encode() + b"\0" + value.encode()).hexdigest()[:32]


def components(root: str | Path = "/") -> dict[str, str]:
    """Component name -> salted hash. MAC components are named by their own hash."""
    out = {}
    for name, value in raw_components(root).items():
        if name.startswith("mac:"):
            h = _h("mac", value)
            out[f"mac:{h[:12]}"] = h
        else:
            out[name] = _h(name, value)
    if not out:
        raise E.EdgeError(E.DEVICE_ID_EMPTY, "could not read any hardware identifier (no CPU serial, eMMC CID, "
                          f"DMI UUID, machine-id or network card under {root}): check /proc and /sys are mounted")
    return dict(sorted(out.items()))


def device_id(comps: dict[str, str]) -> str:
    """A short, stable id for people to read out (not used for matching)."""
    h = hashlib.sha256("|".join(f"{k}={v}" for k, v in sorted(comps.items())).encode()).hexdigest().upper()
    return "-".join(h[i:i + 4] for i in range(0, 16, 4))


def matches(licensed: dict[str, str], current: dict[str, str]) -> tuple[bool, list[str]]:
    """(match, the licensed components that differ)."""
    differ = [k for k, v in licensed.items() if current.get(k) != v]
    board = [k for k in licensed if k in BOARD]
    board_ok = not board or any(current.get(k) == licensed[k] for k in board)
    return len(differ) <= 1 and board_ok, differ


def fingerprint(root: str | Path = "/") -> dict:
    comps = components(root)
    return {"device_id": device_id(comps), "components": comps}
