"""`edge eval openset`: what a door sees at its library size.

A gallery is enrolled from the first photo of each person in a folder of identities (lfw-dev:
158 people) plus enrolled distractors, every other photo of a distractor folder (lfw-distractors:
727 of 1,453 single photos); the other half are strangers, never enrolled. At a threshold:

- FNIR, false-negative identification rate: a genuine probe (every other photo of an enrolled
  person) that is not returned as themselves at or above the threshold (a photo with no face
  counts as missed);
- FPIR, false-positive identification rate: a stranger whose best match in the gallery scores at
  or above the threshold (would open the door for someone);
- misidentified: a genuine probe returned as somebody else at or above the threshold.

Real faces go up to 158 + 727 = 885 enrolled. Larger libraries (1,000 / 10,000 / 30,000) are
estimated from the measured 1:1 impostor score distribution of the held-out strangers against
every photo (lfw-dev and enrolled distractors, about 2.4 million pairs): FPIR(N) = 1 - (1 -
FAR)^N, and a genuine probe is missed when its mate scores under the threshold or under the best
of N - 1 impostors, FNIR(N) = 1 - mean[mate >= t] (1 - FAR(mate))^(N - 1). FAR comes from the
measured pairs where at least 10 pairs lie above it, else from an exponential tail fitted to the
deepest two measured decades (``calibrate.fit_tail``, on the safe side). The same estimate at
the real sizes is printed beside the measured figures, so its error can be seen.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edge import errors as E
from edge.faces import FaceAnalyzer

from . import calibrate as K
from . import embed_cache
from . import evaluate as ev

TARGET_FPIR = 0.01           # the README's per-size thresholds keep a stranger's chance under 1 %
REPORT_SIZES = (100, 1000, 10000, 30000)
GRID = np.round(np.arange(50.0, 100.01, 0.5), 1)   # thresholds (score) across which DET is drawn


def shared_faces(name: str) -> Path:
    """``../shared/faces/<name>`` beside the checkout (development, CI)."""
    return Path(__file__).resolve().parents[2] / "shared" / "faces" / name


def flat_identities(folder: Path) -> dict[str, list[Path]]:
    """A folder of single photos, one person each (lfw-distractors): each file its own identity."""
    folder = Path(folder)
    if not folder.is_dir():
        raise E.EdgeError(E.FILE_NOT_EXIST, f"{folder} is not a folder of stranger photos")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in ev.IMAGE_EXT)
    if len(files) < 4:
        raise E.EdgeError(E.NO_DATA, f"{folder} holds {len(files)} photos: strangers and enrolled distractors "
                          "need at least 4 (one photo per person)")
    return {p.stem: [p] for p in files}


def load(cfg, people: Path, strangers: Path, cache: Path | None, quiet: bool):
    """The analyzer, the people's templates and the distractors' templates (cached)."""
    people = Path(people)
    if not people.is_dir():
        raise E.EdgeError(E.FILE_NOT_EXIST, f"{people} is not a folder of identities (one sub-folder per person)")
    ids = ev.identities(people)
    if sum(len(v) >= 2 for v in ids.values()) < 2:
        raise E.EdgeError(E.NO_DATA, f"{people} needs people with two or more photos each")
    dist = flat_identities(strangers)
    an = FaceAnalyzer(cfg)
    t = ev.embed_all(an, ids, quiet=quiet, cache=cache)
    d = ev.embed_all(an, dist, quiet=quiet, cache=cache)
    return an, t, d


class FarCurve:
    """1:1 false-accept rate as a function of cosine, from measured impostor pairs: exact where at
    least MIN_PAIRS pairs lie above, the fitted exponential tail beyond (never above the last
    measured rate)."""

    def __init__(self, impostor: np.ndarray):
        self.tail = K.Tail.of(impostor)
        self.fit = K.fit_tail(self.tail)
        kept = self.tail.kept
        self.resolved_to = float(kept[len(kept) - K.MIN_PAIRS])        # cosine of the 10th highest pair
        self.resolved_far = K.MIN_PAIRS / self.tail.n

    def __call__(self, cos) -> np.ndarray:
        cos = np.asarray(cos, np.float64)
        kept = self.tail.kept
        measured = (len(kept) - np.searchsorted(kept, cos, "left")) / self.tail.n
        a, b = self.fit["log10_far"]
        fitted = np.minimum(10.0 ** (a + b * cos), self.resolved_far)
        return np.where(cos <= self.resolved_to, measured, fitted)


def split(t: ev.Templates, d: ev.Templates):
    """Gallery and probes: each person's first photo enrolled, the rest genuine probes; every
    other distractor enrolled (even positions in sorted order), the rest strangers."""
    gallery, probes = ev.split(t.labels)
    dist = np.arange(len(d.labels))
    return gallery, probes, dist[0::2], dist[1::2]


class Openset:
    """The evaluation's data: templates, the split, the impostor FAR curve and the score scale."""

    def __init__(self, t: ev.Templates, d: ev.Templates, scale):
        self.t, self.d, self.scale = t, d, scale
        self.gallery, self.probes, self.enrolled, self.strangers = split(t, d)
        self.labels = np.array(t.labels)
        # the 1:1 impostor pairs of held-out strangers against every photo that could be enrolled
        pool = np.concatenate([t.units[t.found], d.units[self.enrolled][d.found[self.enrolled]]])
        self.far = FarCurve((d.units[self.strangers][d.found[self.strangers]] @ pool.T).ravel())
        self._mates: dict[int, np.ndarray] = {}

    @property
    def people(self) -> int:
        return len(self.gallery)

    def _gallery(self, n_people: int, n_dist: int):
        g = self.gallery[:n_people]
        g = g[self.t.found[g]]
        e = self.enrolled[:n_dist]
        e = e[self.d.found[e]]
        units = np.concatenate([self.t.units[g], self.d.units[e]])
        return units, np.concatenate([self.labels[g], np.full(len(e), "")])

    def _split_size(self, size: int) -> tuple[int, int]:
        return min(size, self.people), max(0, size - self.people)

    def mate_and_rival(self, size: int):
        """For each genuine probe of the people enrolled in a gallery of ``size``: its mate's
        cosine and the best cosine of anyone else there (-2 where the probe or mate has no face)."""
        n_people, n_dist = self._split_size(size)
        units, glabels = self._gallery(n_people, n_dist)
        p = self.probes[np.isin(self.labels[self.probes], self.labels[self.gallery[:n_people]])]
        cos = self.t.units[p] @ units.T
        same = glabels[None, :] == self.labels[p][:, None]
        mate = np.where(same.any(1), np.where(same, cos, -2.0).max(1), -2.0)
        rival = np.where(same, -2.0, cos).max(1)
        found = self.t.found[p]
        return np.where(found, mate, -2.0), np.where(found, rival, -2.0), len(units)

    def mates(self, size: int) -> np.ndarray:
        key = min(size, self.people)
        if key not in self._mates:
            self._mates[key] = self.mate_and_rival(key)[0]
        return self._mates[key]

    def measured(self, size: int, cos_thr) -> dict:
        """Counts across thresholds for a real gallery of ``size`` (at most people + distractors)."""
        mate, rival, n = self.mate_and_rival(size)
        units, _ = self._gallery(*self._split_size(size))
        found = self.d.found[self.strangers]
        top = np.where(found, (self.d.units[self.strangers] @ units.T).max(1), -2.0)
        c = np.asarray(cos_thr, np.float64)[:, None]
        hit = (mate[None, :] >= c) & (mate[None, :] > rival[None, :])
        return {"gallery": n, "genuine": len(mate), "strangers": len(top), "missed": (~hit).sum(1),
                "misidentified": ((rival[None, :] >= c) & (rival[None, :] >= mate[None, :])).sum(1),
                "strangers_matched": (top[None, :] >= c).sum(1)}

    def estimated(self, size: int, cos_thr) -> dict:
        """FNIR / FPIR at a gallery of ``size`` from the 1:1 impostor distribution (module doc)."""
        c = np.asarray(cos_thr, np.float64)
        mate = self.mates(size)
        fpir = -np.expm1(size * np.log1p(-np.minimum(self.far(c), 1 - 1e-12)))
        survive = np.exp((size - 1) * np.log1p(-np.minimum(self.far(np.maximum(mate, -1.0)), 1 - 1e-12)))
        kept = (mate[None, :] >= c[:, None]) * survive[None, :]
        return {"gallery": size, "fpir": fpir, "fnir": 1.0 - kept.mean(1)}

    def real_sizes(self) -> list[int]:
        top = self.people + len(self.enrolled)
        return sorted({min(100, self.people), self.people, self.people + len(self.enrolled) // 2, top})

    def recommend(self, size: int, target: float = TARGET_FPIR) -> float:
        """The lowest threshold on the grid whose estimated FPIR at ``size`` is within ``target``."""
        est = self.estimated(size, [self.scale.cosine(s) for s in GRID])
        ok = np.flatnonzero(est["fpir"] <= target)
        return float(GRID[ok[0]] if len(ok) else GRID[-1])

    def at(self, size: int, score: float) -> dict:
        """FNIR and FPIR at one threshold: measured where the gallery is real (with counts and the
        estimate beside it), estimated otherwise."""
        c = [self.scale.cosine(score)]
        e = self.estimated(size, c)
        est = {"fnir": round(float(e["fnir"][0]), 5), "fpir": round(float(e["fpir"][0]), 6)}
        if size not in self.real_sizes():
            return {"gallery": size, "threshold": score, "how": "estimated", **est}
        m = self.measured(size, c)
        counts = {k: int(m[k][0]) if isinstance(m[k], np.ndarray) else int(m[k])
                  for k in ("genuine", "missed", "misidentified", "strangers", "strangers_matched")}
        return {"gallery": size, "threshold": score, "how": "measured",
                "fnir": round(counts["missed"] / counts["genuine"], 5),
                "fpir": round(counts["strangers_matched"] / counts["strangers"], 6),
                "counts": counts, "estimate": est}


def run(cfg, args) -> dict:
    people = Path(args.folder or shared_faces("lfw-dev"))
    strangers = Path(getattr(args, "strangers", None) or shared_faces("lfw-distractors"))
    cache = None if getattr(args, "no_cache", False) else embed_cache.default_path(cfg)
    an, t, d = load(cfg, people, strangers, cache, args.quiet)
    scale = an.embedder.scale
    if not scale.calibrated:
        raise E.EdgeError(E.MODEL_IS_EMPTY, f"{an.embedder.model}: its card has no calibration, so scores mean no "
                          "false-accept rate: run `edge models calibrate` first")
    thr = float(args.threshold if getattr(args, "threshold", None) is not None else cfg.recognition.threshold)
    o = Openset(t, d, scale)
    sizes = sorted(set(o.real_sizes()) | set(_sizes(args)))
    recommended = []
    for size in REPORT_SIZES:
        r = o.at(size, o.recommend(size))
        recommended.append(r)
    report = {
        "model": an.embedder.model,
        "data": {"people": str(people), "strangers": str(strangers), "enrolled_people": o.people,
                 "genuine_probes": int(len(o.probes)), "enrolled_distractors": int(len(o.enrolled)),
                 "stranger_probes": int(len(o.strangers)),
                 "no_face": {"people": int((~t.found).sum()), "distractors": int((~d.found).sum())},
                 "largest_real_gallery": o.real_sizes()[-1]},
        "threshold": thr, "target_fpir": TARGET_FPIR,
        "at_threshold": [o.at(size, thr) for size in sizes],
        "recommended": recommended,
        "estimator": {"impostor_pairs": int(o.far.tail.n), "measured_down_to_far": o.far.resolved_far,
                      "measured_down_to_score": round(float(scale.score(o.far.resolved_to)), 2),
                      "tail_log10_far": [round(v, 4) for v in o.far.fit["log10_far"]],
                      "tail_fitted_on_far": o.far.fit["rates"]},
        "det": det_table(o, sizes),
    }
    report["plots"] = _plots(o, report, Path(getattr(args, "plots", None) or Path(cfg.home) / "eval"))
    return report


def det_table(o: Openset, sizes: list[int]) -> dict:
    """FNIR and FPIR across the threshold grid: measured for the real galleries, estimated for all."""
    cos = [o.scale.cosine(s) for s in GRID]
    out = {"thresholds": GRID.tolist()}
    for size in sizes:
        e = o.estimated(size, cos)
        out[f"estimated_{size}"] = {"fnir": e["fnir"].round(5).tolist(), "fpir": e["fpir"].round(8).tolist()}
        if size in o.real_sizes():
            m = o.measured(size, cos)
            out[f"measured_{size}"] = {"fnir": (m["missed"] / m["genuine"]).round(5).tolist(),
                                       "fpir": (m["strangers_matched"] / m["strangers"]).round(6).tolist()}
    return out


def _plots(o: Openset, report: dict, folder: Path) -> dict:
    try:
        from . import openset_plots as P
    except ImportError:
        return {"missing": "matplotlib is not installed: pip install 'edge-face[plots]'"}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return {"det": str(P.det(folder / "openset_det.png", report)),
                "fpir_by_size": str(P.fpir_by_size(folder / "openset_fpir_by_size.png", o, report))}
    except OSError as e:   # the figures above are printed all the same
        return {"error": f"cannot write the plots into {folder}: {e}"}


def _sizes(args) -> list[int]:
    raw = getattr(args, "sizes", None) or ",".join(str(s) for s in REPORT_SIZES)
    try:
        sizes = [int(s) for s in str(raw).split(",") if s.strip()]
    except ValueError:
        raise E.EdgeError(E.PARARM_ERROR, f"--sizes {raw!r}: give gallery sizes such as 100,1000,10000") from None
    if not sizes or any(not 1 <= s <= 10_000_000 for s in sizes):
        raise E.EdgeError(E.PARARM_ERROR, f"--sizes {raw!r}: sizes from 1 to 10,000,000")
    return sizes
