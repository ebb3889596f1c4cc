"""`edge doctor`: is this device fit to run the camera loop, and if not, what to fix.

Each check reads the device through one root directory (``/`` on the device, a recorded
``/proc``, ``/sys``, ``/etc``, ``/run`` tree in the tests) and gives ``ok``, ``warn`` or
``fail`` with what it saw and what to do. Checks: cameras (listed from sysfs and udev, the
configured one opened and one frame read), models (sha256 against their cards), licence, disk
space under ``EDGE_HOME``, clock (RTC / fake-hwclock, the licence's last-seen time), CPU
features (NEON/asimd on ARM, AVX2 on x86), thermal throttling (``vcgencmd get_throttled``,
``/sys/class/thermal``, the CPU frequency governor).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from . import errors as E
from .config import Config

# Disk: SQLite needs room for its WAL and a checkpoint; below this, writes fail outright
DISK_FAIL_MB = 64
# Thermal: the Raspberry Pi firmware starts throttling the ARM cores at 80 degC (Pi 4 and 5);
# used where the kernel publishes no passive trip point
THERMAL_WARN_C = 80.0
# Clock: a clock this far behind fake-hwclock's saved time was set back (fake-hwclock saves
# hourly, so normal boots are always ahead of it)
CLOCK_BACK_S = 60.0
# vcgencmd get_throttled bits (Raspberry Pi firmware documentation)
THROTTLE_BITS = {0: "under-voltage now", 1: "ARM frequency capped now", 2: "throttled now",
                 3: "soft temperature limit now", 16: "under-voltage since boot",
                 17: "frequency capped since boot", 18: "throttled since boot",
                 19: "soft temperature limit since boot"}
# /proc/cpuinfo "CPU part" of the ARM cores these boards use
ARM_PARTS = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
             "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0b": "Cortex-A76"}


@dataclass
class Check:
    name: str
    status: str                  # ok / warn / fail
    detail: str
    fix: str = ""
    data: dict = field(default_factory=dict)


def _read(p: Path) -> str | None:
    try:
        return p.read_text(errors="replace").strip("\0\n ")
    except OSError:
        return None


def _run_command(argv: list[str]) -> str | None:
    """stdout of a short command, or None when it is not installed or fails."""
    if not shutil.which(argv[0]):
        return None
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def read_one_frame(cfg: Config, timeout: float = 5.0) -> tuple[bool, str]:
    """Open the configured camera and read one frame (the check a person would make)."""
    from . import sources as S

    cam = cfg.camera
    try:
        src = S.make(cam.kind, cam.uri, cam.width, cam.height, cam.fps, paced=False, loop=False)
        src.open()
    except (S.SourceError, E.EdgeError, OSError) as e:
        return False, f"could not open: {e}"
    try:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                f = src.read()
            except S.EndOfStream:
                return False, "the source has no frames"
            except S.SourceError as e:
                return False, f"read failed: {e}"
            if f is not None:
                h, w = f.image.shape[:2]
                return True, f"read a {w}x{h} frame"
            time.sleep(0.02)
        return False, f"no frame within {timeout:.0f} s"
    finally:
        src.close()


# ---- cameras --------------------------------------------------------------------------------
def _udev_props(root: Path, dev: str | None) -> dict:
    """udev's database entry for a character device (``/run/udev/data/c<major>:<minor>``)."""
    text = _read(root / "run/udev/data" / f"c{dev}") if dev else None
    props = {}
    for line in (text or "").splitlines():
        if line.startswith("E:") and "=" in line:
            k, v = line[2:].split("=", 1)
            props[k] = v
    return props


def list_cameras(root: Path) -> list[dict]:
    out = []
    base = root / "sys/class/video4linux"
    for d in sorted(base.glob("video*"), key=lambda p: int(re.sub(r"\D", "", p.name) or 0)):
        dev = _read(d / "dev")
        props = _udev_props(root, dev)
        caps = props.get("ID_V4L_CAPABILITIES")
        out.append({"device": f"/dev/{d.name}", "name": _read(d / "name"), "index": _read(d / "index"),
                    "capture": (":capture:" in caps) if caps else None,
                    "id_path": props.get("ID_PATH"), "id_serial": props.get("ID_SERIAL")})
    return out


def check_cameras(cfg: Config, root: Path, read_frame: Callable | None) -> Check:
    cams = list_cameras(root)
    capture = [c for c in cams if c["capture"] is not False and c["index"] in (None, "0")]
    data = {"cameras": cams, "configured": {"kind": cfg.camera.kind, "uri": cfg.camera.uri}}
    listing = ", ".join(f"{c['device']} ({c['name']}; ID_PATH={c['id_path']})" for c in capture) or "none"
    cam = cfg.camera
    if cam.kind == "opencv" and (cam.uri.isdigit() or cam.uri.startswith("/dev/")):
        node = f"/dev/video{cam.uri}" if cam.uri.isdigit() else cam.uri
        if not capture:
            return Check("camera", "fail", f"no video capture device (configured: {node})",
                         "plug the camera in and check `dmesg | tail` for it; a CSI camera needs "
                         "camera_auto_detect=1 in /boot/firmware/config.txt", data)
        if root == Path("/") and not os.path.exists(node):
            return Check("camera", "fail", f"camera.uri {node} does not exist; cameras present: {listing}",
                         "set camera.uri in the config to one of them, or give the camera a stable name with "
                         "`install.sh --camera rgb=<ID_PATH>` and use /dev/edge-camera-rgb", data)
        if root == Path("/") and not os.access(node, os.R_OK | os.W_OK):
            return Check("camera", "fail", f"{node} exists but this user cannot open it",
                         "add the service user to the video group: usermod -a -G video edge", data)
    if read_frame is None:
        return Check("camera", "ok" if capture or cam.kind != "opencv" else "warn",
                     f"cameras: {listing}; no frame read (--no-camera)", "", data)
    ok, what = read_frame(cfg)
    data["read"] = what
    if not ok:
        return Check("camera", "fail", f"{cam.kind} {cam.uri}: {what}; cameras present: {listing}",
                     "check the cable and camera.uri / camera.kind in the config; another process "
                     "(a running `edge run`: systemctl stop edge) may hold the camera", data)
    return Check("camera", "ok", f"{cam.kind} {cam.uri}: {what}; cameras present: {listing}", "", data)


# ---- models ---------------------------------------------------------------------------------
def check_models(cfg: Config) -> Check:
    from .models import cards

    d = cfg.models_path
    wanted = {cfg.detect.detector, "facemesh", Path(cfg.embed.embedder).stem}
    states, bad_wanted, bad_other = {}, [], []
    for p in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            cards.verify(cards.read_card(p))
            states[p.stem] = "ok"
        except E.EdgeError as e:
            states[p.stem] = e.message
            (bad_wanted if p.stem in wanted else bad_other).append(p.stem)
    missing = sorted(w for w in wanted if w not in states and not Path(cfg.embed.embedder).is_file())
    data = {"models_dir": str(d), "models": states}
    if missing or bad_wanted:
        what = "; ".join([f"missing: {', '.join(missing)}"] * bool(missing) +
                         [f"{m}: {states[m]}" for m in bad_wanted])
        return Check("models", "fail", what, "run `edge models build --force` (as the service user, with its "
                     "EDGE_HOME) to rebuild and re-verify the pack", data)
    if bad_other:
        return Check("models", "warn", f"unused models fail their sha256: {', '.join(bad_other)}",
                     "`edge models build --force`, or delete their cards", data)
    return Check("models", "ok", f"{len(states)} models match their cards' sha256 ({d})", "", data)


# ---- licence --------------------------------------------------------------------------------
def check_license(cfg: Config) -> Check:
    from .license import key_path, licensing

    try:
        if key_path(cfg) is None:
            return Check("license", "ok", "licensing off: no vendor key installed (open-source use)")
        st = licensing(cfg).status()
    except E.EdgeError as e:
        return Check("license", "fail", e.message, "install the vendor's public key", {"errno": e.code})
    if st.get("activated"):
        return Check("license", "ok", f"activated, serial {st['serial']}, expires {st['expires'] or 'never'}",
                     "", st)
    return Check("license", "fail", f"not activated: {st.get('msg')}",
                 "activate: `edge license activate SERIAL --server URL`, or offline with "
                 "`edge license request SERIAL` and `edge license import FILE`", st)


# ---- disk -----------------------------------------------------------------------------------
def check_disk(cfg: Config) -> Check:
    p = Path(cfg.home)
    while not p.exists() and p != p.parent:
        p = p.parent
    usage = shutil.disk_usage(p)
    free_mb = usage.free / 2**20
    # what edge itself may grow to: the rotated event logs (current + kept files) and 100 MB
    # for the library, its WAL and the webhook queue
    need_mb = round(cfg.outputs.jsonl.max_mb * (cfg.outputs.jsonl.keep + 1) + 100)
    data = {"path": str(p), "free_mb": round(free_mb), "total_mb": round(usage.total / 2**20),
            "needed_mb": need_mb}
    fix = (f"free space on the file system holding {p} (old event logs: {cfg.home}/events; journald: "
           "journalctl --vacuum-size=50M), or lower outputs.jsonl.max_mb / keep")
    if free_mb < DISK_FAIL_MB:
        return Check("disk", "fail", f"{free_mb:.0f} MB free under {p}: the library cannot be written", fix, data)
    if free_mb < need_mb:
        return Check("disk", "warn", f"{free_mb:.0f} MB free under {p}; the event logs alone may take "
                     f"{need_mb - 100} MB", fix, data)
    return Check("disk", "ok", f"{free_mb:.0f} MB free under {p} (needs up to {need_mb} MB)", "", data)


# ---- clock ----------------------------------------------------------------------------------
def _license_last_seen(cfg: Config) -> float | None:
    # read, not verified: the licence check itself verifies the record; here it only explains
    try:
        return float(json.loads((cfg.home / "license" / "state.json").read_text())["last_seen"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _utc(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def check_clock(cfg: Config, root: Path, now: float) -> Check:
    saved = None
    text = _read(root / "etc/fake-hwclock.data")
    if text:
        try:
            saved = dt.datetime.strptime(text.splitlines()[0].strip(), "%Y-%m-%d %H:%M:%S") \
                .replace(tzinfo=dt.timezone.utc).timestamp()
        except ValueError:
            pass
    rtc = (root / "sys/class/rtc/rtc0").exists()
    last_seen = _license_last_seen(cfg)
    data = {"now": _utc(now), "rtc": rtc, "fake_hwclock_saved": _utc(saved) if saved else None,
            "license_last_seen": _utc(last_seen) if last_seen else None}
    set_clock = ("set the time: `timedatectl set-ntp true` with a network, or `date -s '2026-01-31 12:00'`; "
                 "then `fake-hwclock save`")
    if now < dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc).timestamp():
        return Check("clock", "fail", f"the clock reads {_utc(now)}: it was never set", set_clock, data)
    if last_seen and now < last_seen - 2 * 3600:
        return Check("clock", "fail", f"the clock ({_utc(now)}) is {(last_seen - now) / 3600:.1f} h behind the "
                     f"last time the licence was seen valid ({_utc(last_seen)}): the licence refuses to run",
                     set_clock, data)
    if saved and now < saved - CLOCK_BACK_S:
        return Check("clock", "fail", f"the clock ({_utc(now)}) is behind fake-hwclock's saved time "
                     f"({_utc(saved)}): it was set back", set_clock, data)
    if not rtc and saved is None:
        return Check("clock", "warn", f"no real-time clock and no fake-hwclock: after a power cut the clock "
                     f"starts in 1970 until the network sets it (now {_utc(now)})",
                     "apt-get install fake-hwclock (saves the time hourly and at shutdown), or fit an RTC", data)
    src = "RTC rtc0" if rtc else f"fake-hwclock (saved {_utc(saved)})"
    return Check("clock", "ok", f"{_utc(now)}; kept over power cuts by {src}", "", data)


# ---- CPU ------------------------------------------------------------------------------------
def check_cpu(root: Path) -> Check:
    text = _read(root / "proc/cpuinfo") or ""
    feats = set()
    for line in text.splitlines():
        key, _, val = line.partition(":")
        if key.strip() in ("Features", "flags"):
            feats |= set(val.split())
    parts = [ARM_PARTS.get(p, p) for p in re.findall(r"CPU part\s*:\s*(0x[0-9a-f]+)", text)]
    models = re.findall(r"model name\s*:\s*(.+)", text)
    board = _read(root / "proc/device-tree/model")
    cores = sorted(set(parts), key=parts.index)
    summary = ", ".join(f"{parts.count(c)}x {c}" for c in cores) if parts else (models[0].strip() if models else "?")
    data = {"board": board, "cores": len(parts) or len(models), "cpu": summary,
            "features": sorted(f for f in feats if f in ("asimd", "asimddp", "i8mm", "neon", "avx2", "avx512f",
                                                         "avx512_vnni", "avx_vnni", "fma", "sse4_2"))}
    where = f"{board + ': ' if board else ''}{summary}"
    if "asimd" in feats:
        extra = "; asimddp (int8 dot product) present" if "asimddp" in feats else \
            "; no asimddp: int8 models gain less than on Cortex-A76/A55"
        return Check("cpu", "ok", f"{where}; NEON (asimd){extra}", "", data)
    if "neon" in feats or re.search(r"CPU architecture\s*:\s*7", text):
        return Check("cpu", "fail", f"{where}: a 32-bit ARM system", "install the 64-bit (arm64) OS: onnxruntime and "
                     "faiss publish no 32-bit ARM wheels", data)
    if "avx2" in feats:
        vnni = "; VNNI (int8) present" if feats & {"avx512_vnni", "avx_vnni"} else ""
        return Check("cpu", "ok", f"{where}; AVX2{vnni}", "", data)
    if "flags" in text:
        return Check("cpu", "warn", f"{where}: no AVX2", "expect several times slower inference than the "
                     "README's figures", data)
    return Check("cpu", "warn", f"unrecognised CPU ({where})", "", data)


# ---- thermal --------------------------------------------------------------------------------
def _zones(root: Path) -> list[dict]:
    zones = []
    for z in sorted((root / "sys/class/thermal").glob("thermal_zone*")):
        t = _read(z / "temp")
        if not t or not t.lstrip("-").isdigit():
            continue
        # the highest passive trip: on RK3399 the first (70 degC) only switches the power
        # allocator on; the cores are held back at the second (85 degC)
        passive = []
        for tp in z.glob("trip_point_*_type"):
            if _read(tp) == "passive":
                v = _read(tp.with_name(tp.name.replace("_type", "_temp")))
                if v and v.isdigit():
                    passive.append(int(v) / 1000)
        zones.append({"zone": z.name, "type": _read(z / "type"), "celsius": int(t) / 1000,
                      "throttle_at": max(passive) if passive else None})
    return zones


def check_thermal(root: Path, run: Callable) -> Check:
    zones = _zones(root)
    governor = _read(root / "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    cur = _read(root / "sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq")
    top = _read(root / "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    data = {"zones": zones, "governor": governor,
            "mhz": int(cur) // 1000 if cur and cur.isdigit() else None,
            "max_mhz": int(top) // 1000 if top and top.isdigit() else None}
    problems, fixes = [], []
    out = run(["vcgencmd", "get_throttled"])
    m = re.search(r"throttled=(0x[0-9a-fA-F]+)", out or "")
    if m:
        bits = int(m.group(1), 16)
        data["throttled"] = m.group(1)
        flags = [name for b, name in THROTTLE_BITS.items() if bits >> b & 1]
        data["throttled_flags"] = flags
        if flags:
            problems.append("firmware reports " + ", ".join(flags))
            if bits & 0x10001:
                fixes.append("use the official power supply (5.1 V, 3 A for a Pi 4; 5 A for a Pi 5)")
            if bits & 0xE000E:
                fixes.append("add a heatsink or fan")
    for z in zones:
        limit = z["throttle_at"] or THERMAL_WARN_C
        if z["celsius"] >= limit - 5:
            problems.append(f"{z['type'] or z['zone']} at {z['celsius']:.1f} degC (throttles at {limit:.0f})")
            fixes.append("cool the board: heatsink, fan, or a case with airflow")
    if governor == "powersave":
        problems.append("CPU governor 'powersave' keeps the cores at their lowest clock")
        fixes.append("echo ondemand | sudo tee /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor")
    temps = ", ".join(f"{z['type'] or z['zone']} {z['celsius']:.1f} degC" for z in zones) or "no thermal zones"
    if problems:
        return Check("thermal", "warn", "; ".join(problems), "; ".join(dict.fromkeys(fixes)), data)
    clock = f"; {data['mhz']}/{data['max_mhz']} MHz, governor {governor}" if governor else ""
    return Check("thermal", "ok", f"{temps}{clock}" + ("; not throttled" if m else ""), "", data)


# ---- all ------------------------------------------------------------------------------------
def run_checks(cfg: Config, root: str | Path | None = None, now: float | None = None,
               run: Callable | None = None, read_frame: Callable | None = read_one_frame) -> dict:
    from .license import FINGERPRINT_ROOT   # this device's own /proc and /sys (not a config key)

    root = Path(root if root is not None else FINGERPRINT_ROOT)
    now = time.time() if now is None else now
    if run is None:   # a recorded tree has no commands to run
        run = _run_command if root == Path("/") else (lambda argv: None)
    checks = [check_cameras(cfg, root, read_frame), check_models(cfg), check_license(cfg), check_disk(cfg),
              check_clock(cfg, root, now), check_cpu(root), check_thermal(root, run)]
    return {"ok": all(c.status != "fail" for c in checks),
            "failed": [c.name for c in checks if c.status == "fail"],
            "warnings": [c.name for c in checks if c.status == "warn"],
            "checks": [asdict(c) for c in checks]}


def table(report: dict, width: int = 100) -> str:
    """The readable form: one row per check, and what to fix under it."""
    import textwrap

    mark = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
    lines = []
    for c in report["checks"]:
        body = textwrap.wrap(c["detail"], width - 18) or [""]
        lines.append(f"{mark[c['status']]}  {c['name']:<9} {body[0]}")
        lines += [" " * 16 + b for b in body[1:]]
        if c["fix"]:
            fix = textwrap.wrap("fix: " + c["fix"], width - 18)
            lines += [" " * 16 + b for b in fix]
    verdict = "all checks passed" if report["ok"] else f"failed: {', '.join(report['failed'])}"
    if report["warnings"]:
        verdict += f"; warnings: {', '.join(report['warnings'])}"
    return "\n".join(lines + [verdict])
