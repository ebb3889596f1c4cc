"""NIR liveness (RGB+NIR dual camera, 850 nm with the terminal's IR illuminator).

No NIR anti-spoof model ships with edge, so the check is a set of documented heuristics on the
NIR frame paired with the judged RGB frame (``sources.Paired``), each a sub-score 0-1; the score
is the smallest:

1. **found**: the face tracked in RGB must be found in the NIR frame where the calibration
   (``liveness.nir_offset``/``nir_scale``, measured by `edge calibrate nir`) puts it: the
   detector runs on the NIR frame and the best box's overlap (IoU) with the expected box scores
   0 at ``IOU_NONE`` and 1 at ``IOU_FULL``. A phone or monitor replay shows no face at 850 nm
   (LCD and OLED panels emit no NIR; the glass only mirrors the illuminator), and a photo held
   up to the RGB camera alone is not in the NIR view at the calibrated place.
2. **bright**: mean NIR level of the face box, 0 at ``BRIGHT_NONE``, 1 at ``BRIGHT_FULL``
   (0-255): skin under the illuminator reflects strongly; a screen is dark.
3. **texture**: contrast (standard deviation / mean) of the inner face, 0 at ``TEXTURE_NONE``, 1
   at ``TEXTURE_FULL``: a live face shows eyes, brows and nostrils; a mirror-like glare of the
   illuminator on glass is flat.

What they do not catch: **paper prints** — paper reflects 850 nm and a print shows a face in NIR
(toner and pigment inks absorb NIR much as they absorb visible light), so prints are left to
the RGB model in "rgb+nir". (A lips-versus-cheeks cue, lips being as bright as skin in NIR, was
tried and dropped: on 87 real photos the ratio of the red channel and of grey did not separate.)
Nor 3-D masks of skin-like material, nor a replay on a device that emits NIR. The thresholds come
from the physics above and from synthetic NIR frames built from real photos: the real photos'
red channel (skin reflects 850 nm much as red light) had inner-face contrast 0.14-0.51 (5th
percentile 0.17) and mean level 96-210 on 87 faces (the 23 public photos and every 40th lfw-dev
photo). They are not measured on real NIR captures, which this project does not have.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..track import iou
from .levels import ramp

IOU_NONE, IOU_FULL = 0.2, 0.6
BRIGHT_NONE, BRIGHT_FULL = 20.0, 60.0
TEXTURE_NONE, TEXTURE_FULL = 0.04, 0.12


def to_grey(img: np.ndarray) -> np.ndarray:
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


def appearance(grey: np.ndarray, box) -> dict:
    """The NIR figures of a face box: mean level and contrast of its inner part."""
    h, w = grey.shape
    x, y, bw, bh = box
    # the inner face: the box shrunk to its middle 70 %, so hair and background stay out
    x0, x1 = int(max(0, x + 0.15 * bw)), int(min(w, x + 0.85 * bw))
    y0, y1 = int(max(0, y + 0.15 * bh)), int(min(h, y + 0.85 * bh))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return {"mean": 0.0, "contrast": 0.0}
    inner = grey[y0:y1, x0:x1].astype(np.float32)
    mean = float(inner.mean())
    return {"mean": mean, "contrast": float(inner.std() / max(mean, 1e-6))}


class NirLiveness:
    part = "nir"

    def __init__(self, lc, analyzer):
        self.offset = np.asarray(lc.nir_offset, np.float64)
        self.scale = float(lc.nir_scale)
        self.analyzer = analyzer

    def expected_box(self, box) -> list[float]:
        """Where the calibration puts the RGB face box in the NIR frame."""
        x, y, w, h = box
        return [x * self.scale + self.offset[0], y * self.scale + self.offset[1], w * self.scale, h * self.scale]

    def __call__(self, image: np.ndarray, face, paired: np.ndarray | None) -> tuple[float, dict]:
        if paired is None:
            return 0.0, {"reason": "no NIR frame paired with this frame (camera.second_kind)"}
        grey = to_grey(paired)
        expected = self.expected_box(face.box)
        faces = self.analyzer.detect(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
        best = max(faces, key=lambda f: iou(f.box, expected), default=None)
        overlap = iou(best.box, expected) if best is not None else 0.0
        if best is None or overlap < IOU_NONE:
            return 0.0, {"found": 0.0, "iou": round(overlap, 3), "reason": "no face in the NIR frame where the "
                         "calibration puts it"}
        fig = appearance(grey, best.box)
        sub = {"found": ramp(overlap, IOU_NONE, IOU_FULL), "bright": ramp(fig["mean"], BRIGHT_NONE, BRIGHT_FULL),
               "texture": ramp(fig["contrast"], TEXTURE_NONE, TEXTURE_FULL)}
        return min(sub.values()), {**{k: round(v, 3) for k, v in sub.items()}, "iou": round(overlap, 3),
                                   **{f"nir_{k}": round(v, 3) for k, v in fig.items()}}
