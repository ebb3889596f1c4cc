"""Per-frame stages: orient -> detect (on an interval) / follow -> track -> quality gate ->
best frames -> liveness -> recognise -> vote -> decision -> events.

One ``Pipeline`` holds the per-track state; ``process(frame)`` returns the events that frame
produced (and hands them to ``emit``). All timing (intervals, votes, cool-downs) uses the
frame's timestamp, so a replay gives the same decisions however fast the machine is.
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import errors as E
from . import image as I
from . import liveness as L
from . import quality as Q
from .config import Config
from .engine import FaceEngine
from .faces import Face
from .sources import Frame, map_box, orient
from .track import Track, Tracker

log = logging.getLogger("edge.pipeline")


@dataclass
class Candidate:
    score: float
    ts: float
    image: np.ndarray
    face: Face
    paired: np.ndarray | None = None    # the NIR / depth view of the same instant, for liveness


@dataclass
class TrackState:
    first_ts: float
    good: int = 0                       # quality-passing frames this pass
    candidates: list[Candidate] = field(default_factory=list)
    votes: list[tuple[str | None, float, dict]] = field(default_factory=list)
    decided: str | None = None
    last_attempt: float = -math.inf
    unknown_sent: bool = False
    spoof_fails: int = 0
    spoof_sent: bool = False
    prompt_key: str | None = None
    prompt_ts: float = -math.inf
    live: dict = field(default_factory=dict)    # the liveness stage's per-track memory
    library_gen: int = -1               # library generation of the latest recognition attempt
    retry: int = 0                      # prompt attempts left after the library changed


@dataclass
class PipelineStats:
    frames: int = 0
    detections: int = 0                 # frames the detector ran on
    faces: int = 0                      # faces in the latest frame
    tracks: int = 0                     # tracks started
    decisions: int = 0
    unknown: int = 0
    spoof: int = 0
    prompts: int = 0
    recognitions: int = 0


class Pipeline:
    def __init__(self, cfg: Config, engine: FaceEngine, emit: Callable[[dict], None] | None = None,
                 liveness=None, attendance=None, wall_clock: Callable[[], float] = time.time):
        from .license import require

        require(cfg, "modes", cfg.decision.mode)
        for part in cfg.liveness.parts:             # each check of e.g. "rgb+nir" must be licensed
            require(cfg, "liveness", part)
        self.cfg = cfg
        self.engine = engine
        self.analyzer = engine.analyzer
        self.dc = cfg.decision
        self.tracker = Tracker(cfg.track.iou_match, cfg.track.max_miss, cfg.detect.max_detect_num)
        self.liveness = liveness or L.make(cfg, self.analyzer)
        self.emit = emit or (lambda ev: None)
        self.wall = wall_clock
        self.threshold = self.dc.threshold if self.dc.threshold >= 0 else cfg.recognition.threshold
        self.states: dict[int, TrackState] = {}
        self.last_open: dict[str, float] = {}
        self.stats = PipelineStats()
        self._last_detect = -math.inf
        self.library_gen = -1               # the generation the shared library held at this frame
        self.id_unit = None
        if self.dc.mode == "verify":
            img = I.load(self.dc.id_photo)
            face = self.analyzer.largest(img)
            self.id_unit = self.analyzer.template(img, face).unit
        self.attendance = attendance
        if self.dc.mode == "attendance" and attendance is None:
            from .attendance import Attendance
            self.attendance = Attendance(cfg.home / "db" / "attendance.db", cfg.attendance)

    # ---- one frame -----------------------------------------------------------------------------
    def process(self, frame: Frame) -> list[dict]:
        cam = self.cfg.camera
        img = orient(frame.image, cam.rotate, cam.mirror)
        ts = frame.ts
        tc = self.cfg.track
        interval = tc.detect_intv_during_track if self.tracker.tracks else tc.detect_intv_before_track
        detections = None
        if ts - self._last_detect >= interval - 1e-9:
            detections = self.analyzer.detect(img)
            self._last_detect = ts
            self.stats.detections += 1
        seen, ended = self.tracker.step(ts, detections, lambda f: self.analyzer.follow(img, f))
        if self.id_unit is None:
            # one query per frame: enrolments and deletions by any process are in the index the
            # next time a face is recognised, and tracks can react to the change (_track_frame)
            self.library_gen = self.engine.library.sync()
        self.stats.frames += 1
        self.stats.faces = len(seen)
        self.stats.tracks = self.tracker.started
        events: list[dict] = []
        for t in ended:
            events += self._ended(t, frame)
        for t in seen:
            events += self._track_frame(t, img, frame)
        for ev in events:
            self.emit(ev)
        return events

    def _track_frame(self, t: Track, img: np.ndarray, frame: Frame) -> list[dict]:
        st = self.states.get(t.id)
        if st is None:
            st = self.states[t.id] = TrackState(first_ts=t.first_ts)
        events = self._observe_liveness(t, st, img, frame)
        q = Q.assess(img, t.face, self.cfg.quality, rgb=frame.camera != "nir")
        if not q.ok:
            return events + self._prompt(t, st, q, frame)
        st.good += 1
        cam = self.cfg.camera
        paired = orient(frame.paired, cam.rotate, cam.mirror) if frame.paired is not None else None
        st.candidates.append(Candidate(q.score, frame.ts, img, t.face, paired))
        st.candidates = sorted(st.candidates, key=lambda c: -c.score)[:self.dc.best_frames]
        if st.unknown_sent and st.decided is None and 0 <= st.library_gen != self.library_gen:
            # found unknown against an older library, and someone was enrolled since (perhaps the
            # person standing here): try again on the next frames, not after the re-check interval
            st.retry, st.library_gen = self.dc.vote_window, self.library_gen
        slow = (st.decided is not None or st.unknown_sent) and not st.retry
        if st.good < self.dc.min_frames or (slow and frame.ts - st.last_attempt < self.dc.recheck):
            return events
        return events + self._attempt(t, st, frame)

    def _observe_liveness(self, t: Track, st: TrackState, img: np.ndarray, frame: Frame) -> list[dict]:
        """Every tracked frame goes to the liveness stage first (an action challenge needs the
        turned heads the quality gate refuses); it answers with prompts to show."""
        observe = getattr(self.liveness, "observe", None)
        if observe is None or st.decided is not None:
            return []
        prompts = observe(Frame(img, frame.ts, frame.index, frame.camera), t.face, st.live, self.cfg.camera.mirror)
        self.stats.prompts += len(prompts)
        return [self._event("prompt", t, frame, liveness="action", **p) for p in prompts]

    # ---- recognition and votes ---------------------------------------------------------------
    def _attempt(self, t: Track, st: TrackState, frame: Frame) -> list[dict]:
        best = st.candidates[0]
        st.candidates = []
        st.last_attempt = frame.ts
        if st.spoof_sent:               # a spoof stays one for the rest of the pass: no decision
            return []
        live = self.liveness(Frame(best.image, best.ts, frame.index, frame.camera, best.paired), best.face, st.live)
        if not live.passed and not live.pending:
            st.spoof_fails += 1
            if st.spoof_fails >= self.cfg.liveness.attempts and not st.spoof_sent:
                st.spoof_sent = True
                self.stats.spoof += 1
                return [self._event("spoof", t, frame, liveness={"kind": live.kind, "score": round(live.score, 4),
                                                                 **live.detail})]
            return []
        # recognise the very frame liveness judged
        unit = self.analyzer.template(best.image, best.face).unit
        self.stats.recognitions += 1
        st.library_gen = self.library_gen
        st.retry = max(0, st.retry - 1)
        if self.id_unit is not None:
            score = round(float(self.engine.embedder.score(float(np.dot(unit, self.id_unit)))), 2)
            res = {"match": score >= self.threshold, "user_id": "id_photo" if score >= self.threshold else None,
                   "user_list": [{"user_id": "id_photo", "score": score, "group_id": None, "user_info": None}]}
        else:
            res = self.engine.identify_template(unit, self.dc.groups or None, 2, self.threshold)
        top = res["user_list"][0] if res["user_list"] else None
        st.votes = (st.votes + [(res["user_id"], top["score"] if top else 0.0, top or {})])[-self.dc.vote_window:]
        if live.pending:                # recognised and voted; nothing decided before liveness has decided
            return []
        counts = Counter(u for u, _, _ in st.votes if u is not None)
        winner, n = counts.most_common(1)[0] if counts else (None, 0)
        live_d = {"kind": live.kind, "score": round(live.score, 4)}
        if winner is not None and n >= self.dc.vote and winner != st.decided:
            hit = next(v for u, _, v in reversed(st.votes) if u == winner)
            st.decided, st.votes = winner, []
            events = [self._decide(t, st, frame, hit, live_d)]
            if res["user_id"] == winner and self.id_unit is None:
                events += self._refresh_library(t, frame, best, res, live)
            return events
        if st.decided is None and not st.unknown_sent and len(st.votes) >= self.dc.vote_window and winner is None:
            return [self._unknown(t, st, frame)]
        return []

    def _decide(self, t: Track, st: TrackState, frame: Frame, hit: dict, live: dict) -> dict:
        self.stats.decisions += 1
        user = hit["user_id"]
        mode = self.dc.mode
        extra = {"user_id": user, "group_id": hit.get("group_id"), "user_info": hit.get("user_info"),
                 "score": hit["score"], "liveness": live,
                 "entered_ts": round(st.first_ts, 4), "decided_after_ms": round((frame.ts - st.first_ts) * 1000, 1)}
        if mode == "gate":
            last = self.last_open.get(user)
            if last is not None and frame.ts - last < self.dc.cooldown:
                extra["action"] = "cooldown"
            else:
                self.last_open[user] = frame.ts
                extra["action"] = "open"
        elif mode == "attendance":
            extra["action"] = self.attendance.record(user, self.wall(), hit["score"]) or "seen"
        else:
            return self._event("verify", t, frame, match=True, **extra)
        return self._event("decision", t, frame, **extra)

    def _refresh_library(self, t: Track, frame: Frame, best: Candidate, res: dict, live) -> list[dict]:
        """The dynamic base library: a live, confident, unambiguous match refreshes the user."""
        dl = self.cfg.dynamic_library
        if not dl.enabled or (dl.require_liveness and live.kind == "none"):
            return []
        users = res["user_list"]
        margin = users[0]["score"] - (users[1]["score"] if len(users) > 1 else 0.0)
        if users[0]["score"] < dl.min_score or margin < dl.margin:
            return []
        user = users[0]["user_id"]
        try:
            token, dropped = self.engine.library.refresh_dynamic(user, self.engine.record_for(best.image, best.face),
                                                                 dl.max_faces)
        except E.EdgeError as e:
            # a refresh is optional (a full disk, a library opened read-only): the gate carries on
            log.warning("dynamic library: not refreshed for user %s: %s", user, e.message)
            return []
        log.info("dynamic library: user %s +%s -%s (score %.1f, margin %.1f)", user, token, dropped,
                 users[0]["score"], margin)
        if token is None:
            return []
        return [self._event("library_refresh", t, frame, user_id=user, face_token=token, dropped=dropped,
                            score=users[0]["score"], margin=round(margin, 2))]

    def _unknown(self, t: Track, st: TrackState, frame: Frame) -> dict:
        st.unknown_sent = True
        self.stats.unknown += 1
        best = max((s for _, s, _ in st.votes), default=0.0)
        if self.dc.mode == "verify":
            return self._event("verify", t, frame, match=False, score=best)
        return self._event("unknown", t, frame, best_score=best,
                           decided_after_ms=round((frame.ts - st.first_ts) * 1000, 1))

    def _ended(self, t: Track, frame: Frame) -> list[dict]:
        st = self.states.pop(t.id, None)
        if st and st.decided is None and not st.unknown_sent and not st.spoof_sent and st.votes:
            return [self._unknown(t, st, frame)]
        return []

    def live_tracks(self, ts: float) -> list[dict]:
        """The tracks seen at ``ts`` with the decision each carries (a live view draws these)."""
        out = []
        for t in self.tracker.tracks.values():
            if t.last_ts != ts:
                continue
            st = self.states.get(t.id)
            out.append({"track_id": t.id, "box": [float(v) for v in t.face.box],
                        "user_id": st.decided if st else None, "unknown": bool(st and st.unknown_sent)})
        return out

    # ---- prompts and events -----------------------------------------------------------------
    def _prompt(self, t: Track, st: TrackState, q: Q.QualityResult, frame: Frame) -> list[dict]:
        r = q.reason
        if st.decided is not None:
            return []
        if r.key == st.prompt_key and frame.ts - st.prompt_ts < self.dc.prompt_interval:
            return []
        st.prompt_key, st.prompt_ts = r.key, frame.ts
        self.stats.prompts += 1
        return [self._event("prompt", t, frame, **r.to_dict(), best_score=q.score)]

    def _event(self, kind: str, t: Track, frame: Frame, **fields) -> dict:
        x, y, w, h = t.face.box
        ev = {"type": kind, "time": dt.datetime.fromtimestamp(self.wall()).astimezone().isoformat(timespec="milliseconds"),
              "ts": round(frame.ts, 4), "frame": frame.index, "camera": frame.camera, "mode": self.dc.mode,
              "track_id": t.id, "box": [round(x, 1), round(y, 1), round(w, 1), round(h, 1)]}
        cam = self.cfg.camera
        det, disp = (cam.rotate, cam.mirror), (cam.display_rotate, cam.display_mirror)
        if det != disp:
            h_, w_ = frame.image.shape[:2]
            ev["display_box"] = [round(v, 1) for v in map_box(t.face.box, (w_, h_), det, disp)]
        ev.update(fields)
        return ev

    def close(self):
        if self.attendance is not None:
            self.attendance.close()
