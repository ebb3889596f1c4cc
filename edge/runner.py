"""`edge run`: source -> pipeline -> outputs, with a status line, until stopped.

The camera is read on its own thread (newest frame wins, drops counted); a camera that fails is
reopened with backoff; outputs run on their own threads. Ctrl-C / SIGTERM stop it cleanly.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time

from . import errors as E
from . import outputs as O
from . import sources as S
from .config import Config
from .license import require
from .pipeline import Pipeline

log = logging.getLogger("edge.run")
LOG_STATUS_EVERY = 10.0   # seconds between status lines when stderr is not a terminal
LICENSE_RECHECK = 600.0   # seconds between license checks while running (expiry, clock)


def rss_mb() -> float:
    """Resident memory of this process (MB), from /proc (Linux)."""
    try:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def camera_source(cfg: Config, uri: str | None = None) -> S.Source:
    cam = cfg.camera
    if uri:
        src = S.from_uri(uri, width=cam.width, height=cam.height, fps=cam.fps, paced=True, loop=cam.loop)
    elif cam.kind != "picamera2" and not cam.uri:
        raise E.EdgeError(E.PARARM_ERROR, f"camera.uri is empty for a {cam.kind} camera: set it in the config "
                          "or give --source")
    else:
        src = S.make(cam.kind, cam.uri, cam.width, cam.height, cam.fps, paced=True, loop=cam.loop)
    if cam.second_kind:
        second = S.make(cam.second_kind, cam.second_uri, cam.width, cam.height, cam.fps, paced=True, loop=cam.loop)
        src = S.Paired(src, second, cam.max_skew)
    S.preflight(src)
    return src


def check_groups(cfg: Config, engine) -> None:
    """A gate searching a group that does not exist would never open. In a library that has
    groups that is a typo: refuse to start. In a library with none yet (a fresh install whose
    people are enrolled later, perhaps through this same service's admin page) start, and say
    who the gate is waiting for: the loop sees enrolments as they are made."""
    lib = engine.library
    if not lib.group_list(0, 1):
        if cfg.decision.groups:
            log.warning("the library is empty: the gate opens for nobody until users are enrolled into %s",
                        ", ".join(cfg.decision.groups))
        return
    for g in cfg.decision.groups:
        try:
            lib.get_user_list(g, 0, 1)
        except E.EdgeError as e:
            if e.code != E.RECORD_UNEXIST:
                raise
            raise E.EdgeError(E.RECORD_UNEXIST, f"decision.groups names group {g!r}, which does not exist in "
                              f"{cfg.db_path}: enrol users into it first (`edge user add … --group {g}`) or fix "
                              "the config", http_code=223100) from None


class Runner:
    def __init__(self, cfg: Config, engine, source: S.Source, dispatcher: O.Dispatcher | None = None,
                 status_every: float = 1.0, on_status=None):
        self.cfg = cfg
        if cfg.decision.mode != "verify":
            check_groups(cfg, engine)
        self.dispatcher = dispatcher if dispatcher is not None else O.build(cfg)
        self.pipeline = Pipeline(cfg, engine, emit=self.dispatcher.publish)
        cam = cfg.camera
        self.source = S.Reconnecting(source, cam.stall_timeout, backoff_max=cam.backoff_max)
        self.grabber = S.LatestFrame(self.source)
        self.stop_event = threading.Event()
        self.status_every = status_every
        self.on_status = on_status or self._print_status
        self.started = 0.0
        self._license_checked = time.monotonic()
        self._logged = 0.0
        self._tty = sys.stderr.isatty()

    def status(self, fps: float) -> dict:
        p = self.pipeline.stats
        s = self.source.stats
        return {"fps": round(fps, 1), "frames": p.frames, "faces": p.faces, "tracks": p.tracks,
                "decisions": p.decisions, "unknown": p.unknown, "spoof": p.spoof, "drops": s.dropped,
                "reconnects": s.reconnects, "camera": "ok" if s.connected else "reconnecting",
                **({} if s.connected or not s.last_error else {"camera_error": s.last_error}),
                "outputs": self.dispatcher.stats(), "rss_mb": round(rss_mb(), 1)}

    def _print_status(self, st: dict):
        out_drops = sum(v["dropped"] for v in st["outputs"].values())
        line = (f"fps {st['fps']:5.1f} | faces {st['faces']} | decisions {st['decisions']} | unknown {st['unknown']}"
                f" | drops {st['drops']} | camera {st['camera']} (reconnects {st['reconnects']})"
                f" | output drops {out_drops} | rss {st['rss_mb']:.0f} MB")
        if self._tty:
            sys.stderr.write("\r" + line + " " * 4)
            sys.stderr.flush()
        elif time.monotonic() - self._logged >= LOG_STATUS_EVERY:
            # a service (journald, docker logs): one structured line every LOG_STATUS_EVERY seconds
            self._logged = time.monotonic()
            sys.stderr.write(json.dumps({"level": "INFO", "logger": "edge.run", "status": st}) + "\n")
            sys.stderr.flush()

    def run(self, seconds: float | None = None) -> dict:
        self.started = time.monotonic()
        self.grabber.start()
        n0, t0 = 0, time.monotonic()
        try:
            while not self.stop_event.is_set():
                if seconds is not None and time.monotonic() - self.started >= seconds:
                    break
                try:
                    frame = self.grabber.get(timeout=0.5)
                except S.EndOfStream:
                    break
                if frame is not None:
                    self.pipeline.process(frame)
                now = time.monotonic()
                if now - self._license_checked >= LICENSE_RECHECK:
                    self._license_checked = now
                    require(self.cfg)          # a license that expires mid-run stops the loop
                if now - t0 >= self.status_every:
                    frames = self.pipeline.stats.frames
                    self.on_status(self.status((frames - n0) / (now - t0)))
                    n0, t0 = frames, now
        finally:
            self.grabber.stop()
            self.dispatcher.close()
            self.pipeline.close()
            if self._tty and self.on_status == self._print_status:
                sys.stderr.write("\n")
        elapsed = time.monotonic() - self.started
        return self.status(self.pipeline.stats.frames / max(elapsed, 1e-9)) | {"seconds": round(elapsed, 1)}

    def stop(self, *_):
        self.stop_event.set()
