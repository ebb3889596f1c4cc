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
from .systemd import Notifier

log = logging.getLogger("edge.run")
LOG_STATUS_EVERY = 10.0   # seconds between status lines when stderr is not a terminal
LICENSE_RECHECK = 600.0   # seconds between license checks while running (expiry, clock)
MAX_FPIR = 0.01           # warn above this chance that a stranger matches someone (README per-size table)
# without systemd's watchdog, `edge run` itself exits non-zero when its loop has not iterated
# for this long (an iteration normally takes < 0.5 s: the frame wait times out at 0.5 s), so a
# supervisor (docker's restart policy, a shell loop) restarts it; systemd's WatchdogSec (30 s in
# deploy/edge.service) acts first
LOOP_STALL_EXIT = 120.0
# test hook: "hang:SECONDS" blocks the loop's thread, "die:SECONDS" raises in it, after that long
FAULT_ENV = "EDGE_TEST_LOOP_FAULT"


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


def warn_fpir(cfg: Config, engine) -> float | None:
    """Log a warning when the configured threshold lets a stranger match someone in the searched
    library more often than MAX_FPIR (the calibrated 1:1 rate grows with every enrolled user);
    returns the expected rate."""
    from .scores import expected_fpir, threshold_for

    thr = cfg.decision.threshold if cfg.decision.threshold >= 0 else cfg.recognition.threshold
    lib = engine.library
    groups = cfg.decision.groups or [None]
    users = sum(lib.count(g)["users"] for g in groups)
    scale = engine.embedder.scale
    fpir = expected_fpir(scale, thr, users)
    if fpir is not None and fpir > MAX_FPIR:
        log.warning("threshold %g with %d enrolled users: a stranger would match someone %.1f %% of the time "
                    "(expected from the embedder's 1:1 calibration); threshold %g keeps it under %g %% (README "
                    "\"Scores, thresholds and measured accuracy\")", thr, users, 100 * fpir,
                    threshold_for(scale, users, MAX_FPIR), 100 * MAX_FPIR)
    return fpir


class Runner:
    def __init__(self, cfg: Config, engine, source: S.Source, dispatcher: O.Dispatcher | None = None,
                 status_every: float = 1.0, on_status=None, on_frame=None, notifier: Notifier | None = None):
        self.cfg = cfg
        if cfg.decision.mode != "verify":
            engine.library.check_structure()   # the service starts: the database, once
            check_groups(cfg, engine)
            warn_fpir(cfg, engine)
        self.dispatcher = dispatcher if dispatcher is not None else O.build(cfg)
        self.pipeline = Pipeline(cfg, engine, emit=self.dispatcher.publish)
        cam = cfg.camera
        self.source = S.Reconnecting(source, cam.stall_timeout, backoff_max=cam.backoff_max)
        self.grabber = S.LatestFrame(self.source)
        self.stop_event = threading.Event()
        self.status_every = status_every
        self.on_status = on_status or self._print_status
        # frame observer (the admin page's live view): on_frame(frame, live_tracks, events) after
        # each processed frame, on the loop's thread, so it must only hand the values over
        self.on_frame = on_frame
        self.last_status: dict = {}
        self.started = 0.0
        self._license_checked = time.monotonic()
        self._logged = 0.0
        self._tty = sys.stderr.isatty()
        # systemd's READY and watchdog from this loop's iterations; `edge serve` passes its own
        # (silent) one and answers systemd itself, for the API and the loop together
        self.notifier = notifier if notifier is not None else Notifier()
        self.last_tick = time.monotonic()
        self.fault = _fault_from_env()
        self.ended = False          # the source ended (a replay without loop): not a camera to reconnect

    def status(self, fps: float) -> dict:
        p = self.pipeline.stats
        s = self.source.stats
        return {"fps": round(fps, 1), "frames": p.frames, "faces": p.faces, "tracks": p.tracks,
                "decisions": p.decisions, "unknown": p.unknown, "spoof": p.spoof, "drops": s.dropped,
                "reconnects": s.reconnects,
                "camera": "ended" if self.ended else "ok" if s.connected else "reconnecting",
                **({} if s.connected or self.ended or not s.last_error else {"camera_error": s.last_error}),
                "library_generation": self.pipeline.library_gen,
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
                self.last_tick = time.monotonic()
                self.notifier.tick()           # READY once, then watchdog pings from this thread
                if self.fault is not None:
                    self.fault(self.last_tick - self.started)
                if seconds is not None and time.monotonic() - self.started >= seconds:
                    break
                try:
                    frame = self.grabber.get(timeout=0.5)
                except S.EndOfStream:
                    self.ended = True
                    break
                if frame is not None:
                    events = self.pipeline.process(frame)
                    if self.on_frame is not None:
                        self.on_frame(frame, self.pipeline.live_tracks(frame.ts), events)
                now = time.monotonic()
                if now - self._license_checked >= LICENSE_RECHECK:
                    self._license_checked = now
                    require(self.cfg)          # a license that expires mid-run stops the loop
                if now - t0 >= self.status_every:
                    frames = self.pipeline.stats.frames
                    self.last_status = self.status((frames - n0) / (now - t0))
                    self.on_status(self.last_status)
                    n0, t0 = frames, now
        finally:
            self.notifier.stopping()
            self.grabber.stop()
            self.dispatcher.close()
            self.pipeline.close()
            if self._tty and self.on_status == self._print_status:
                sys.stderr.write("\n")
        elapsed = time.monotonic() - self.started
        return self.status(self.pipeline.stats.frames / max(elapsed, 1e-9)) | {"seconds": round(elapsed, 1)}

    def stop(self, *_):
        self.stop_event.set()


def _fault_from_env():
    spec = os.environ.get(FAULT_ENV, "")
    if not spec:
        return None
    kind, _, after = spec.partition(":")
    try:
        after_s = float(after or 0)
    except ValueError:
        after_s = -1.0
    if kind not in ("hang", "die") or after_s < 0:
        raise E.EdgeError(E.PARARM_ERROR, f"{FAULT_ENV}={spec!r}: use hang:SECONDS or die:SECONDS")

    def fault(elapsed: float):
        if elapsed < after_s:
            return
        log.warning("%s=%s: the camera loop's thread %s now", FAULT_ENV, spec,
                    "hangs" if kind == "hang" else "dies")
        if kind == "hang":
            threading.Event().wait()
        raise RuntimeError(f"{FAULT_ENV}: the camera loop's thread was killed")
    return fault


def run_supervised(runner: Runner, seconds: float | None = None, stall_exit: float = LOOP_STALL_EXIT) -> dict:
    """Run the loop on its own thread and watch it from this one (which also takes the signals).

    A loop thread that dies or stops iterating for ``stall_exit`` seconds is an error (exit
    code 1), never a process that lingers with a dead camera loop.
    """
    box: dict = {}

    def target():
        try:
            box["result"] = runner.run(seconds)
        except BaseException as e:   # reported by the watching thread
            box["error"] = e

    t = threading.Thread(target=target, name="edge-loop", daemon=True)
    t.start()
    while t.is_alive():
        t.join(timeout=1.0)
        stalled = time.monotonic() - runner.last_tick
        if t.is_alive() and stalled > stall_exit:
            raise E.EdgeError(E.SYSTEM_ERROR, f"the camera loop has not run for {stalled:.0f} s: exiting so "
                              "the service manager restarts it")
    err = box.get("error")
    if isinstance(err, E.EdgeError):
        raise err
    if err is not None:
        log.error("the camera loop's thread died", exc_info=err)
        raise E.EdgeError(E.SYSTEM_ERROR, f"the camera loop's thread died: {type(err).__name__}: {err}")
    return box["result"]
