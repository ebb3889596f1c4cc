"""`edge bench api`: 1:N search over HTTP (the v3 API of `edge serve`) against the same searches
through the Python API, in one run, at 30,000 enrolled users, with 1 and 4 concurrent clients.

The library holds one real template per identity of the photo folder (their first photo) plus
random unit vectors as distractors up to ``users`` (labelled so in the output, as
``edge bench recognition`` does). Every request searches one real photo (base64, the whole
detect -> landmarks -> embed -> search path), so the ratio is the HTTP service's overhead
(JSON, base64, uvicorn, token and limit checks) over the engine's own work.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from edge import errors as E
from edge.config import Config

from .bench import _images

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

# folders of ../shared/faces/public that are not one person each (group photos, partial faces)
NOT_IDENTITIES = {"multi", "edge_cases"}
ROUNDS = 3      # the paths alternate in rounds, so a load change on a shared machine hits both


def _stats(lat_ms: list[float], wall: float) -> dict:
    s = sorted(lat_ms)
    p99 = s[min(len(s) - 1, int(round(0.99 * (len(s) - 1))))]
    return {"requests": len(s), "requests_per_s": round(len(s) / wall, 2), "median_ms": round(statistics.median(s), 2),
            "p99_ms": round(p99, 2)}


def _run(clients: int, total: int, one) -> tuple[list[float], float, int]:
    """``total`` calls of ``one(i, state)`` spread over ``clients`` threads; latencies, wall time,
    failures."""
    lat: list[float] = []
    bad = [0]
    lock = threading.Lock()
    next_i = iter(range(total))

    def worker():
        state: dict = {}
        while True:
            with lock:
                i = next(next_i, None)
            if i is None:
                return
            t = time.perf_counter()
            ok = one(i, state)
            dt = (time.perf_counter() - t) * 1000
            with lock:
                lat.append(dt)
                bad[0] += 0 if ok else 1

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, time.perf_counter() - t0, bad[0]


def _library(cfg: Config, files: list[Path], users: int, progress) -> tuple[list[tuple[bytes, str]], int]:
    """Enrol the first photo of each identity folder, fill up with distractors; returns the
    probes (photo bytes, expected user) and the number of real users."""
    from edge.engine import FaceEngine
    from edge.library import FaceRecord

    by_person: dict[str, list[Path]] = {}
    for f in files:
        if f.parent.name not in NOT_IDENTITIES:
            by_person.setdefault(f.parent.name, []).append(f)
    eng = FaceEngine(cfg)
    probes, real = [], 0
    try:
        for person, photos in sorted(by_person.items()):
            if len(photos) < 2:
                continue            # nothing left to search with
            try:
                eng.user_add(str(photos[0]), person, "bench")
            except E.EdgeError:
                continue
            real += 1
            probes += [(p.read_bytes(), person) for p in photos[1:]]
        rng = np.random.default_rng(0)
        model, dim = eng.embedder.model, eng.library.dim
        n_rand = max(0, users - real)
        for start in range(0, n_rand, 5000):
            n = min(5000, n_rand - start)
            v = rng.standard_normal((n, dim)).astype(np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            eng.library.add_many([(f"d{start + i}", "bench", FaceRecord(v[i], model), None) for i in range(n)])
            progress(f"library: {real + start + n} users")
    finally:
        eng.close()
    if not probes:
        raise E.EdgeError(E.FILE_NOT_EXIST, "no identity folder with two or more photos to search with")
    return probes, real


class _Server:
    """`edge serve` in a child process on a loopback port, with its own key."""

    def __init__(self, home: Path, cfg_file: Path, models: Path):
        from edge.api.auth import KeyStore
        from edge.api.server import serve  # noqa: F401  (fails early without the serve extra)

        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        # the highest QPS a key may have (KeyStore refuses more): the bench measures the device, not
        # the limit (1e6 here made every run fail with "--qps 1000000.0: use 0.1..100000")
        self.ak, self.sk = KeyStore(home).add("bench", qps=100000)
        env = dict(os.environ, EDGE_HOME=str(home), EDGE_MODELS_DIR=str(models))
        self.log = open(home / "serve.log", "w+")
        self.proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "--config", str(cfg_file), "serve",
                                      "--host", "127.0.0.1", "--port", str(self.port)],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        end = time.monotonic() + 60
        while True:
            try:
                self.token = self._token()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > end:
                    self.close()
                    self.log.seek(0)
                    raise E.EdgeError(E.SYSTEM_ERROR, "edge serve did not start: " + self.log.read()[-2000:]) from None
                time.sleep(0.2)

    def _token(self) -> str:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        c.request("POST", f"/oauth/2.0/token?grant_type=client_credentials&client_id={self.ak}&client_secret={self.sk}")
        tok = json.loads(c.getresponse().read())["access_token"]
        c.close()
        return tok

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def api(cfg: Config, images_arg=None, users: int = 30000, requests: int = 120, clients=(1, 4),
        progress=True) -> dict:
    from edge.engine import FaceEngine

    say = (lambda m: sys.stderr.write(f"bench api: {m}\n")) if progress else (lambda m: None)
    files = _images(images_arg, cfg)
    with tempfile.TemporaryDirectory(prefix="edge-bench-api-") as d:
        home = Path(d)
        models = cfg.models_path
        cfg_file = home / "bench.toml"
        cfg_file.write_text(f"threads = 1\n[library]\nmax_users = {users + 100}\n")
        from edge import config as C
        bcfg = C.load(cfg_file, home=home, models_dir=models)
        probes, real = _library(bcfg, files, users, say)
        bodies = [json.dumps({"image": base64.b64encode(data).decode(), "image_type": "BASE64",
                              "group_id_list": "bench", "max_user_num": 1}).encode() for data, _ in probes]
        eng = FaceEngine(bcfg)
        srv = _Server(home, cfg_file, models)
        url = f"/rest/2.0/face/v3/search?access_token={srv.token}"

        def py_one(i, state):
            # the Python API: FaceEngine.identify on the same photo bytes (decode included)
            data, who = probes[i % len(probes)]
            return eng.identify(data, ["bench"], 1)["user_list"][0]["user_id"] == who

        def http_one(i, state):
            conn = state.get("c")
            if conn is None:
                conn = state["c"] = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
            conn.request("POST", url, bodies[i % len(bodies)], {"Content-Type": "application/json"})
            r = json.loads(conn.getresponse().read())
            return r["error_code"] == 0 and r["result"]["user_list"][0]["user_id"] == probes[i % len(probes)][1]

        acc = {(p, c): ([], 0.0, 0) for p in ("python", "http") for c in clients}
        try:
            _run(1, min(5, len(probes)), py_one)                         # warm-up both
            _run(1, min(5, len(probes)), http_one)
            per_round = max(1, requests // ROUNDS)
            for r in range(ROUNDS):
                for c in clients:
                    for path, one in (("python", py_one), ("http", http_one)):
                        say(f"round {r + 1}/{ROUNDS}: {path}, {c} client(s)")
                        lat, wall, bad = _run(c, per_round, one)
                        a = acc[(path, c)]
                        acc[(path, c)] = (a[0] + lat, a[1] + wall, a[2] + bad)
        finally:
            srv.close()
            eng.close()
        rows = [{"path": p, "clients": c, **_stats(lat, wall), "wrong_user": bad}
                for (p, c), (lat, wall, bad) in acc.items()]
    ratios = []
    for c in clients:
        p = next(r for r in rows if r["path"] == "python" and r["clients"] == c)
        h = next(r for r in rows if r["path"] == "http" and r["clients"] == c)
        ratios.append({"clients": c, "median_http_over_python": round(h["median_ms"] / p["median_ms"], 3),
                       "throughput_http_over_python": round(h["requests_per_s"] / p["requests_per_s"], 3),
                       "http_overhead_ms": round(h["median_ms"] - p["median_ms"], 2)})
    return {"users": users, "real_users": real, "random_distractors": users - real,
            "distractors_note": "random unit vectors inserted directly into the library, not faces",
            "probes": len(probes), "requests_per_config": requests, "threads_per_inference": 1,
            "baseline": "FaceEngine.identify in-process on the same photo bytes", "results": rows,
            "ratios": ratios}
