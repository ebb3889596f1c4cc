"""`edge bench recognition --int8`: the int8 models against the float ones in the same run.

Per stage, the same image, detection and chip go through the float model and then the int8
model (interleaved, so a busy machine slows both alike), best of ``repeat`` each, medians over
the images; then rank-1 and the false-accept rate of both on lfw-dev (``../shared/faces/lfw-dev``
or ``--lfw``), enrolling each person's first image and identifying the rest.
"""
from __future__ import annotations

import copy
import statistics
from pathlib import Path

import numpy as np

from edge import errors as E
from edge.config import Config

STAGES = ("detect", "landmarks", "embed", "total")


def _best_ms(fn, repeat):
    import time

    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, (time.perf_counter() - t) * 1000)
    return best


def _lfw_default() -> Path | None:
    from .bench import shared_public

    pub = shared_public()
    p = pub.parent / "lfw-dev" if pub else None
    return p if p and p.is_dir() else None


class Int8Stages:
    def __init__(self, cfg: Config, repeat: int):
        from edge.faces import FaceAnalyzer

        self.cfg8 = copy.deepcopy(cfg)
        self.cfg8.precision = "int8"
        try:
            self.an = FaceAnalyzer(self.cfg8)
        except E.EdgeError as e:
            raise E.EdgeError(e.code, f"{e.message} (make the int8 models with `edge models quantize`)") from None
        self.repeat = repeat
        self.times = {k: [] for k in STAGES}
        self.cos = []        # float vs int8 template of the same face

    def measure(self, img, det, mesh, tpl_float):
        c = self.cfg8.detect
        t_det = _best_ms(lambda: self.an.detector(img, c.not_face_thr, c.nms_iou), self.repeat)
        t_lm = _best_ms(lambda: self.an.mesh(img, det), self.repeat)
        t_emb = _best_ms(lambda: self.an.embedder(img, mesh.dlib5(), mesh.five()), self.repeat)
        for k, v in zip(STAGES, (t_det, t_lm, t_emb, t_det + t_lm + t_emb)):
            self.times[k].append(v)
        self.cos.append(float(self.an.embedder(img, mesh.dlib5(), mesh.five()).unit @ tpl_float.unit))

    def report(self, float_times: dict, an_float, lfw: str | None, progress=True) -> dict:
        med = lambda xs: round(statistics.median(xs), 3) if xs else None
        f = {k: med(float_times[k]) for k in STAGES}
        q = {k: med(self.times[k]) for k in STAGES}
        out = {"models": {"float": [an_float.detector.card["id"], an_float.mesh.card["id"], an_float.embedder.card["id"]],
                          "int8": [self.an.detector.card["id"], self.an.mesh.card["id"], self.an.embedder.card["id"]]},
               "float_ms": f, "int8_ms": q,
               "speedup": {k: round(f[k] / q[k], 2) if f[k] and q[k] else None for k in STAGES},
               "template_cosine_float_vs_int8": {"min": round(min(self.cos), 5), "median": round(med(self.cos), 5)}}
        root = Path(lfw) if lfw else _lfw_default()
        if root is None or not root.is_dir():
            out["lfw_dev"] = {"error": "no lfw-dev folder (../shared/faces/lfw-dev or --lfw DIR)"}
            return out
        from edge_tools import evaluate as ev

        ids = ev.identities(root)
        res = {}
        for name, an in (("float", an_float), ("int8", self.an)):
            r = ev.one_to_n(ev.embed_all(an, ids, quiet=not progress), an.embedder.score,
                            self.cfg8.recognition.threshold)
            res[name] = {k: r[k] for k in ("people", "probes", "no_face", "rank1", "far", "false_accepts",
                                           "impostor_pairs", "frr")}
            res[name]["rank1_percent"] = round(100 * r["rank1"], 2)
            res[name]["far_percent"] = round(100 * r["far"], 3)
        res["rank1_change_points"] = round(res["int8"]["rank1_percent"] - res["float"]["rank1_percent"], 2)
        res["far_change_points"] = round(res["int8"]["far_percent"] - res["float"]["far_percent"], 3)
        res["folder"] = str(root)
        out["lfw_dev"] = res
        return out
