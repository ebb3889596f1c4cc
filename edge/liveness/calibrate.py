"""`edge calibrate nir`: where the NIR camera sees what the RGB camera sees.

A person stands in front of both cameras (and moves a little: left, right, nearer, further, so
the fit sees more than one position). On each paired frame the face's five points are found in
both views; a scale and an offset (NIR = RGB x scale + offset; the two cameras of a module are
side by side and parallel, so no rotation) are fitted by least squares over every point of every
frame. The answer is the ``[liveness]`` lines to put in the configuration, and the residual
(pixels) that says how well one offset fits: a residual of more than a few pixels means the
cameras are not parallel or the person stood at one distance only — the offset of a side-by-side
pair changes with the distance (parallax), which ``nir_scale`` absorbs only approximately.
"""
from __future__ import annotations

import numpy as np

from .. import errors as E
from .nir import to_grey

MIN_FRAMES = 5


def fit(pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """Least-squares ``nir = rgb * scale + offset`` over matched points (each pair: (N, 2) RGB
    points, (N, 2) NIR points)."""
    rgb = np.concatenate([p for p, _ in pairs]).astype(np.float64)
    nir = np.concatenate([q for _, q in pairs]).astype(np.float64)
    n = len(rgb)
    A = np.zeros((2 * n, 3))
    A[0::2, 0], A[0::2, 1] = rgb[:, 0], 1.0
    A[1::2, 0], A[1::2, 2] = rgb[:, 1], 1.0
    b = nir.reshape(-1)
    (scale, dx, dy), *_ = np.linalg.lstsq(A, b, rcond=None)
    res = np.linalg.norm(rgb * scale + [dx, dy] - nir, axis=1)
    return {"nir_offset": [round(float(dx), 2), round(float(dy), 2)], "nir_scale": round(float(scale), 4),
            "residual_px_median": round(float(np.median(res)), 2), "residual_px_max": round(float(res.max()), 2),
            "points": n}


def calibrate(analyzer, frames, min_frames: int = MIN_FRAMES) -> dict:
    """``frames``: (RGB image, NIR image) pairs, already oriented as the camera loop orients
    them. Frames where either view has no face, or more than one, are skipped."""
    import cv2

    pairs, used, skipped = [], 0, 0
    for rgb, nir in frames:
        try:
            a = analyzer.detect(rgb)
            b = analyzer.detect(cv2.cvtColor(to_grey(nir), cv2.COLOR_GRAY2BGR))
        except E.EdgeError:
            a = b = []
        if len(a) != 1 or len(b) != 1:
            skipped += 1
            continue
        pairs.append((np.asarray(a[0].landmarks5), np.asarray(b[0].landmarks5)))
        used += 1
    if used < min_frames:
        raise E.EdgeError(E.DETECT_NO_FACE, f"one face was found in both views on {used} paired frames "
                          f"({skipped} skipped); at least {min_frames} are needed: one person alone in front of "
                          "both cameras, face lit by the IR illuminator")
    out = fit(pairs)
    return {"frames_used": used, "frames_skipped": skipped, **out,
            "config": {"liveness": {"nir_offset": out["nir_offset"], "nir_scale": out["nir_scale"]}}}
