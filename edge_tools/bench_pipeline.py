"""`edge bench pipeline` and `edge bench soak`: the real-time loop on moving scenes made of real
photos (``scenes``), 640x480.

- fps with one and with three faces, against a named baseline measured in the same run:
  "detect + recognise every face on every frame" (no tracking, no gating), single thread;
- decision latency: a person appears (whole face in view) -> gate decision, on a camera-paced
  replay at 25 fps through the same threads as `edge run`; median and p95;
- soak: resident memory sampled while a looping scene runs through `edge run`'s loop.
"""
from __future__ import annotations

import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2

from edge import errors as E
from edge import outputs as O
from edge import quality as Q
from edge import sources as S
from edge.config import Config
from .scenes import Actor, Scene

SIZE = (640, 480)
FPS = 25.0


def _say(msg: str):
    sys.stderr.write(f"bench: {msg}\n")
    sys.stderr.flush()


def people(root: Path, analyzer, cfg: Config) -> list[dict]:
    """Identities with two or more photos named after their folder (``obama/obama_2.jpg``; other
    folders such as ``multi/`` are not one person): the first (sorted) is enrolled, the
    best-quality other one walks through the scene."""
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        photos = sorted(p for p in d.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")
                        and p.stem.startswith(d.name))
        if len(photos) < 2:
            continue
        best = None
        for p in photos[1:]:
            img = cv2.imread(str(p))
            faces = analyzer.detect(img, 1) if img is not None else []
            if faces:
                s = Q.assess(img, faces[0], cfg.quality).score
                if best is None or s > best[0]:
                    best = (s, p)
        if best:
            out.append({"name": d.name, "enrol": photos[0], "probe": best[1]})
    if len(out) < 3:
        raise E.EdgeError(E.FILE_NOT_EXIST, f"{root} needs three or more identity folders with two photos each")
    return out


def _engine(cfg: Config, home: Path, who: list[dict]):
    from edge.engine import FaceEngine

    cfg.models_dir = cfg.models_path      # the built pack stays where it is; only the library moves
    cfg.home = home
    eng = FaceEngine(cfg)
    for p in who:
        eng.user_add(p["enrol"], p["name"], "bench")
    decide_at_library_size(cfg, eng, len(who))
    return eng


def decide_at_library_size(cfg: Config, eng, users: int) -> None:
    """Scores are calibrated false-accept rates: a library of a handful of people decides at the
    threshold that keeps a stranger's chance of matching anyone under 1 %, as the README tells an
    installer to choose it (an explicit decision.threshold is kept)."""
    if cfg.decision.threshold < 0:
        from edge.scores import threshold_for

        thr = threshold_for(eng.embedder.scale, users)
        if thr is not None:
            cfg.decision.threshold = thr


def _find(eng):
    return lambda img: eng.analyzer.largest(img).box


def _walkers(who: list[dict], n: int, frames: int) -> list[Actor]:
    """n people in view the whole time, drifting slowly (fully inside the frame)."""
    lanes = [(120, 140), (320, 340), (520, 150)]
    out = []
    for k in range(n):
        x, y = lanes[k % 3]
        out.append(Actor(who[k % len(who)]["probe"], 0, frames, (x - 40, y), (x + 40, y - 20), face_px=120,
                         name=who[k % len(who)]["name"]))
    return out


class _StageClock:
    """Times the model stages and the 1:N search inside ``Pipeline.process`` (per frame, ms)."""

    STAGES = ("detect", "landmarks", "embed", "search")

    def __init__(self, eng):
        self.eng, self.an = eng, eng.analyzer
        self.frame = dict.fromkeys(self.STAGES, 0.0)
        self.per_frame = {k: [] for k in self.STAGES + ("other",)}
        self._saved = (self.an.detector, self.an.mesh, self.an.embedder)
        self.an.detector = _TimedStage(self.an.detector, self, "detect")
        self.an.mesh = _TimedStage(self.an.mesh, self, "landmarks")
        self.an.embedder = _TimedStage(self.an.embedder, self, "embed")
        eng.identify_template = _TimedStage(eng.identify_template, self, "search")

    def end_frame(self, total_ms: float):
        for k in self.STAGES:
            self.per_frame[k].append(self.frame[k])
        self.per_frame["other"].append(total_ms - sum(self.frame.values()))   # tracking, quality, votes
        self.frame = dict.fromkeys(self.STAGES, 0.0)

    def restore(self):
        self.an.detector, self.an.mesh, self.an.embedder = self._saved
        del self.eng.identify_template

    def report(self) -> dict:
        return {k: {"median_ms": round(statistics.median(v), 3), "mean_ms": round(statistics.fmean(v), 3)}
                for k, v in self.per_frame.items()}


class _TimedStage:
    def __init__(self, fn, clock: _StageClock, stage: str):
        self._fn, self._clock, self._stage = fn, clock, stage

    def __call__(self, *a, **kw):
        t = time.perf_counter()
        try:
            return self._fn(*a, **kw)
        finally:
            self._clock.frame[self._stage] += (time.perf_counter() - t) * 1000

    def __getattr__(self, name):
        return getattr(self._fn, name)


def fps(cfg: Config, eng, who, n_faces: int, frames: int = 150) -> dict:
    from edge.pipeline import Pipeline

    scene = Scene(_walkers(who, n_faces, frames), frames, SIZE, _find(eng))
    imgs = list(scene)
    pipe = Pipeline(cfg, eng)
    t_pipe = []
    clock = _StageClock(eng)
    try:
        for i, img in enumerate(imgs):
            t = time.perf_counter()
            pipe.process(S.Frame(img, i / FPS, i))
            t_pipe.append((time.perf_counter() - t) * 1000)
            clock.end_frame(t_pipe[-1])
    finally:
        clock.restore()
    t_base = []
    an = eng.analyzer
    for img in imgs[:60]:
        t = time.perf_counter()
        for f in an.detect(img):
            eng.identify_template(an.template(img, f).unit, ["bench"])
        t_base.append((time.perf_counter() - t) * 1000)
    mp, mb = statistics.median(t_pipe), statistics.median(t_base)
    return {"faces": n_faces, "frames": frames, "fps": round(1000 * len(t_pipe) / sum(t_pipe), 1),
            "frame_ms_median": round(mp, 2), "frame_ms_p95": round(_pct(t_pipe, 95), 2),
            "baseline_every_frame_fps": round(1000 * len(t_base) / sum(t_base), 1),
            "baseline_frame_ms_median": round(mb, 2), "ratio_vs_baseline": round(mb / mp, 2),
            "decisions": pipe.stats.decisions, "stage_ms_per_frame": clock.report()}


def _pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


class _Timed(O.Dispatcher):
    """Records when each event leaves the pipeline (on the loop thread)."""

    def __init__(self):
        super().__init__([])
        self.events = []

    def publish(self, event):
        self.events.append((time.monotonic(), event))


class _Stamped(S.Source):
    """A paced replay that remembers each frame's capture time by index."""

    def __init__(self, inner: S.Replay):
        self.inner, self.name, self.ts = inner, inner.name, {}

    def open(self):
        self.inner.open()

    def read(self):
        f = self.inner.read()
        self.ts[f.index] = f.ts
        return f

    def close(self):
        self.inner.close()


def latency(cfg: Config, eng, who, passes: int = 12, stay: int = 40, gap: int = 12) -> dict:
    """Each pass: one person appears (whole face in view), stays ``stay`` frames, leaves."""
    from edge.runner import Runner

    cfg.decision.cooldown = 0.0
    spots = [(200, 200), (420, 220), (320, 180), (260, 260)]
    actors, enter = [], []
    for k in range(passes):
        i0 = gap + k * (stay + gap)
        x, y = spots[k % len(spots)]
        actors.append(Actor(who[k % len(who)]["probe"], i0, i0 + stay, (x, y), (x + 30, y), face_px=130,
                            name=who[k % len(who)]["name"]))
        enter.append(i0)
    scene = Scene(actors, gap + passes * (stay + gap), SIZE, _find(eng))
    src = _Stamped(S.Replay(scene, fps=FPS, paced=True))
    timed = _Timed()
    Runner(cfg, eng, src, timed, status_every=3600).run()
    lat, wrong, missed = [], 0, 0
    for k, a in enumerate(actors):
        evs = [(t, e) for t, e in timed.events if e["type"] == "decision"
               and a.enter <= e["frame"] < a.leave]
        if not evs:
            missed += 1
            continue
        t, e = evs[0]
        wrong += e["user_id"] != a.name
        lat.append((t - src.ts[enter[k]]) * 1000)
    return {"passes": passes, "camera_fps": FPS, "decided": len(lat), "missed": missed, "wrong": wrong,
            "latency_ms_median": round(statistics.median(lat), 1) if lat else None,
            "latency_ms_p95": round(_pct(lat, 95), 1) if lat else None,
            "latency_ms_max": round(max(lat), 1) if lat else None}


def _root(images) -> Path:
    from .bench import shared_public

    if images:
        return Path(images)
    shared = shared_public()
    if shared:
        return shared
    raise E.EdgeError(E.FILE_NOT_EXIST, "give --images: a folder with one sub-folder of photos per person")


def pipeline(cfg: Config, images=None, threads: int = 1, users: int = 0, config_path: str | None = None) -> dict:
    cv2.setNumThreads(threads)
    cfg.threads = threads
    service_cfg = copy.deepcopy(cfg)   # `edge run` on the config as given (its own groups)
    cfg.decision.groups = ["bench"]    # the scenes' people are enrolled in "bench"
    root = _root(images)
    with tempfile.TemporaryDirectory() as tmp:
        from edge.faces import FaceAnalyzer
        who = people(root, FaceAnalyzer(cfg), cfg)
        eng = _engine(cfg, Path(tmp), who)
        try:
            _say(f"{len(who)} enrolled people from {root}")
            one = fps(cfg, eng, who, 1)
            _say(f"1 face: {one['fps']} fps (baseline {one['baseline_every_frame_fps']})")
            three = fps(cfg, eng, who, 3)
            _say(f"3 faces: {three['fps']} fps (baseline {three['baseline_every_frame_fps']})")
            lat = latency(cfg, eng, who)
            _say(f"decision latency median {lat['latency_ms_median']} ms, p95 {lat['latency_ms_p95']} ms")
            models = {"detector": eng.analyzer.detector.card["id"], "landmarks": eng.analyzer.mesh.card["id"],
                      "embedder": eng.analyzer.embedder.card["id"], "precision": cfg.precision}
            svc = None
            if users:
                from .bench_board import service
                svc = service(service_cfg, config_path, root, who, users, threads, _find(eng),
                              lambda a, b: eng.compare(a, b)["score"], _say)
                big = svc[f"users_{users}"]
                _say(f"edge run with {users} users: first decision {big['first_decision_s']} s after start, "
                     f"peak rss {big['rss_mb_peak']} MB")
        finally:
            eng.close()
    return {"benchmark": "pipeline", "resolution": f"{SIZE[0]}x{SIZE[1]}", "threads": threads,
            "models": models,
            "baseline": "detect + embed + search every face on every frame, no tracking",
            "decision_threshold": cfg.decision.threshold, "enrolled": len(who),
            "one_face": one, "three_faces": three, "decision_latency": lat,
            "targets": {"fps_one_face": 20, "latency_ms_median": 300},
            "meets_targets": one["fps"] >= 20 and (lat["latency_ms_median"] or 1e9) < 300} | \
        ({"edge_run": svc} if svc else {})


def soak(cfg: Config, minutes: float = 10.0, images=None, sample_s: float = 10.0, warmup_s: float = 60.0,
         max_growth: float = 5.0) -> dict:
    """The looping scene through `edge run`'s loop; RSS growth from the end of warm-up to the end."""
    from edge.faces import FaceAnalyzer
    from edge.runner import Runner, rss_mb

    root = _root(images)
    cfg.threads = 1
    with tempfile.TemporaryDirectory() as tmp:
        who = people(root, FaceAnalyzer(cfg), cfg)
        eng = _engine(cfg, Path(tmp), who)
        cfg.outputs.jsonl.path = str(Path(tmp) / "events.jsonl")
        cfg.decision.cooldown = 0.0
        actors = [Actor(p["probe"], 10 + 60 * k, 60 + 60 * k, (150 + 100 * k, 200), (250 + 100 * k, 220),
                        name=p["name"]) for k, p in enumerate(who)]
        scene = Scene(actors, 20 + 60 * len(who), SIZE, _find(eng))
        samples = []
        t0 = time.monotonic()
        last = [0.0]

        def on_status(st):
            now = time.monotonic() - t0
            if now - last[0] >= sample_s:
                last[0] = now
                samples.append((round(now, 1), round(rss_mb(), 1)))
                _say(f"soak {now / 60:.1f}/{minutes:g} min: rss {samples[-1][1]} MB, fps {st['fps']}, "
                     f"decisions {st['decisions']}")

        runner = Runner(cfg, eng, S.Replay(scene, fps=FPS, paced=True, loop=True), status_every=1.0,
                        on_status=on_status)
        summary = runner.run(seconds=minutes * 60)
        eng.close()
    warm = [m for t, m in samples if t >= warmup_s] or [m for _, m in samples]
    base, end = warm[0], warm[-1]
    growth = 100.0 * (end - base) / base
    return {"benchmark": "soak", "minutes": minutes, "frames": summary["frames"], "decisions": summary["decisions"],
            "drops": summary["drops"], "rss_mb_after_warmup": base, "rss_mb_end": end,
            "rss_mb_max": max(m for _, m in samples), "growth_percent": round(growth, 2),
            "warmup_s": warmup_s, "limit_percent": max_growth, "ok": growth < max_growth, "samples": samples}
