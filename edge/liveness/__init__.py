"""Liveness hook. The pipeline asks it about the very frame it is about to recognise.

``none`` passes every frame (the offline SDK's default: liveness off). RGB, NIR, depth and
action liveness plug in here as further modes.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import errors as E
from ..config import LivenessConfig


@dataclass
class LivenessResult:
    passed: bool
    score: float          # 0-1, higher = more likely a live person
    kind: str


class PassThrough:
    kind = "none"

    def __call__(self, frame, face) -> LivenessResult:
        return LivenessResult(True, 1.0, self.kind)


def make(cfg: LivenessConfig):
    if cfg.mode == "none":
        return PassThrough()
    raise E.EdgeError(E.PARARM_ERROR, f"liveness mode {cfg.mode!r} is not available in this build")
