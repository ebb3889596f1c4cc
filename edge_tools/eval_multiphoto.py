"""`edge eval multiphoto`: does enrolling several photos per user help, and how should a user's
templates be combined in search?

People with at least 6 photos in a folder of identities (lfw-dev: all 158) are enrolled with
their first 1, 3 or 5 photos; every photo from the 6th on is a genuine probe, the same probes for
every count. Strangers are every photo of a distractor folder (lfw-distractors: 1,453 people,
none enrolled). Two ways to score a probe against a user with several templates:

- ``best``: the highest cosine over the user's templates (what the library does: one row per
  face, the user's best face answers);
- ``mean``: the cosine to the user's mean template (the normalised mean of the unit templates).

For each: rank-1, and at the threshold FNIR, FPIR (counts), the misidentified; and, because a
combination that lifts genuine scores may lift strangers' too, FNIR at the lowest threshold whose
FPIR stays within 1 % ("at equal FPIR").
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edge import errors as E

from . import embed_cache
from .eval_openset import GRID, TARGET_FPIR, load, shared_faces

COUNTS = (1, 3, 5)
PROBES_FROM = 5          # photos 6, 7, ... of each person are the probes (0-based index 5)
RULES = ("best", "mean")


def _unit(x):
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def gallery_scores(units: np.ndarray, enrol: list[np.ndarray], rule: str) -> np.ndarray:
    """Cosine of each query (rows of ``units``) to each user, whose templates are ``enrol[u]``."""
    if rule == "mean":
        return units @ _unit(np.stack([_unit(e.mean(0)) for e in enrol])).T
    return np.stack([(units @ e.T).max(1) for e in enrol], 1)


def evaluate(t, d, scale, threshold: float, counts=COUNTS) -> dict:
    labels = np.array(t.labels)
    people = [p for p in dict.fromkeys(t.labels) if (labels == p).sum() > PROBES_FROM]
    if len(people) < 2:
        raise E.EdgeError(E.NO_DATA, f"multi-photo enrolment needs people with {PROBES_FROM + 1} or more photos "
                          f"each: found {len(people)}")
    idx = {p: np.flatnonzero(labels == p) for p in people}
    probes = np.concatenate([idx[p][PROBES_FROM:] for p in people])
    truth = np.concatenate([np.full(len(idx[p]) - PROBES_FROM, i) for i, p in enumerate(people)])
    found_p = t.found[probes]
    strangers = d.units[d.found]
    grid_cos = np.array([scale.cosine(s) for s in GRID])
    t_cos = scale.cosine(threshold)
    out = []
    for k in counts:
        enrol = []
        for p in people:
            e = idx[p][:k]
            e = e[t.found[e]]
            enrol.append(t.units[e] if len(e) else np.zeros((1, t.units.shape[1]), np.float32))
        for rule in RULES:
            g = gallery_scores(t.units[probes], enrol, rule)
            best = g.argmax(1)
            top = g.max(1)
            right = found_p & (best == truth)
            s_top = gallery_scores(strangers, enrol, rule).max(1)

            def rates(c):
                fnir = 1.0 - (right & (top >= c)).mean()
                wrong = int((found_p & ~right & (top >= c)).sum())
                return fnir, int((s_top >= c).sum()), wrong

            fnir, fp, wrong = rates(t_cos)
            per = [rates(c) for c in grid_cos]
            ok = [i for i, r in enumerate(per) if r[1] / len(d.labels) <= TARGET_FPIR]
            i = ok[0] if ok else len(GRID) - 1
            out.append({"photos": k, "rule": rule, "rank1": round(float(right.mean()), 5),
                        "threshold": threshold, "fnir": round(float(fnir), 5), "fpir": round(fp / len(d.labels), 5),
                        "counts": {"probes": int(len(probes)), "missed": int(round(fnir * len(probes))),
                                   "misidentified": wrong, "strangers": int(len(d.labels)), "strangers_matched": fp},
                        "at_equal_fpir": {"threshold": float(GRID[i]), "fnir": round(float(per[i][0]), 5),
                                          "fpir": round(per[i][1] / len(d.labels), 5)}})
    return {"people": len(people), "probes": int(len(probes)), "strangers": int(len(d.labels)), "results": out,
            "choice": choose(out)}


def choose(rows: list[dict]) -> dict:
    """The rule with the lower FNIR at equal FPIR, summed over the multi-photo counts."""
    multi = [r for r in rows if r["photos"] > 1]
    if not multi:
        return {}
    cost = {rule: sum(r["at_equal_fpir"]["fnir"] for r in multi if r["rule"] == rule) for rule in RULES}
    pick = min(cost, key=cost.get)
    return {"rule": pick, "why": f"lower FNIR at FPIR <= {TARGET_FPIR:.0%} summed over {sorted({r['photos'] for r in multi})} "
                                 f"photos: " + ", ".join(f"{k} {v:.4f}" for k, v in cost.items())}


def run(cfg, args) -> dict:
    people = Path(args.folder or shared_faces("lfw-dev"))
    strangers = Path(getattr(args, "strangers", None) or shared_faces("lfw-distractors"))
    cache = None if getattr(args, "no_cache", False) else embed_cache.default_path(cfg)
    an, t, d = load(cfg, people, strangers, cache, args.quiet)
    thr = float(args.threshold if getattr(args, "threshold", None) is not None else cfg.recognition.threshold)
    return {"model": an.embedder.model, "people_folder": str(people), "strangers_folder": str(strangers),
            **evaluate(t, d, an.embedder.scale, thr)}
