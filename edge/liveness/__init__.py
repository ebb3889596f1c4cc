"""The liveness stage. The pipeline asks it about the very frame it is about to recognise.

``liveness.mode`` names the checks that must all pass (the offline SDK: "when several modalities
are enabled, all must pass"): ``rgb`` (silent anti-spoofing models, ``rgb.py``), ``nir`` (the
face found in the paired NIR frame at the calibrated offset, with NIR appearance checks,
``nir.py``), ``depth`` (a face's relief in the paired 16-bit depth frame, ``depth.py``) and
``action`` (a random challenge of blinks, mouth and head movements, ``action.py``). ``none``
passes every frame (the offline SDK's default: liveness off).

Multi-frame: a single frame's score has thin margins, so each check keeps the scores of the
track's last ``liveness.frames`` judged frames (in the per-track ``history`` the pipeline hands
in) and decides on their mean. One judged frame per decision attempt: the cost is one model run
per attempt, not per camera frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import errors as E
from ..config import Config
from . import levels


@dataclass
class LivenessResult:
    passed: bool
    score: float          # 0-1, higher = more likely a live person (the weakest check's mean)
    kind: str
    pending: bool = False  # too few judged frames yet, or an action challenge running: neither passed nor failed
    detail: dict = field(default_factory=dict)


class PassThrough:
    kind = "none"

    def __call__(self, frame, face, history=None) -> LivenessResult:
        return LivenessResult(True, 1.0, self.kind)

    def observe(self, frame, face, history, mirrored=False) -> list[dict]:
        return []

    def restart(self, history) -> LivenessResult:
        return LivenessResult(True, 1.0, self.kind)


class LivenessStage:
    """Every configured check on one frame, fused over the track's recent frames."""

    def __init__(self, cfg: Config, analyzer=None, checks: dict | None = None):
        """``checks``: part -> callable ``(image, face, paired) -> (score, detail)``, to replace
        the ones the configuration names (the policy's tests use plain functions)."""
        from ..models.registry import Runtime

        lc = cfg.liveness
        self.cfg = lc
        self.kind = lc.mode
        self.frames = lc.frames
        self.checks = {}
        parts = () if checks is not None else lc.parts
        if ("nir" in parts or "depth" in parts or "action" in parts) and analyzer is None:
            raise E.EdgeError(E.PARARM_ERROR, f"liveness mode {lc.mode} needs the face analyzer (landmarks)")
        if "rgb" in parts:
            from .rgb import RgbLiveness
            self.checks["rgb"] = RgbLiveness(cfg.models_path, lc.rgb_models, Runtime.from_config(cfg))
        if "nir" in parts:
            from .nir import NirLiveness
            self.checks["nir"] = NirLiveness(lc, analyzer)
        if "depth" in parts:
            from .depth import DepthLiveness
            self.checks["depth"] = DepthLiveness(lc, analyzer)
        self.action = None
        if "action" in parts:
            from .action import ActionLiveness
            self.action = ActionLiveness(lc.action, analyzer)
        if checks is not None:
            self.checks = dict(checks)
        self.thresholds = {p: levels.threshold(lc, p) for p in self.checks}

    def observe(self, frame, face, history: dict, mirrored: bool = False) -> list[dict]:
        """Every tracked frame (before the quality gate, which refuses turned heads): feeds the
        action challenge; returns the prompts to show (remind codes), usually none."""
        if self.action is None:
            return []
        return self.action.observe(frame, face, history, mirrored)

    def __call__(self, frame, face, history: dict | None = None) -> LivenessResult:
        """Judge one decision attempt's frame (the one then recognised); ``history`` is the
        track's memory. Passed when every check's mean over the track's last ``frames`` judged
        frames reaches its threshold; pending while a check has fewer frames than that or the
        action challenge is still running; failed as soon as a check with enough frames, or the
        challenge, says no."""
        history = {} if history is None else history
        extras = history.setdefault("extras", {})
        for part, check in self.checks.items():
            s, extras[part] = check(frame.image, face, frame.paired)
            h = history.setdefault(part, [])
            h.append(float(s))
            del h[:-self.frames]
        return self._judge(history)

    def restart(self, history: dict) -> LivenessResult:
        """The track's latest judged frame alone, as if it were the first: the pipeline found it
        is another face than the frames before it (``liveness.identity_score``), whose scores
        must not lend it their mean."""
        for part in self.checks:
            del history.get(part, [])[:-1]
        return self._judge(history)

    def _judge(self, history: dict) -> LivenessResult:
        detail, fused = {}, []
        waiting = failed = False
        for part in self.checks:
            h, extra = history[part], history["extras"][part]
            mean = sum(h) / len(h)
            thr = self.thresholds[part]
            # a level of NONE refuses nothing, so it never waits for frames either
            early = len(h) < self.frames and thr > 0
            ok = mean >= thr and not early
            waiting |= early
            failed |= not ok and not early
            fused.append(mean)
            detail[part] = {"score": round(mean, 4), "frame_score": round(h[-1], 4), "frames": len(h),
                            "threshold": thr, "passed": ok, **extra}
        if self.action is not None:
            state = self.action.result(history)
            detail["action"] = state
            waiting |= state["status"] == "running"
            failed |= state["status"] == "failed"
            fused.append(1.0 if state["status"] == "passed" else 0.0)
        score = min(fused) if fused else 1.0
        return LivenessResult(not failed and not waiting, score, self.kind, waiting and not failed, detail)


def make(cfg, analyzer=None):
    """The stage for ``cfg`` (a Config; a bare LivenessConfig is accepted for ``none``)."""
    lc = getattr(cfg, "liveness", cfg)
    if lc.mode == "none":
        return PassThrough()
    if not isinstance(cfg, Config):
        raise E.EdgeError(E.PARARM_ERROR, "liveness checks need the whole configuration (models, camera)")
    return LivenessStage(cfg, analyzer)
