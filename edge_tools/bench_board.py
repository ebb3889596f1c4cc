"""`edge bench pipeline --users N`: `edge run` as a board runs it, measured from outside.

A fresh process (`python -m edge.cli run`, the configuration given to the bench) starts on a
library of N users (the real people of the scene plus random unit-vector distractors, labelled
as such, each stored with a real face crop and thumbnail so the database has its real size) and
a camera-paced replay in which an enrolled person is in view from the first frame. Measured:
seconds from process start to READY=1 (models and library loaded, loop running) and to the
first decision event (cold start: as root the page cache is dropped first, else it is warm
from this bench's own enrolment, and the output says which), and resident memory (VmRSS
sampled, VmHWM at the end). The named baseline is the same run with only the real people
enrolled.
"""
from __future__ import annotations

import copy
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edge.config import Config
from .scenes import Actor, Scene

SECONDS = 20.0


def _status(pid: int) -> dict:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0]) / 1024
    except OSError:
        pass
    return out


def _library(cfg: Config, home: Path, who: list[dict], users: int, group: str) -> dict:
    from edge.engine import FaceEngine
    from edge.library import FaceRecord

    c = copy.deepcopy(cfg)
    c.models_dir, c.home = cfg.models_path, home
    c.library.max_users = max(c.library.max_users, users)
    eng = FaceEngine(c)
    for p in who:
        eng.user_add(p["enrol"], p["name"], group)
    rec0, _ = eng.face_record(who[0]["enrol"])
    rng = np.random.default_rng(0)
    n = max(0, users - len(who))
    model, dim = eng.analyzer.embedder.model, eng.analyzer.embedder.dim
    for i in range(0, n, 5000):
        k = min(5000, n - i)
        vecs = rng.standard_normal((k, dim)).astype(np.float32)
        vecs *= 1.4 / np.linalg.norm(vecs, axis=1, keepdims=True)     # raw descriptors' typical norm
        eng.library.add_many([(f"distractor_{i + j}", group, FaceRecord(v, model, rec0.crop, rec0.points,
                                                                          rec0.thumbnail), None)
                              for j, v in enumerate(vecs)])
    eng.close()
    size = sum(f.stat().st_size for f in (home / "db").glob("face.*"))
    return {"users": len(who) + n, "real_people": len(who), "random_distractors": n,
            "library_mb_on_disk": round(size / 2**20, 1)}


def _frames(folder: Path, scene: Scene, n: int):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), scene.frame(i), [cv2.IMWRITE_JPEG_QUALITY, 90])


def drop_page_cache() -> bool:
    """A real cold start reads the models and the library from the card: as root, write the
    dirty pages and drop the clean ones first (Linux's drop_caches). False where not allowed;
    the output then says the cache was warm."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def run_once(cfg: Config, config_path: str | None, home: Path, frames: Path, threads: int,
             seconds: float = SECONDS) -> dict:
    sock_path = str(home / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.setblocking(False)
    env = dict(os.environ, EDGE_HOME=str(home), EDGE_MODELS_DIR=str(cfg.models_path), NOTIFY_SOCKET=sock_path,
               OMP_NUM_THREADS=str(threads))
    env.pop("WATCHDOG_USEC", None)
    argv = [sys.executable, "-m", "edge.cli", "--json"] + (["--config", config_path] if config_path else []) + \
        ["run", "--source", str(frames), "--seconds", str(seconds)]
    events = home / "events" / "events.jsonl"
    cold = drop_page_cache()
    t0 = time.monotonic()
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ready = decided = None
    rss, hwm = [], 0.0
    try:
        while p.poll() is None:
            now = time.monotonic() - t0
            try:
                if sock.recv(4096).startswith(b"READY=1") and ready is None:
                    ready = now
            except BlockingIOError:
                pass
            if decided is None and events.is_file() and '"decision"' in events.read_text():
                decided = now
            st = _status(p.pid)
            if st:
                rss.append(st.get("VmRSS", 0.0))
                hwm = max(hwm, st.get("VmHWM", 0.0))
            time.sleep(0.02 if decided is None else 0.25)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
        sock.close()
    if p.returncode != 0:
        raise RuntimeError(f"edge run failed ({p.returncode}): {err.decode()[-1500:]}")
    steady = rss[len(rss) // 2:] or rss
    return {"page_cache": "dropped before the start (cold)" if cold else "warm (files read by this bench before)",
            "ready_s": round(ready, 2) if ready is not None else None,
            "first_decision_s": round(decided, 2) if decided is not None else None,
            "rss_mb_median_second_half": round(float(np.median(steady)), 1) if steady else None,
            "rss_mb_peak": round(hwm, 1), "seconds": seconds}


def service(cfg: Config, config_path: str | None, root: Path, who: list[dict], users: int, threads: int,
            find_face, score, progress=print) -> dict:
    """``score(probe, enrolled_photo)``: the 0-100 score of one person's two photos. The person in
    view is the one whose walking photo scores highest against their enrolment: the configuration
    decides at its own threshold (80 by default, FAR 1e-4), which some fixture pairs do not reach,
    and a cold start that never decides measures nothing."""
    group = (cfg.decision.groups or ["bench"])[0]
    scores = {p["name"]: score(p["probe"], p["enrol"]) for p in who}
    star = max(who, key=lambda p: scores[p["name"]])
    scene = Scene([Actor(star["probe"], 0, 10**6, (280, 220), (340, 230), face_px=140, name=star["name"])],
                  10**6, (640, 480), find_face)
    out = {"config": config_path or "(defaults)", "threads": threads, "group": group,
           "person_in_view": star["name"], "person_score": round(scores[star["name"]], 2)}
    with tempfile.TemporaryDirectory() as tmp:
        frames = Path(tmp) / "frames"
        _frames(frames, scene, int(SECONDS * 25))
        for name, n in (("baseline_real_people_only", len(who)), (f"users_{users}", users)):
            home = Path(tmp) / name
            progress(f"enrolling {n} users for {name}")
            lib = _library(cfg, home, who, n, group)
            progress(f"edge run on {n} users: cold start and resident memory ({SECONDS:g} s)")
            out[name] = lib | run_once(cfg, config_path, home, frames, threads)
    big, base = out[f"users_{users}"], out["baseline_real_people_only"]
    out["rss_mb_added_by_library"] = round(big["rss_mb_peak"] - base["rss_mb_peak"], 1)
    out["targets"] = {"rss_mb": 400, "first_decision_s": 5}
    out["meets_targets"] = bool(big["rss_mb_peak"] < 400 and (big["first_decision_s"] or 1e9) < 5)
    return out
