"""dlib-style face chips: a similarity transform from 5 points to dlib's mean-face template.

The template is dlib's own (``get_face_chip_details`` for 5-point shapes); a chip of size 150
with padding 0.25 is what dlib's ResNet embedder was trained on.
"""
from __future__ import annotations

import cv2
import numpy as np

# dlib's 5-point template in [0, 1] face coordinates, dlib's point order
DLIB5_TEMPLATE = np.array([
    [0.8595674595992, 0.2134981538014],
    [0.6460604764104, 0.2289674387677],
    [0.1205750620789, 0.2137274526848],
    [0.3340850613712, 0.2290642403242],
    [0.4901123135679, 0.6277975316475],
])


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama, no reflection) mapping src points to dst; 2x3."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    s0, d0 = src - ms, dst - md
    cov = d0.T @ s0 / len(src)
    U, S, Vt = np.linalg.svd(cov)
    D = np.eye(2)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        D[1, 1] = -1
    R = U @ D @ Vt
    var = (s0 ** 2).sum() / len(src)
    scale = np.trace(np.diag(S) @ D) / var
    M = np.zeros((2, 3))
    M[:, :2] = scale * R
    M[:, 2] = md - scale * R @ ms
    return M


def chip_transform(points5: np.ndarray, size: int = 150, padding: float = 0.25) -> np.ndarray:
    # dlib maps its chip rectangle onto pixel centres 0..size-1, hence size - 1
    template = (DLIB5_TEMPLATE + padding) / (2 * padding + 1) * (size - 1)
    return similarity(points5, template)


def extract_chip(img: np.ndarray, points5: np.ndarray, size: int = 150, padding: float = 0.25) -> np.ndarray:
    """BGR chip of size x size. Large downscales go through an area-filtered pyramid step first,
    as dlib does, so the chip is not aliased."""
    M = chip_transform(points5, size, padding)
    scale = np.hypot(M[0, 0], M[1, 0])  # chip pixels per image pixel
    if scale < 0.5:
        f = min(1.0, 2 * scale)
        small = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        fx = small.shape[1] / img.shape[1]
        fy = small.shape[0] / img.shape[0]
        M = M @ np.array([[1 / fx, 0, 0], [0, 1 / fy, 0], [0, 0, 1]])
        img = small
    return cv2.warpAffine(img, M, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
