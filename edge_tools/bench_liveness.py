"""`edge bench liveness`: what each liveness check costs per face, single thread, in one run.

Per face of the photos (../shared/faces/public by default, each scaled to fit 640x480 as a camera
frame), median over faces of the best of ``repeat`` runs:

- ``rgb``: crop + MiniFASNetV2 + MiniFASNetV1SE (one judged frame: what a decision attempt adds;
  a decision judges ``liveness.frames`` of them);
- ``nir``: detection on the paired NIR frame + its figures (synthetic NIR from the photo);
- ``depth``: FaceMesh on the RGB frame + the relief fit (synthetic depth from FaceMesh);
- ``action``: one observed frame (eye patches and state confidences; a template is added only
  when an action completes and is timed apart as ``action_template``);

against the named baseline measured in the same run: recognising that face (the embedder, what
every decision attempt already pays). Then the decision latency of the camera loop (the pipeline
bench's replay paced at 25 fps through `edge run`'s threads) with liveness off and with RGB
liveness on, same scene, same run.
"""
from __future__ import annotations

import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edge import image as I
from edge.config import Config

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")


def _best(fn, repeat):
    out, val = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        val = fn()
        out.append((time.perf_counter() - t) * 1000)
    return min(out), val


def _med(xs):
    return round(statistics.median(xs), 3) if xs else None


def per_face(cfg: Config, files: list[Path], repeat: int = 3, progress: bool = True) -> dict:
    import cv2

    from edge.detect import Detection
    from edge.faces import FaceAnalyzer
    from edge.liveness.action import ActionLiveness
    from edge.liveness.depth import DepthLiveness
    from edge.liveness.nir import NirLiveness
    from edge.liveness.rgb import RgbLiveness
    from edge.models.registry import Runtime
    from edge.sources import Frame

    from .liveness_data import depth_of_face, nir_live

    an = FaceAnalyzer(cfg)
    lc = cfg.liveness
    rgb = RgbLiveness(cfg.models_path, lc.rgb_models, Runtime.from_config(cfg))
    nir, depth = NirLiveness(lc, an), DepthLiveness(lc, an)
    action = ActionLiveness(lc.action, an)
    t = {k: [] for k in ("recognise", "rgb", "nir", "depth", "action", "action_template")}
    for n, f in enumerate(files):
        if progress:
            sys.stderr.write(f"\rbench liveness: image {n + 1}/{len(files)} {f.name[:40]:<40}")
        img = I.load(f)
        # the photo as a 640x480 camera would deliver it: the crops (and their cost) are a frame's
        k = min(640 / img.shape[1], 480 / img.shape[0], 1.0)
        img = cv2.resize(img, None, fx=k, fy=k, interpolation=cv2.INTER_AREA) if k < 1 else img
        faces = an.detect(img, 1)
        if not faces:
            continue
        face = faces[0]
        points = an.mesh(img, Detection(np.asarray(face.box, np.float64), face.score,
                                        np.asarray(face.landmarks5)[:2])).points
        nir_img = nir_live(img)
        depth_img = depth_of_face(points, (img.shape[1], img.shape[0]))
        t["recognise"].append(_best(lambda: an.template(img, face), repeat)[0])
        t["rgb"].append(_best(lambda: rgb(img, face), repeat)[0])
        t["nir"].append(_best(lambda: nir(img, face, nir_img), repeat)[0])
        t["depth"].append(_best(lambda: depth(img, face, depth_img), repeat)[0])
        history: dict = {}
        action.observe(Frame(img, 0.0, 0), face, history)          # starts the challenge (and its template)
        t["action"].append(_best(lambda: action.observe(Frame(img, 0.04, 1), face, history), repeat)[0])
        t["action_template"].append(t["recognise"][-1])
    if progress:
        sys.stderr.write("\n")
    med = {k: _med(v) for k, v in t.items()}
    base = med["recognise"]
    return {"faces": len(t["rgb"]), "unit": "ms per face (median over faces, best of repeat)",
            "baseline": {"name": f"recognition of the same face ({an.embedder.model})", "ms": base},
            "modes": {k: {"ms": med[k], "ratio_to_baseline": round(med[k] / base, 3) if base else None}
                      for k in ("rgb", "nir", "depth", "action")},
            "action_template_ms": med["action_template"],
            # a decision judges liveness.frames frames, one per decision attempt
            "rgb_per_decision_ms": round(med["rgb"] * lc.frames, 3) if med["rgb"] else None,
            "frames_per_decision": lc.frames,
            "note": "nir and depth run on synthetic frames made from the photos (edge_tools/liveness_data.py)"}


def liveness(cfg: Config, images=None, repeat: int = 3, latency: bool = True) -> dict:
    import cv2

    from .bench import _images

    cv2.setNumThreads(1)
    cfg.threads = 1
    files = _images(images, cfg)
    out = {"benchmark": "liveness", "threads": 1, "per_face": per_face(cfg, files, repeat)}
    sys.stderr.write(f"bench liveness: rgb {out['per_face']['modes']['rgb']['ms']} ms per face\n")
    if latency:
        from .bench_pipeline import _engine, _root, people
        from .bench_pipeline import latency as pipeline_latency
        from edge.faces import FaceAnalyzer

        root = _root(images)
        lat = {}
        for mode in ("none", "rgb"):
            c = copy.deepcopy(cfg)
            c.liveness.mode = mode
            with tempfile.TemporaryDirectory() as tmp:
                who = people(root, FaceAnalyzer(c), c)
                eng = _engine(c, Path(tmp), who)
                try:
                    lat[mode] = pipeline_latency(c, eng, who)
                finally:
                    eng.close()
            sys.stderr.write(f"bench liveness: decision latency with liveness {mode}: median "
                             f"{lat[mode]['latency_ms_median']} ms\n")
        out["decision_latency"] = {"baseline": "liveness none, same scene, same run", **lat,
                                   "added_ms_median": round(lat["rgb"]["latency_ms_median"]
                                                            - lat["none"]["latency_ms_median"], 1)
                                   if lat["rgb"]["latency_ms_median"] and lat["none"]["latency_ms_median"] else None}
    out["targets"] = {"rgb_ms_per_decision": 10, "latency_ms_median_with_rgb": 300}
    return out
