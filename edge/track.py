"""Multi-face tracker: stable track ids through short misses.

Detection runs on an interval (the seed's track.json); in between, each track is followed by the
landmark model from its previous position. On detection frames, detections are matched to the
tracks' predicted boxes (constant velocity) by IoU, then by centre distance; a track not seen for
``max_miss`` seconds ends.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .detect import iou_xyxy
from .faces import Face


@dataclass
class Track:
    id: int
    face: Face
    first_ts: float
    last_ts: float
    seen: int = 1                      # frames the face was found in
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))   # box centre, px per second

    def predicted_box(self, ts: float) -> np.ndarray:
        x, y, w, h = self.face.box
        dx, dy = self.velocity * max(0.0, ts - self.last_ts)
        return np.array([x + dx, y + dy, w, h])

    def _update(self, face: Face, ts: float):
        dt = ts - self.last_ts
        if dt > 0:
            c0 = _centre(self.face.box)
            v = (_centre(face.box) - c0) / dt
            self.velocity = 0.5 * self.velocity + 0.5 * v    # smoothed: detector boxes jitter
        self.face, self.last_ts = face, ts
        self.seen += 1


def _centre(box) -> np.ndarray:
    return np.array([box[0] + box[2] / 2, box[1] + box[3] / 2], np.float64)


def iou(a, b) -> float:
    """IoU of two (x, y, w, h) boxes."""
    xyxy = lambda r: np.array([r[0], r[1], r[0] + r[2], r[1] + r[3]], np.float64)
    return float(iou_xyxy(xyxy(a), xyxy(b)[None])[0])


class Tracker:
    def __init__(self, iou_match: float = 0.3, max_miss: float = 0.6, max_tracks: int = 5):
        self.iou_match, self.max_miss, self.max_tracks = iou_match, max_miss, max_tracks
        self.tracks: dict[int, Track] = {}
        self._next = 1
        self._prev_ts = None

    @property
    def started(self) -> int:
        return self._next - 1

    @staticmethod
    def _plausible(t: Track, f: Face, ts: float) -> bool:
        """A followed face that jumped or changed size abruptly is a neighbour, not this track
        (the landmark ROI can catch part of another face when its own face has left)."""
        pb = t.predicted_box(ts)
        jump = np.linalg.norm(_centre(pb) - _centre(f.box)) / max(pb[2], 1.0)
        ratio = f.box[2] / max(pb[2], 1.0)
        return jump < 0.35 and 0.75 < ratio < 1.33

    def step(self, ts: float, detections: list[Face] | None,
             follow: Callable[[Face], Face | None]) -> tuple[list[Track], list[Track]]:
        """One frame. ``detections`` is None on frames where the detector did not run.
        Returns (tracks seen in this frame, tracks that ended)."""
        seen: list[Track] = []
        unmatched = list(self.tracks.values())
        if detections is not None:
            pairs = []
            for ti, t in enumerate(unmatched):
                pb = t.predicted_box(ts)
                for di, d in enumerate(detections):
                    o = iou(pb, d.box)
                    dist = np.linalg.norm(_centre(pb) - _centre(d.box)) / max(pb[2], 1.0)
                    if o >= self.iou_match or dist < 0.5:
                        pairs.append((o - dist, ti, di))
            used_t, used_d = set(), set()
            for _, ti, di in sorted(pairs, reverse=True):
                if ti in used_t or di in used_d:
                    continue
                used_t.add(ti), used_d.add(di)
                unmatched[ti]._update(detections[di], ts)
                seen.append(unmatched[ti])
            unmatched = [t for i, t in enumerate(unmatched) if i not in used_t]
            for di, d in enumerate(detections):
                if di not in used_d and len(self.tracks) < self.max_tracks:
                    t = Track(self._next, d, ts, ts)
                    self._next += 1
                    self.tracks[t.id] = t
                    seen.append(t)
        # tracks the detector did not (or was not asked to) see: follow them with the landmarks
        for t in unmatched:
            if t.last_ts != self._prev_ts:
                continue   # lost last frame: only a detection may pick it up again (no ghosts)
            f = follow(t.face)
            if f is not None and self._plausible(t, f, ts) and all(iou(f.box, s.face.box) < 0.5 for s in seen):
                t._update(f, ts)
                seen.append(t)
        self._prev_ts = ts
        ended = [t for t in self.tracks.values() if t not in seen and ts - t.last_ts > self.max_miss]
        for t in ended:
            del self.tracks[t.id]
        return seen, ended
