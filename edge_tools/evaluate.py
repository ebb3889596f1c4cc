"""1:N evaluation on a folder of identities (one sub-folder per person), e.g. LFW.

Protocol (the issue's): enrol each person's first image in sorted order, identify every other
image; rank-1 counts a probe as correct when the best-scoring enrolled user is the right one
(a probe with no detectable face counts as wrong). The false-accept rate of a threshold is
measured on every (probe, enrolled template of another person) pair.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge import errors as E
from edge import image as I
from edge.faces import FaceAnalyzer
from edge.progress import Progress

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass
class Templates:
    labels: list[str]
    paths: list[str]
    units: np.ndarray          # (N, D); rows of zeros where no face was found
    raw: np.ndarray
    found: np.ndarray          # bool (N,)


def identities(root: Path) -> dict[str, list[Path]]:
    out = {}
    for d in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        files = sorted(f for f in d.iterdir() if f.suffix.lower() in IMAGE_EXT)
        if files:
            out[d.name] = files
    return out


def embed_all(an: FaceAnalyzer, ids: dict[str, list[Path]], quiet: bool = False) -> Templates:
    labels, paths = [], []
    for name, files in ids.items():
        for f in files:
            labels.append(name)
            paths.append(str(f))
    prog = Progress(len(paths), "embedding", quiet=quiet)
    raw, found = [], []
    for p in paths:
        try:
            img = I.load(p)
            face = an.largest(img)
            raw.append(an.template(img, face).vector)
            found.append(True)
        except E.EdgeError:
            raw.append(None)
            found.append(False)
        prog.step()
    prog.done()
    dim = next(r.size for r in raw if r is not None)
    raw = np.stack([r if r is not None else np.zeros(dim, np.float32) for r in raw])
    units = raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)
    return Templates(labels, paths, units, raw, np.array(found))


def one_to_n(t: Templates, score_fn, threshold: float) -> dict:
    labels = np.array(t.labels)
    first = {}
    for i, l in enumerate(t.labels):
        first.setdefault(l, i)
    gallery = np.array(list(first.values()))
    probes = np.array([i for i in range(len(labels)) if i not in set(gallery)])
    glabels = labels[gallery]
    cos = t.units[probes] @ t.units[gallery].T
    best = cos.argmax(1)
    correct = (glabels[best] == labels[probes]) & t.found[probes] & t.found[gallery][best]
    scores = score_fn(cos)
    same = glabels[None, :] == labels[probes][:, None]
    valid = t.found[probes][:, None] & t.found[gallery][None, :]
    impostor = scores[~same & valid]
    genuine = scores[same & valid]
    # euclidean on raw descriptors, for the embedder's own documented point
    d = np.linalg.norm(t.raw[probes][:, None, :] - t.raw[gallery][None, :, :], axis=2)
    return {
        "people": len(gallery), "probes": int(len(probes)),
        "no_face": int((~t.found).sum()),
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
    }
