"""1:N evaluation on a folder of identities (one sub-folder per person), e.g. LFW.

Protocol (the issue's): enrol each person's first image in sorted order, identify every other
image; rank-1 counts a probe as correct when the best-scoring enrolled user is the right one
(a probe with no detectable face counts as wrong). The false-accept rate of a threshold is
measured on every (probe, enrolled template of another person) pair: on lfw-dev, 373,503 pairs.
Templates come from the still-image path every command uses (``FaceAnalyzer.main_face``) and are
cached per pipeline and file (``embed_cache``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.faces import FaceAnalyzer

from . import embed_cache

SCORE_POINTS = (60, 70, 80, 90)
IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass
class Templates:
    labels: list[str]
    paths: list[str]
    units: np.ndarray          # (N, D); rows of zeros where no face was found
    raw: np.ndarray
    found: np.ndarray          # bool (N,)
    reasons: list[str] | None = None    # why no face was found, per image ("" when one was)


def identities(root: Path) -> dict[str, list[Path]]:
    out = {}
    for d in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        files = sorted(f for f in d.iterdir() if f.suffix.lower() in IMAGE_EXT)
        if files:
            out[d.name] = files
    return out


def embed_all(an: FaceAnalyzer, ids: dict[str, list[Path]], quiet: bool = False,
              cache: Path | None = None) -> Templates:
    labels, paths = [], []
    for name, files in ids.items():
        for f in files:
            labels.append(name)
            paths.append(str(f))
    found = embed_cache.analyse_all(an, paths, cache, quiet=quiet)
    dim = next((f.vector.size for f in found if f.vector is not None), an.embedder.dim)
    raw = np.stack([f.vector if f.vector is not None else np.zeros(dim, np.float32) for f in found])
    units = raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)
    return Templates(labels, paths, units, raw, np.array([f.vector is not None for f in found]),
                     [f.reason for f in found])


def split(labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The protocol: (gallery, probes) indices; each identity's first image is its enrolment."""
    first: dict[str, int] = {}
    for i, l in enumerate(labels):
        first.setdefault(l, i)
    gallery = np.array(list(first.values()), int)
    enrolled = set(first.values())
    return gallery, np.array([i for i in range(len(labels)) if i not in enrolled], int)


def protocol_pairs(t: Templates):
    """Cosines of every (probe, enrolled image) pair, which pairs are the same person, and which
    are usable (a face in both)."""
    labels = np.array(t.labels)
    gallery, probes = split(t.labels)
    cos = t.units[probes] @ t.units[gallery].T
    same = labels[gallery][None, :] == labels[probes][:, None]
    valid = t.found[probes][:, None] & t.found[gallery][None, :]
    return cos, same, valid, gallery, probes


def one_to_n(t: Templates, score_fn, threshold: float) -> dict:
    labels = np.array(t.labels)
    cos, same, valid, gallery, probes = protocol_pairs(t)
    glabels = labels[gallery]
    best = cos.argmax(1)
    correct = (glabels[best] == labels[probes]) & t.found[probes] & t.found[gallery][best]
    scores = score_fn(cos)
    impostor = scores[~same & valid]
    genuine = scores[same & valid]
    # euclidean on raw descriptors, for the embedder's own documented point
    d = np.linalg.norm(t.raw[probes][:, None, :] - t.raw[gallery][None, :, :], axis=2)
    return {
        "people": len(gallery), "probes": int(len(probes)),
        "no_face": int((~t.found).sum()),
        "no_face_files": [p for p, f in zip(t.paths, t.found) if not f],
        "rank1": float(correct.mean()),
        "rank1_errors": [(t.paths[p], str(glabels[b])) for p, b, c in zip(probes, best, correct) if not c],
        "threshold": threshold,
        "impostor_pairs": int(impostor.size),
        "far": float((impostor >= threshold).mean()) if impostor.size else 0.0,
        "false_accepts": int((impostor >= threshold).sum()),
        "frr": float((genuine < threshold).mean()) if genuine.size else 0.0,
        "far_euclidean_0_6": float((d[~same & valid] < 0.6).mean()),
        "frr_euclidean_0_6": float((d[same & valid] >= 0.6).mean()),
        "max_impostor_score": float(impostor.max()) if impostor.size else 0.0,
        # what each score costs and buys: the calibration's decade points (README)
        "by_score": {str(s): {"far": float((impostor >= s).mean()) if impostor.size else 0.0,
                              "false_accepts": int((impostor >= s).sum()),
                              "frr": float((genuine < s).mean()) if genuine.size else 0.0}
                     for s in SCORE_POINTS},
    }
