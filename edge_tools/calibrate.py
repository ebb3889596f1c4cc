"""`edge models calibrate ID DIR`: put an embedder's score points at measured false-accept rates.

DIR holds one sub-folder of photos per person. The protocol is `edge eval`'s: each person's first
photo is enrolled, every other photo is a probe; an impostor pair is a probe and another person's
enrolled photo (lfw-dev: 373,974 pairs). For each score point of ``scores.SCORE_FAR`` (80 <-> FAR
1e-4, ...) the anchor is the cosine that exactly that share of impostor pairs reaches, when at
least ``MIN_PAIRS`` pairs lie above it ("measured"). A rarer rate (lfw-dev: 1e-5 is 3.7 protocol
pairs) is read from every pair of photos of two different people instead (lfw-dev: 3.2 million
pairs; "measured, all pairs"); rarer still, from an exponential tail, log10 FAR = a + b * cosine,
fitted to the two deepest measured decades of all pairs (``MIN_PAIRS`` to ``TAIL_DECADES`` decades
more pairs; "fitted"). Impostor tails of face embedders thin out faster than exponential, so a fitted
anchor errs on the safe side: the true FAR there is lower than its label.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from edge import errors as E
from edge.faces import FaceAnalyzer
from edge.models import cards
from edge.scores import SCORE_FAR

from . import embed_cache
from . import evaluate as ev

MIN_PAIRS = 10          # an empirical rate needs at least this many impostor pairs at or above its cosine
TAIL_DECADES = 2        # the tail is fitted on the deepest two measured decades: its own slope there
MIN_IMPOSTORS = 5000    # fewer pairs resolve nothing below FAR 2e-3
TAIL_POINTS = 60
BLOCK = 1024            # rows per block when every pair of a large folder is scored


class Tail:
    """The upper tail of an impostor score distribution: the ``kept`` highest cosines (sorted)
    out of ``n`` pairs. Keeping only the tail lets every pair of a large folder be counted."""

    def __init__(self, kept: np.ndarray, n: int):
        self.kept = np.sort(np.asarray(kept, np.float64))
        self.n = int(n)

    @classmethod
    def of(cls, cosines: np.ndarray) -> "Tail":
        return cls(cosines, len(cosines))

    def cosine_at(self, far: float) -> float | None:
        """The cosine that ``far`` of the pairs reach (midway between two order statistics), or None
        when fewer than MIN_PAIRS pairs lie above it or the kept tail does not reach that deep."""
        k = int(math.floor(far * self.n))
        if k < MIN_PAIRS or k >= len(self.kept):
            return None
        m = len(self.kept)
        return float((self.kept[m - k - 1] + self.kept[m - k]) / 2)

    def far_at(self, cos: float) -> float | None:
        """Share of pairs at or above ``cos``; None below the kept tail."""
        if len(self.kept) < self.n and (not len(self.kept) or cos < self.kept[0]):
            return None
        return float(len(self.kept) - np.searchsorted(self.kept, cos, "left")) / self.n


def all_pairs_tail(units: np.ndarray, labels: list[str], floor: float) -> Tail:
    """Every pair of two different people's photos, keeping the cosines >= ``floor``."""
    lab = np.unique(np.asarray(labels), return_inverse=True)[1]
    kept, n = [], 0
    for i0 in range(0, len(units), BLOCK):
        blk = units[i0:i0 + BLOCK] @ units.T
        rows = np.arange(i0, min(i0 + BLOCK, len(units)))[:, None]
        use = (np.arange(len(units))[None, :] > rows) & (lab[rows] != lab[None, :])
        n += int(use.sum())
        kept.append(blk[use & (blk >= floor)])
    return Tail(np.concatenate(kept), n)


def fit_tail(tail: Tail) -> dict:
    """Least squares of log10(share of impostors >= cosine) on cosine, over the measured deep tail."""
    n, kept = tail.n, tail.kept
    if len(kept) <= 2 * MIN_PAIRS:
        raise E.EdgeError(E.NO_DATA, f"{len(kept)} impostor pairs cannot show a tail: give more people")
    hi = min(len(kept) - 1, MIN_PAIRS * 10 ** TAIL_DECADES)
    j = np.unique(np.geomspace(MIN_PAIRS, hi, TAIL_POINTS).astype(int))
    c = kept[len(kept) - j]
    y = np.log10(j / n)
    b, a = np.polyfit(c, y, 1)
    if not b < 0:
        raise E.EdgeError(E.PARARM_ERROR, "the impostor scores do not thin out towards cosine 1: check that each "
                          "sub-folder holds one person only")
    return {"log10_far": [float(a), float(b)], "fitted_on": [float(c.min()), float(c.max())],
            "rates": [float(MIN_PAIRS / n), float(hi / n)]}


def calibration(impostor: np.ndarray, genuine: np.ndarray, every: Tail | None = None) -> dict:
    """The card's ``metric.calibration.<variant>``: anchors and how each was obtained, from the
    protocol's impostor and genuine cosines and (optionally) the tail of every cross-person pair."""
    proto = Tail.of(impostor)
    gen = np.asarray(genuine, np.float64)
    n = proto.n
    if n < MIN_IMPOSTORS:
        raise E.EdgeError(E.PARARM_ERROR, f"only {n} impostor pairs: calibration needs at least {MIN_IMPOSTORS} "
                          "(for example 100 people with 3 or more photos each)")
    every = every if every is not None and every.n > n else proto
    tail = fit_tail(every)
    a, b = tail["log10_far"]
    points, prev = {}, -1.0
    for score, far in sorted(SCORE_FAR.items()):
        c, how = proto.cosine_at(far), "measured"
        if c is None and every is not proto:
            c, how = every.cosine_at(far), "measured, all pairs"
        if c is None:
            c, how = (math.log10(far) - a) / b, "fitted"
        # anchors must rise strictly and stay below cosine 1 (score 100); rounded up, so the
        # card's cosine never lets more impostors through than measured
        c = math.ceil(min(max(c, prev + 1e-4), 1.0 - 1e-4 * (100 - score)) * 1e6) / 1e6
        prev = c
        points[str(score)] = {"cosine": c, "far": far, "how": how,
                              "protocol_far": proto.far_at(c), "all_pairs_far": every.far_at(c),
                              "frr": round(float((gen < c).mean()), 5) if gen.size else None}
    anchors = [[-1.0, 0.0]] + [[p["cosine"], float(s)] for s, p in points.items()] + [[1.0, 100.0]]
    tail["pairs"] = "all cross-person pairs" if every is not proto else "protocol pairs"
    return {"anchors": anchors, "points": points, "tail": tail, "impostor_pairs": n, "all_pairs": every.n,
            "genuine_pairs": int(gen.size)}


def run(cfg, model_id: str, folder: Path, cache: Path | None, quiet: bool = False) -> dict:
    """Embed ``folder`` with ``model_id`` (the configured detector, landmarks and flip), calibrate,
    and write the calibration into the model's card."""
    folder = Path(folder)
    if not folder.is_dir():
        raise E.EdgeError(E.FILE_NOT_EXIST, f"{folder} is not a folder: give a folder with one sub-folder of photos "
                          "per person")
    ids = ev.identities(folder)
    if len(ids) < 2:
        raise E.EdgeError(E.PARARM_ERROR, f"{folder} has {len(ids)} people with photos: calibration needs "
                          "impostor pairs from many different people")
    cfg.embed.embedder = model_id
    an = FaceAnalyzer(cfg)      # a card of another role is refused here (-4)
    t = ev.embed_all(an, ids, quiet=quiet, cache=cache)
    cos, same, valid, _, _ = ev.protocol_pairs(t)
    impostor = cos[~same & valid]
    # every pair's cosine above the protocol's FAR-1e-2 point: deep enough for every anchor above 50
    floor = float(np.quantile(impostor, 1 - 1e-2)) if impostor.size else 1.0
    found = np.flatnonzero(t.found)
    every = all_pairs_tail(t.units[found], [t.labels[i] for i in found], floor)
    cal = calibration(impostor, cos[same & valid], every)
    variant = "flip" if cfg.embed.flip else "single"
    cal |= {"data": f"{folder.name}: {len(ids)} people, {len(t.labels)} photos, {int((~t.found).sum())} without a "
                    "face; first photo enrolled, the others probes",
            "pipeline": f"{cfg.detect.detector} + facemesh + {an.embedder.model}",
            "by": "site", "date": time.strftime("%Y-%m-%d")}
    # the card of the model that made the templates: with precision = "int8", the int8 one
    path = cards.card_path(cfg.models_path, an.embedder.card["id"])
    card = cards.read_card(path)
    metric = card.setdefault("metric", {"kind": "cosine"})
    metric.setdefault("calibration", {})[variant] = cal
    try:
        cards.write_card(Path(card["_dir"]), card)
    except OSError as e:
        raise E.EdgeError(E.SYSTEM_ERROR, f"cannot write the calibration into {path} ({e}): nothing was changed; "
                          "free space or fix the permissions and run again") from None
    return {"model": an.embedder.card["id"], "variant": variant, "card": str(path), "calibration": cal}
