"""Moving scenes composed from real photos: people (head-and-shoulders cut-outs of real face
photos) walking into, across and out of a 640x480 camera view. Used by the pipeline tests,
`edge bench pipeline` and the soak run, where a recorded video of enrolled people is not
available. The faces are the photos' own pixels, only scaled and moved.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge import image as I


@dataclass
class Actor:
    photo: str | Path
    enter: int                         # first frame the person is on screen (partly, maybe)
    leave: int                         # first frame they are gone
    start: tuple[float, float]         # face centre (px) at `enter`; may lie outside the frame
    end: tuple[float, float]           # face centre at `leave - 1`
    face_px: int = 130                 # face box size on screen
    name: str = ""
    # "head": a soft head-shaped cut-out of the photo (a person); "whole": the whole photo as a
    # rectangle (a photo or phone screen held up to the camera, edges and all)
    shape: str = "head"
    _cut: tuple | None = field(default=None, repr=False)

    def centre(self, i: int) -> np.ndarray:
        p = (i - self.enter) / max(1, self.leave - 1 - self.enter)
        return np.array(self.start, float) + p * (np.array(self.end, float) - np.array(self.start, float))

    def on(self, i: int) -> bool:
        return self.enter <= i < self.leave


def cutout(img: np.ndarray, box, face_px: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Square patch around the face scaled so the face is ``face_px``, a soft head-shaped alpha
    mask, and the face centre in patch coordinates."""
    x, y, w, h = box
    k = face_px / max(w, h)
    side = int(round(2.2 * face_px))
    cx, cy = (x + w / 2) * k, (y + h / 2) * k
    M = np.array([[k, 0, side / 2 - cx], [0, k, side / 2 - cy]])
    patch = cv2.warpAffine(img, M, (side, side), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    mask = np.zeros((side, side), np.float32)
    cv2.ellipse(mask, (side // 2, int(side * 0.47)), (int(side * 0.34), int(side * 0.45)), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), side * 0.03)
    return patch, mask[..., None], np.array([side / 2, side / 2])


def whole(img: np.ndarray, box, face_px: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The whole photo scaled so the face is ``face_px``, opaque, and the face centre in it: a
    presentation attack keeps what the camera saw around the face (a phone's bezel, a hand)."""
    x, y, w, h = box
    k = face_px / max(w, h)
    patch = cv2.resize(img, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    return patch, np.ones(patch.shape[:2] + (1,), np.float32), np.array([(x + w / 2) * k, (y + h / 2) * k])


def background(size=(640, 480), seed: int = 7) -> np.ndarray:
    """A lit corridor-like backdrop: vertical gradient plus fixed texture (not a flat colour, so
    the detector sees something other than faces)."""
    w, h = size
    rng = np.random.default_rng(seed)
    g = np.linspace(150, 90, h, dtype=np.float32)[:, None, None] * np.array([1.0, 0.97, 0.9], np.float32)
    img = np.broadcast_to(g, (h, w, 3)).copy()
    noise = cv2.GaussianBlur(rng.normal(0, 12, (h, w)).astype(np.float32), (0, 0), 3)
    img += noise[..., None]
    for x0 in range(0, w, 160):       # door frames / panels
        cv2.rectangle(img, (x0 + 20, 40), (x0 + 140, h - 20), (110, 105, 100), 2)
    return np.clip(img, 0, 255).astype(np.uint8)


class Scene:
    def __init__(self, actors: list[Actor], frames: int, size=(640, 480), find_face=None):
        """``find_face(img) -> box`` locates the face in each photo (the analyzer's largest face)."""
        self.actors, self.frames, self.size = actors, frames, size
        self.bg = background(size)
        for a in actors:
            img = I.load(a.photo)
            a._cut = (cutout if a.shape == "head" else whole)(img, find_face(img), a.face_px)

    def frame(self, i: int) -> np.ndarray:
        out = self.bg.astype(np.float32)
        h, w = out.shape[:2]
        for a in self.actors:
            if not a.on(i):
                continue
            patch, mask, c = a._cut
            x0, y0 = (a.centre(i) - c).round().astype(int)
            sh, sw = patch.shape[:2]
            # clip the patch to the frame: people walk in from the edges
            px0, py0 = max(0, -x0), max(0, -y0)
            px1, py1 = min(sw, w - x0), min(sh, h - y0)
            if px1 <= px0 or py1 <= py0:
                continue
            region = out[y0 + py0:y0 + py1, x0 + px0:x0 + px1]
            m = mask[py0:py1, px0:px1]
            region[:] = region * (1 - m) + patch[py0:py1, px0:px1] * m
        return np.clip(out, 0, 255).astype(np.uint8)

    def __iter__(self):
        return (self.frame(i) for i in range(self.frames))
