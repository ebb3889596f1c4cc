"""One enrolment quality policy for every way a face enters the library: `edge user add` /
`user update`, batch import (and the HTTP API, which enrols through ``FaceEngine``).

A poor enrolment photo lowers every later score of that person ("the real person is rejected",
seed: 人脸采集完整说明), so a face is refused when it is too small, too dark, blurred or turned.
Limits (``[enrol]`` in the config, defaults from the seed): face >= 30 px (offline SDK minimum
face), illumination >= 40 (cloud quality reference, 40-100 recommended), blur <= 0.8 (Linux SDK),
yaw and pitch within +-30 degrees (offline SDK: recognisable up to +-30). They are looser than
the camera loop's quality gate on purpose: batch photos are not taken at the terminal.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import errors as E


@dataclass
class Problem:
    key: str            # too_small | too_dark | blurred | turned
    value: float
    limit: float
    text: str           # "blur 0.85 > 0.8"
    http_code: int      # the v3 API's code for the same refusal

    def to_dict(self) -> dict:
        return {"reason": self.key, "value": round(float(self.value), 3), "limit": self.limit}


def problems(face, cfg) -> list[Problem]:
    """Every limit of ``cfg`` (an ``EnrolConfig``) this face breaks, in the order a person can fix them."""
    if not cfg.check:
        return []
    q, pose = face.quality, face.pose
    out = []
    if q["size"] < cfg.min_face_size:
        out.append(Problem("too_small", q["size"], cfg.min_face_size,
                           f"face {q['size']} px < {cfg.min_face_size} px", 222213))
    if abs(pose["yaw"]) > cfg.max_yaw or abs(pose["pitch"]) > cfg.max_pitch:
        worst = max(abs(pose["yaw"]) - cfg.max_yaw, abs(pose["pitch"]) - cfg.max_pitch)
        out.append(Problem("turned", worst, 0.0, f"head turned (yaw {pose['yaw']:.0f}, pitch {pose['pitch']:.0f}; "
                           f"limits {cfg.max_yaw:g}, {cfg.max_pitch:g})", 223129))
    if q["illumination"] < cfg.min_illumination:
        out.append(Problem("too_dark", q["illumination"], cfg.min_illumination,
                           f"illumination {q['illumination']} < {cfg.min_illumination}", 223115))
    if q["blur"] > cfg.max_blur:
        out.append(Problem("blurred", q["blur"], cfg.max_blur, f"blur {q['blur']} > {cfg.max_blur}", 223114))
    return out


def figures(face) -> dict:
    q = face.quality
    return {"size": q["size"], "illumination": q["illumination"], "blur": q["blur"],
            "yaw": round(face.pose["yaw"], 1), "pitch": round(face.pose["pitch"], 1)}


def require(face, cfg) -> None:
    """Raise GET_FEATURE_FAIL (the face gives no usable template) with the reasons and figures."""
    found = problems(face, cfg)
    if found:
        raise E.EdgeError(E.GET_FEATURE_FAIL, "the face is not good enough to enrol: "
                          + "; ".join(p.text for p in found)
                          + ". Use a sharp, well-lit, frontal photo (limits: [enrol] in the config)",
                          http_code=found[0].http_code, quality=figures(face),
                          reasons=[p.to_dict() for p in found])
