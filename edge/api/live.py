"""The live view: the camera loop's latest frame with boxes, track ids and names drawn.

The loop hands each processed frame over (``observe``, on its own thread: a reference swap,
nothing else); drawing and JPEG encoding happen only when someone watches, at most
``MAX_FPS`` times a second per viewer, on the request's side.
"""
from __future__ import annotations

import threading

import cv2
import numpy as np

from ..sources import map_box, orient

MAX_FPS = 10.0
GREEN, AMBER, RED = (60, 180, 60), (0, 170, 255), (50, 50, 220)


class LiveView:
    def __init__(self, cfg):
        self.cfg = cfg
        self._lock = threading.Lock()
        self._latest = None          # (frame, tracks)
        self.seq = 0

    def observe(self, frame, tracks: list[dict], events: list[dict]) -> None:
        with self._lock:
            self._latest = (frame, tracks)
            self.seq += 1

    def tracks(self) -> list[dict]:
        with self._lock:
            return list(self._latest[1]) if self._latest else []

    def upright(self) -> np.ndarray | None:
        """The latest frame as the detector sees it (the enrolment snapshot)."""
        with self._lock:
            item = self._latest
        if item is None:
            return None
        cam = self.cfg.camera
        return orient(item[0].image, cam.rotate, cam.mirror).copy()

    def render(self) -> bytes | None:
        with self._lock:
            item = self._latest
        if item is None:
            return None
        frame, tracks = item
        cam = self.cfg.camera
        det, disp = (cam.rotate, cam.mirror), (cam.display_rotate, cam.display_mirror)
        img = np.ascontiguousarray(orient(frame.image, *disp)).copy()
        raw = (frame.image.shape[1], frame.image.shape[0])
        for t in tracks:
            x, y, w, h = map_box(t["box"], raw, det, disp) if det != disp else t["box"]
            name = t["user_id"] or ("unknown" if t["unknown"] else "...")
            color = GREEN if t["user_id"] else (RED if t["unknown"] else AMBER)
            p0, p1 = (int(x), int(y)), (int(x + w), int(y + h))
            cv2.rectangle(img, p0, p1, color, 2)
            label = f"#{t['track_id']} {name}"
            (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 2)
            ty = max(th + base + 2, p0[1])
            cv2.rectangle(img, (p0[0] - 1, ty - th - base - 4), (p0[0] + tw + 6, ty), color, -1)
            cv2.putText(img, label, (p0[0] + 3, ty - base - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2,
                        cv2.LINE_AA)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
        return buf.tobytes() if ok else None
