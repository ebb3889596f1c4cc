"""Quality gate: the offline SDK's measures, the API's LOW/NORMAL/HIGH presets, and a reason a UI
can show for every reject.

Reason codes are the capture SDK's DetectRemindCode numbers where it has one; the three it does
not number (roll, too bright, low best-face score) use 100+.

Estimates where no shipped model measures a figure directly:
- blur: contrast-normalised Laplacian energy of the face (``faces.quality_figures``), 0 sharp .. 1.
- occlusion per region: share of non-skin pixels (YCrCb skin range Cr 133-173, Cb 77-127,
  Y >= 25) in fixed regions of the 112x112 five-point-aligned face. On 84 near-frontal real
  faces (public + lfw-dev) the 97th percentile is 0.15-0.44 per region; dark glasses give
  0.86 on the eyes, a mouth cover 1.0 on mouth and chin. It cannot see a skin-coloured occluder
  (a hand) and means nothing on NIR frames, which are grey: occlusion is checked on RGB only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .config import QualityConfig
from .embed import arcface_chip
from .faces import Face

# region -> (x0, y0, x1, y1) in the 112x112 ArcFace-aligned face
REGIONS = {"left_eye": (26, 42, 50, 60), "right_eye": (62, 42, 86, 60), "nose": (48, 58, 64, 80),
           "mouth": (40, 84, 72, 98), "left_cheek": (24, 62, 40, 80), "right_cheek": (72, 62, 88, 80),
           "chin_contour": (44, 100, 68, 108)}

# (code, name, prompt) — DetectRemindCode numbering (capture SDK) where it exists
REASONS = {
    "pitch_down": (1, "PitchOutofDownRange", "raise your head"),
    "pitch_up": (2, "PitchOutofUpRange", "lower your head"),
    "yaw_left": (3, "YawOutofLeftRange", "face the camera"),
    "yaw_right": (4, "YawOutofRightRange", "face the camera"),
    "too_dark": (5, "PoorIllumination", "too dark: move into the light"),
    "blurred": (7, "ImageBlured", "hold still"),
    "left_eye": (8, "OcclusionLeftEye", "uncover your eyes"),
    "right_eye": (9, "OcclusionRightEye", "uncover your eyes"),
    "nose": (10, "OcclusionNose", "uncover your nose"),
    "mouth": (11, "OcclusionMouth", "uncover your mouth"),
    "left_cheek": (12, "OcclusionLeftContour", "uncover your face"),
    "right_cheek": (13, "OcclusionRightContour", "uncover your face"),
    "chin_contour": (14, "OcclusionChinCoutour", "uncover your chin"),
    "too_close": (15, "TooClose", "step back"),
    "too_far": (16, "TooFar", "move closer"),
    "outside": (17, "BeyondPreviewFrame", "move into the frame"),
    "roll": (100, "RollOutofRange", "hold your head straight"),
    "too_bright": (101, "MuchIllumination", "too bright: step out of the glare"),
    "low_score": (102, "LowBestFaceScore", "look at the camera"),
}

@dataclass
class Reason:
    key: str
    code: int
    name: str
    prompt: str
    value: float
    limit: float

    def to_dict(self) -> dict:
        return {"code": self.code, "reason": self.name, "prompt": self.prompt,
                "value": round(float(self.value), 3), "limit": self.limit}


@dataclass
class QualityResult:
    ok: bool
    score: float                     # best-face score 0-100
    figures: dict
    reasons: list[Reason] = field(default_factory=list)

    @property
    def reason(self) -> Reason | None:
        return self.reasons[0] if self.reasons else None


def occlusion(img: np.ndarray, face: Face) -> dict:
    """Per-region occlusion estimate 0-1 (share of non-skin pixels; see module docstring)."""
    chip = arcface_chip(img, np.asarray(face.landmarks5), cv2.INTER_AREA)
    # gain to a mid-grey face first: chroma shrinks with light, and a dark face is "too dark",
    # not "occluded"
    gain = float(np.clip(140.0 / (float(cv2.cvtColor(chip[30:100, 24:88], cv2.COLOR_BGR2GRAY).mean()) + 1.0), 0.5, 4.0))
    ycc = cv2.cvtColor(cv2.convertScaleAbs(chip, alpha=gain), cv2.COLOR_BGR2YCrCb)
    y, cr, cb = ycc[..., 0], ycc[..., 1], ycc[..., 2]
    skin = (cr >= 133) & (cr <= 173) & (cb >= 77) & (cb <= 127) & (y >= 25)
    return {k: round(float(1.0 - skin[y0:y1, x0:x1].mean()), 3) for k, (x0, y0, x1, y1) in REGIONS.items()}


def best_face_score(fig: dict) -> float:
    """0-100: sharpness x light x frontality x size x completeness. A sharp, evenly lit, frontal
    face of 100 px or more scores about 80-100; 15 degrees off frontal costs 6 %, 30 degrees
    25 %. Occlusion has its own per-region limits and is left out, so a site that admits masked
    users (limit 1.0, as the seed advises) still ranks their frames."""
    sharp = 1.0 - fig["blur"]
    illum = fig["illumination"]
    light = min(1.0, illum / 80.0) * min(1.0, max(0.0, (255 - illum) / 40.0))
    pose = max(0.0, 1.0 - (max(abs(fig["yaw"]), abs(fig["pitch"]), abs(fig["roll"])) / 60.0) ** 2)
    size = min(1.0, fig["size"] / 100.0)
    return round(100.0 * sharp * light * pose * size * min(1.0, fig["completeness"]), 1)


def assess(img: np.ndarray, face: Face, cfg: QualityConfig, rgb: bool = True) -> QualityResult:
    """Every failing check, most actionable first (framing, then pose, then light, blur, cover)."""
    lim = cfg.limits()
    q = face.quality
    fig = {"illumination": q["illumination"], "blur": q["blur"], "completeness": q["completeness"],
           "size": q["size"], "yaw": face.pose["yaw"], "pitch": face.pose["pitch"], "roll": face.pose["roll"]}
    if cfg.check_occlusion and rgb:
        fig["occlusion"] = occlusion(img, face)
    reasons: list[Reason] = []

    def fail(key, value, limit):
        code, name, prompt = REASONS[key]
        reasons.append(Reason(key, code, name, prompt, value, limit))

    if fig["completeness"] < lim["completeness"]:
        fail("outside", fig["completeness"], lim["completeness"])
    if fig["size"] < cfg.min_face_size:
        fail("too_far", fig["size"], cfg.min_face_size)
    if cfg.max_face_size and fig["size"] > cfg.max_face_size:
        fail("too_close", fig["size"], cfg.max_face_size)
    if fig["yaw"] < -cfg.max_yaw:
        fail("yaw_left", fig["yaw"], -cfg.max_yaw)
    elif fig["yaw"] > cfg.max_yaw:
        fail("yaw_right", fig["yaw"], cfg.max_yaw)
    if fig["pitch"] > cfg.max_pitch:
        fail("pitch_down", fig["pitch"], cfg.max_pitch)
    elif fig["pitch"] < -cfg.max_pitch:
        fail("pitch_up", fig["pitch"], -cfg.max_pitch)
    if abs(fig["roll"]) > cfg.max_roll:
        fail("roll", fig["roll"], cfg.max_roll)
    if fig["illumination"] < lim["illumination"]:
        fail("too_dark", fig["illumination"], lim["illumination"])
    elif fig["illumination"] > cfg.max_illumination:
        fail("too_bright", fig["illumination"], cfg.max_illumination)
    if fig["blur"] > lim["blur"]:
        fail("blurred", fig["blur"], lim["blur"])
    for region, v in fig.get("occlusion", {}).items():
        if v > lim["occlusion"]:
            fail(region, v, lim["occlusion"])
    score = best_face_score(fig)
    fig["best_score"] = score
    if not reasons and score < cfg.min_best_score:
        fail("low_score", score, cfg.min_best_score)
    return QualityResult(not reasons, score, fig, reasons)
