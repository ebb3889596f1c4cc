"""``liveness_control`` levels -> a threshold per check, as the v3 API maps NONE / LOW / NORMAL /
HIGH to score thresholds (its table: LOW 0.05, NORMAL 0.3, HIGH 0.9 for Baidu's cloud model) and
the offline SDK recommends 0.8 for its RGB, NIR and depth models.

Those numbers belong to Baidu's models; the scores here come from other models and checks, so
each level is a documented point on *our* scores, chosen as follows and measured with
`edge eval liveness` (README "Liveness" has the error rates each level was measured at):

- ``rgb``: the mean of MiniFASNetV2's and MiniFASNetV1SE's softmax "real" (upstream's own
  fusion). LOW 0.3 is the v3 API's recommended point; NORMAL 0.5 is upstream's decision rule
  (the real class wins the averaged softmax); HIGH 0.8 is the offline SDK's recommendation.
  The v3 API's LOW (0.05) is not used: MiniFASNet's attack scores on ``../shared/spoof`` are
  0.05-0.06, so 0.05 would let them through.
- ``nir`` / ``depth``: the 0-1 scores of ``nir.py`` / ``depth.py`` (heuristics, no model);
  HIGH is the offline SDK's 0.8, NORMAL and LOW below it at the points where the synthetic live
  and attack cases of the tests separate (see those modules for what a score means).
- NONE: every check still runs and reports its score; nothing is refused (the v3 API's "no control").
"""
from __future__ import annotations

THRESHOLDS = {
    "rgb": {"NONE": 0.0, "LOW": 0.3, "NORMAL": 0.5, "HIGH": 0.8},
    "nir": {"NONE": 0.0, "LOW": 0.3, "NORMAL": 0.5, "HIGH": 0.8},
    "depth": {"NONE": 0.0, "LOW": 0.3, "NORMAL": 0.5, "HIGH": 0.8},
}


def threshold(cfg, part: str) -> float:
    """The threshold of check ``part`` under ``cfg`` (a LivenessConfig): its override, else the level's."""
    override = {"rgb": cfg.threshold, "nir": cfg.nir_threshold, "depth": cfg.depth_threshold}.get(part, -1.0)
    return override if override >= 0 else THRESHOLDS[part][cfg.level]


def ramp(value: float, none: float, full: float) -> float:
    """A heuristic's sub-score: 0 at or below ``none``, 1 at or above ``full``, linear between."""
    return float(min(1.0, max(0.0, (value - none) / (full - none))))
