"""The 0-100 score: what a cosine between two templates means, per embedder.

The seed's scores are false-accept rates (its cloud table: 70 -> FAR 0.097 %, 80 -> 0.0093 %,
"80 = same person, FAR 1 in 10,000"). An embedder's card carries a calibration: a monotone table
of cosine anchors, one per decade of 1:1 false-accept rate measured on impostor pairs
(50 <-> 1e-1, 60 <-> 1e-2, 70 <-> 1e-3, 80 <-> 1e-4, 90 <-> 1e-5), plus cosine -1 -> 0 and
1 -> 100. Between anchors the score is linear in cosine. `edge models calibrate` writes it.

A card without one (a user model registered with only ``--same-person-cosine``) keeps the older
mapping: the documented same-person cosine -> 80, 1 -> 100, 0 -> 0, and no FAR is claimed.
"""
from __future__ import annotations

import math

import numpy as np

from . import errors as E

# score -> the 1:1 false-accept rate it stands for; 40 + 10 per decade, as the seed's table
# (60 -> 0.78 %, 70 -> 0.097 %, 80 -> 0.0093 %) rounded to whole decades
SCORE_FAR = {50: 1e-1, 60: 1e-2, 70: 1e-3, 80: 1e-4, 90: 1e-5}


def far_for_score(score: float) -> float:
    """The 1:1 false-accept rate a calibrated score stands for: 10 ** ((40 - score) / 10)."""
    return 10.0 ** ((40.0 - score) / 10.0)


class ScoreScale:
    def __init__(self, card: dict, variant: str):
        metric = card.get("metric", {})
        cal = (metric.get("calibration") or {}).get(variant)
        self.calibrated = cal is not None
        self.tail = None
        if cal is None:
            if "same_person_cosine" not in metric:
                raise _bad(card, f"no calibration for {variant} templates and no metric.same_person_cosine")
            try:
                t = float(metric["same_person_cosine"])
            except (TypeError, ValueError):
                raise _bad(card, f"metric.same_person_cosine {metric['same_person_cosine']!r} is not a number") from None
            if not -1.0 < t < 1.0:
                raise _bad(card, f"metric.same_person_cosine {t} is outside (-1, 1)")
            cos, score = ([-1.0, 0.0, t, 1.0], [0.0, 0.0, 80.0, 100.0]) if t > 0 else ([-1.0, t, 1.0], [0.0, 80.0, 100.0])
        else:
            try:
                cos, score = (list(map(float, c)) for c in zip(*cal["anchors"]))
                tail = cal.get("tail")
                if tail is not None:
                    self.tail = (float(tail["log10_far"][0]), float(tail["log10_far"][1]))
            except (KeyError, TypeError, ValueError, IndexError) as e:
                raise _bad(card, f"metric.calibration.{variant} is malformed ({e!r})") from None
            if not (all(math.isfinite(v) for v in cos + score) and cos[0] >= -1.0 and cos[-1] <= 1.0
                    and score[0] == 0.0 and score[-1] == 100.0 and all(np.diff(cos) > 0) and all(np.diff(score) > 0)):
                raise _bad(card, f"metric.calibration.{variant}.anchors must rise strictly from (cos >= -1, 0) "
                                 "to (cos <= 1, 100)")
        self.cos = np.array(cos)
        self.scores = np.array(score)

    def score(self, cos):
        """Cosine -> 0-100 (array in, array out; float in, float out)."""
        s = np.interp(np.asarray(cos, np.float64), self.cos, self.scores)
        return s if np.ndim(s) else float(s)

    def cosine(self, score: float) -> float:
        return float(np.interp(score, self.scores, self.cos))

    def far(self, score: float) -> float | None:
        """The 1:1 false-accept rate expected at ``score``: the decade rule between the calibrated
        points, the card's fitted impostor tail above the last one (labelled so in the card).
        None when the card has no calibration."""
        if not self.calibrated:
            return None
        top = max(SCORE_FAR)
        if score <= top or self.tail is None:
            return min(1.0, far_for_score(score))
        a, b = self.tail
        return float(min(far_for_score(top), 10.0 ** (a + b * self.cosine(score))))


def _bad(card, msg):
    return E.EdgeError(E.MODEL_IS_EMPTY, f"model card {card.get('id')}: {msg}: run `edge models calibrate` again "
                       "or `edge models build` for a pack model")


def expected_fpir(scale: ScoreScale, threshold: float, users: int) -> float | None:
    """The chance that a stranger matches one of ``users`` enrolled users at ``threshold``, from the
    calibrated 1:1 rate: 1 - (1 - FAR)^N. It errs high: on lfw-dev + lfw-distractors the measured
    rate at 885 users was 2.8 % where this gives 4.0 % (`edge eval openset`). None: no calibration."""
    far = scale.far(threshold)
    if far is None or users <= 0:
        return None if far is None else 0.0
    return float(-math.expm1(users * math.log1p(-min(far, 1 - 1e-12))))


def threshold_for(scale: ScoreScale, users: int, fpir: float = 0.01) -> float | None:
    """The lowest score (in steps of 0.5) whose expected FPIR at ``users`` stays within ``fpir``."""
    if not scale.calibrated:
        return None
    for s in np.arange(50.0, 100.01, 0.5):
        if expected_fpir(scale, float(s), users) <= fpir:
            return float(s)
    return 100.0
