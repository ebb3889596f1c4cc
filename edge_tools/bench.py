"""`edge bench recognition`: per-stage medians against face_recognition's pipeline, and 1:N
search latency against numpy brute force, all measured in the same run, single thread.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edge import errors as E
from edge import image as I
from edge.config import Config

# single thread for every library, set before numpy/dlib spin up their pools
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")


def _ms(fn, repeat):
    out = []
    val = None
    for _ in range(repeat):
        t = time.perf_counter()
        val = fn()
        out.append((time.perf_counter() - t) * 1000)
    return min(out), val  # best of `repeat` per image; medians are taken across images


def shared_public() -> Path | None:
    """``../shared/faces/public`` beside the checkout, when it is there (development, CI)."""
    p = Path(__file__).resolve().parents[2] / "shared" / "faces" / "public"
    return p if p.is_dir() else None


def _images(arg: str | None, cfg: Config) -> list[Path]:
    if arg:
        root = Path(arg)
    else:
        shared = shared_public()
        if shared:
            root = shared
        else:
            from .demo import demo_photos
            root = demo_photos(cfg)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise E.EdgeError(E.FILE_NOT_EXIST, f"no images under {root}")
    return files


def _med(xs):
    return round(statistics.median(xs), 3) if xs else None


def recognition(cfg: Config, images_arg=None, repeat=3, sizes=(1000, 10000, 30000), progress=True,
                int8=False, lfw=None) -> dict:
    import cv2

    from edge.faces import FaceAnalyzer

    cv2.setNumThreads(1)
    cfg.threads = 1
    cfg.precision = "float"
    an = FaceAnalyzer(cfg)
    q8 = None
    if int8:
        from .bench_int8 import Int8Stages
        q8 = Int8Stages(cfg, repeat)
    files = _images(images_arg, cfg)
    ours = {"detect": [], "landmarks": [], "embed": [], "total": []}
    base = {"detect": [], "landmarks+embed": [], "total": []}
    try:
        import face_recognition as fr
    except ImportError:
        fr = None
    templates = []
    for n, f in enumerate(files):
        if progress:
            sys.stderr.write(f"\rbench: image {n + 1}/{len(files)} {f.name[:40]:<40}")
        img = I.load(f)
        t_det, dets = _ms(lambda: an.detector(img, cfg.detect.not_face_thr, cfg.detect.nms_iou), repeat)
        if not dets:
            continue
        det = max(dets, key=lambda d: d.area)
        t_lm, mesh = _ms(lambda: an.mesh(img, det), repeat)
        t_emb, tpl = _ms(lambda: an.embedder(img, mesh.dlib5(), mesh.five()), repeat)
        templates.append(tpl.unit)
        ours["detect"].append(t_det)
        ours["landmarks"].append(t_lm)
        ours["embed"].append(t_emb)
        ours["total"].append(t_det + t_lm + t_emb)
        if q8 is not None:   # the same image, face and chip through the int8 models, right after
            q8.measure(img, det, mesh, tpl)
        if fr is not None:
            rgb = np.ascontiguousarray(img[:, :, ::-1])
            b_det, locs = _ms(lambda: fr.face_locations(rgb), repeat)
            if not locs:
                continue
            big = [max(locs, key=lambda l: (l[2] - l[0]) * (l[1] - l[3]))]
            b_emb, _ = _ms(lambda: fr.face_encodings(rgb, big), repeat)
            base["detect"].append(b_det)
            base["landmarks+embed"].append(b_emb)
            base["total"].append(b_det + b_emb)
    if progress:
        sys.stderr.write("\n")
    out = {
        "images": len(files), "faces": len(ours["total"]), "threads": 1, "unit": "ms per face (median over images)",
        "edge": {k: _med(v) for k, v in ours.items()},
        "edge_pipeline": f"{cfg.detect.detector} + facemesh + {an.embedder.model}",
    }
    if fr is not None:
        out["baseline"] = {"name": "face_recognition 1.3 (HOG detector + dlib 5-point landmarks + dlib ResNet)",
                           **{k: _med(v) for k, v in base.items()}}
        out["speedup_total"] = round(_med(base["total"]) / _med(ours["total"]), 2)
        out["speedup_detect"] = round(_med(base["detect"]) / _med(ours["detect"]), 2)
    else:
        out["baseline"] = {"name": "face_recognition", "error": "not installed (pip install --no-deps face_recognition)"}
    out["search"] = search(templates, sizes, an.embedder.model, progress) if sizes else []
    if q8 is not None:
        out["int8"] = q8.report({k: v for k, v in ours.items()}, an, lfw, progress)
    return out


def search(real: list[np.ndarray], sizes, model: str, progress=True, queries=200) -> list[dict]:
    """1:N latency: real templates plus random unit vectors as distractors (labelled so)."""
    from edge.library import FaceLibrary, FaceRecord

    rng = np.random.default_rng(0)
    dim = real[0].size
    rows = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as d:
            lib = FaceLibrary(Path(d) / "face.db", model, dim, max_users=size + 1)
            n_rand = max(0, size - len(real))
            rand = rng.standard_normal((n_rand, dim)).astype(np.float32)
            rand /= np.linalg.norm(rand, axis=1, keepdims=True)
            vecs = list(real[:size]) + list(rand)
            items = [(f"u{i}", "bench", FaceRecord(v, model), None) for i, v in enumerate(vecs)]
            for i in range(0, len(items), 5000):
                lib.add_many(items[i:i + 5000])
            mat = np.stack(vecs)
            probes = [real[i % len(real)] + rng.standard_normal(dim).astype(np.float32) * 0.02 for i in range(queries)]
            t_lib, t_faiss, t_np = [], [], []
            for q in probes:
                q = q / np.linalg.norm(q)
                t = time.perf_counter(); lib.search(q, ["bench"], 1); t_lib.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter(); lib.index.search(q, 1); t_faiss.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter(); int(np.argmax(mat @ q)); t_np.append((time.perf_counter() - t) * 1000)
            lib.close()
        rows.append({"users": size, "real_templates": min(size, len(real)), "random_distractors": n_rand,
                     "library_search_ms": _med(t_lib), "faiss_only_ms": _med(t_faiss),
                     "baseline_numpy_bruteforce_ms": _med(t_np),
                     "ratio_vs_numpy": round(_med(t_np) / _med(t_lib), 2)})
        if progress:
            sys.stderr.write(f"bench: search at {size} users: median {_med(t_lib)} ms\n")
    return rows


def run(what: str, cfg: Config, args) -> dict:
    sizes = tuple(int(s) for s in str(getattr(args, "sizes", "1000,10000,30000")).split(",") if s)
    if what == "recognition":
        return recognition(cfg, getattr(args, "images", None), getattr(args, "repeat", 3), sizes,
                           int8=getattr(args, "int8", False), lfw=getattr(args, "lfw", None))
    if what == "pipeline":
        from .bench_pipeline import pipeline
        return pipeline(cfg, getattr(args, "images", None), getattr(args, "threads", 1), getattr(args, "users", 0),
                        getattr(args, "config", None))
    if what == "liveness":
        from .bench_liveness import liveness
        return liveness(cfg, getattr(args, "images", None), getattr(args, "repeat", 3))
    if what == "library":
        from .bench_library import library
        return library(cfg, getattr(args, "images", None), rounds=getattr(args, "rounds", 5), size=max(sizes))
    if what == "soak":
        from .bench_pipeline import soak
        r = soak(cfg, args.minutes, getattr(args, "images", None), max_growth=args.max_growth)
        if not r["ok"]:
            raise E.EdgeError(E.SYSTEM_ERROR, f"resident memory grew {r['growth_percent']} % "
                              f"(limit {args.max_growth} %)", result=r)
        return r
    if what == "api":
        from .bench_api import api
        return api(cfg, getattr(args, "images", None), getattr(args, "users", 0) or 30000,
                   getattr(args, "requests", 120))
    raise E.EdgeError(E.PARARM_ERROR, f"unknown benchmark {what}")
