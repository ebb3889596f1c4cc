"""Depth liveness (structured-light or ToF camera, 16-bit depth in millimetres, registered to the
RGB frame's pixel grid as such modules deliver it: Orbbec's D2C, a ToF module's RGB alignment;
a frame of another size is scaled to the RGB frame).

The depth under the face must show a face's relief, and the relief FaceMesh expects:

- FaceMesh's 468 points on the RGB frame carry a relative depth ``z``; the measured depth is
  sampled at the same points (pixels outside ``depth_min_mm``..``depth_max_mm`` and 0 are holes);
- both are fitted with a quadratic surface in the image coordinates (a plane, a sheet bent one
  way or both ways, a bowl) and the fit is removed: what is left is the face-specific relief
  (nose, eye sockets, mouth, chin) that no flat or bent photo has;
- **relief**: the measured leftover's size (its regression on FaceMesh's, in mm; standard
  deviation over the points), 0 at ``RELIEF_NONE`` mm, 1 at ``RELIEF_FULL`` mm;
- **shape**: the correlation of the measured leftover with FaceMesh's, 0 at ``SHAPE_NONE``, 1 at
  ``SHAPE_FULL``: the bumps must be where a face has them;
- **coverage**: the share of points with a valid depth, 0 at ``COVER_NONE``, 1 at ``COVER_FULL``
  (dark hair and glasses leave holes; a face in range is mostly measured).

The score is the smallest of the three. What it catches: photos and screens held flat, tilted,
curved or bent round a head; faces out of range. What it does not: 3-D masks and moulded
photos (they have a face's relief), which the seed also leaves to depth *models*. The thresholds
were set on depth rendered from FaceMesh geometry of real photos with 1.5 mm noise
(tests/test_liveness_nir_depth.py), not on a real depth camera.
"""
from __future__ import annotations

import os

import cv2
import numpy as np

from .. import errors as E
from ..detect import Detection
from .levels import ramp

RELIEF_NONE, RELIEF_FULL = 1.5, 4.0       # mm
SHAPE_NONE, SHAPE_FULL = 0.3, 0.7
COVER_NONE, COVER_FULL = 0.4, 0.7


def load_depth(path: str | os.PathLike) -> np.ndarray:
    """A 16-bit depth image (PNG/TIFF, millimetres) as uint16; anything else is refused."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise E.EdgeError(E.FILE_NOT_EXIST, f"no such depth file: {path}")
    data = np.fromfile(path, np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None or img.ndim != 2 or img.dtype != np.uint16:
        raise E.EdgeError(E.UNSUPPORT_IMAGE_TYPE, f"{path} is not a 16-bit single-channel depth image (millimetres)")
    return img


def _quadratic(x, y) -> np.ndarray:
    return np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], 1)


def relief(depth_mm: np.ndarray, mesh_z: np.ndarray, xy: np.ndarray) -> dict:
    """Compare measured depth with FaceMesh's relative depth at the same points, after removing
    a quadratic surface from each (see the module docstring)."""
    c = xy.mean(0)
    s = np.abs(xy - c).max() + 1e-9
    A = _quadratic((xy[:, 0] - c[0]) / s, (xy[:, 1] - c[1]) / s)
    rest = lambda v: v - A @ np.linalg.lstsq(A, v, rcond=None)[0]
    rd, rz = rest(depth_mm.astype(np.float64)), rest(mesh_z.astype(np.float64))
    sz = rz.std()
    if sz < 1e-9 or rd.std() < 1e-9:
        return {"shape": 0.0, "relief_mm": 0.0}
    corr = float(np.dot(rd - rd.mean(), rz - rz.mean()) / (len(rd) * rd.std() * sz))
    gain = float(np.dot(rd, rz) / np.dot(rz, rz))          # mm of measured relief per unit of FaceMesh's
    return {"shape": corr, "relief_mm": max(0.0, gain) * sz}


class DepthLiveness:
    part = "depth"

    def __init__(self, lc, analyzer):
        self.lo, self.hi = lc.depth_min_mm, lc.depth_max_mm
        self.analyzer = analyzer

    def __call__(self, image: np.ndarray, face, paired: np.ndarray | None) -> tuple[float, dict]:
        if paired is None:
            return 0.0, {"reason": "no depth frame paired with this frame (camera.second_kind)"}
        if paired.ndim != 2 or paired.dtype != np.uint16:
            return 0.0, {"reason": "the paired frame is not 16-bit depth (millimetres)"}
        det = Detection(np.asarray(face.box, np.float64), face.score, np.asarray(face.landmarks5)[:2])
        pts = self.analyzer.mesh(image, det).points
        h, w = image.shape[:2]
        dh, dw = paired.shape
        u = np.round(pts[:, 0] * dw / w).astype(int)
        v = np.round(pts[:, 1] * dh / h).astype(int)
        inside = (u >= 0) & (u < dw) & (v >= 0) & (v < dh)
        d = np.zeros(len(pts), np.float64)
        d[inside] = paired[v[inside], u[inside]]
        valid = inside & (d >= self.lo) & (d <= self.hi)
        cover = float(valid.mean())
        if valid.sum() < 30:
            return 0.0, {"coverage": round(cover, 3), "reason": "the face is not measured (holes or out of range)"}
        # FaceMesh's z grows away from the camera, as depth does
        fig = relief(d[valid], pts[valid, 2], pts[valid, :2])
        sub = {"relief": ramp(fig["relief_mm"], RELIEF_NONE, RELIEF_FULL),
               "shape": ramp(fig["shape"], SHAPE_NONE, SHAPE_FULL), "coverage": ramp(cover, COVER_NONE, COVER_FULL)}
        return min(sub.values()), {**{k: round(v, 3) for k, v in sub.items()},
                                   "relief_mm": round(fig["relief_mm"], 2), "shape_corr": round(fig["shape"], 3),
                                   "valid_points": int(valid.sum())}
