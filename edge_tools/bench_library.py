"""`edge bench library`: the library's one-writer discipline, live updates and index, measured.

- enrolments per second into one EDGE_HOME by 1 and by 4 writer processes at once (library API,
  real templates, crops and thumbnails; the model's own time per enrolment is in `edge bench
  recognition`); baseline: the 1-writer rate, ratio 4 / 1;
- a running camera loop (`edge run`'s Runner on a paced replay of a person at the door): from
  another process's commit to the loop's index holding the change (enrolment and deletion), and
  from the enrolment's commit to the gate decision for that person; median and max over rounds;
- the index at 30,000 users (real templates plus random unit vectors as distractors, labelled, as
  `edge bench recognition` does): rebuild from SQLite with every template decrypted; baseline: the
  same rebuild from plain rows (the library before encryption), ratio; opening with the saved
  index; the check a search makes when nothing changed.

Progress on stderr; `--json` prints the same figures.
"""
from __future__ import annotations

import multiprocessing as mp
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from edge import outputs as O
from edge import sources as S
from edge.config import Config

from .bench import _images
from .bench_pipeline import FPS, SIZE, _find, _root, people
from .scenes import Actor, Scene


def _say(msg: str):
    sys.stderr.write(f"bench: {msg}\n")
    sys.stderr.flush()


def _med(xs, nd=1):
    return round(statistics.median(xs), nd) if xs else None


# ---- writers ------------------------------------------------------------------------------------------------
def _writer(db, model, dim, recs, first, n, barrier, out):
    from edge.library import FaceLibrary

    lib = FaceLibrary(db, model, dim)
    barrier.wait(120)
    t0 = time.time()
    for i in range(n):
        lib.user_add(f"w{first + i}", "bench", recs[i % len(recs)])
    out.put((t0, time.time()))
    lib.close()


def enrol_rate(recs, model, dim, writers: int, total: int) -> float:
    """Enrolments per second: ``total`` enrolments split over ``writers`` processes, wall clock from
    the moment all have the library open to the last commit."""
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as d:
        db = str(Path(d) / "db" / "face.db")
        from edge.library import FaceLibrary
        FaceLibrary(db, model, dim).close()            # the key exists: writers only open it
        barrier, out = ctx.Barrier(writers), ctx.Queue()
        per = total // writers
        procs = [ctx.Process(target=_writer, args=(db, model, dim, recs, k * per, per, barrier, out))
                 for k in range(writers)]
        for p in procs:
            p.start()
        spans = [out.get(timeout=600) for _ in procs]
        for p in procs:
            p.join(60)
    return per * writers / (max(e for _, e in spans) - min(s for s, _ in spans))


# ---- the running loop ---------------------------------------------------------------------------------------
def _librarian(db, model, dim, rec, cmds, out):
    """Another process that enrols or deletes the person at the door on command."""
    from edge.library import FaceLibrary

    lib = FaceLibrary(db, model, dim)
    out.put(("ready", 0.0, 0))
    for cmd in iter(cmds.get, None):
        if cmd == "add":
            lib.user_add("visitor", "bench", rec)
        else:
            lib.user_delete("visitor", "@ALL")
        out.put((cmd, time.time(), lib.index_generation))
    lib.close()


class EventTimes(O.Sink):
    """Every event with the wall time it left the pipeline (compared with other processes' clocks)."""
    name = "event-times"

    def __init__(self):
        self.events = []

    def accept(self, event):
        self.events.append((time.time(), event))

    def handle(self, event):
        pass


def _wait(cond, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.005)
    return False


def live(cfg: Config, rounds: int = 5, images=None) -> dict:
    """Each round: the person walks up and is unknown; another process enrols them (commit ->
    the loop's index, commit -> decision); then deletes them (commit -> the loop's index)."""
    from edge.engine import FaceEngine
    from edge.faces import FaceAnalyzer
    from edge.runner import Runner

    who = people(_root(images), FaceAnalyzer(cfg), cfg)[0]
    seen_add, seen_rm, decided = [], [], []
    with tempfile.TemporaryDirectory() as d:
        cfg.models_dir = cfg.models_path
        cfg.home = Path(d)
        cfg.outputs.jsonl.path = ""
        eng = FaceEngine(cfg)
        rec, _ = eng.face_record(str(who["enrol"]))
        lib = eng.library
        # one pass: in view for 3 s (the unknown, then the decision), out of view for 1 s
        scene = Scene([Actor(who["probe"], 0, 75, (300, 240), (330, 240), name=who["name"])], 100, SIZE, _find(eng))
        sink = EventTimes()
        runner = Runner(cfg, eng, S.Replay(scene, fps=FPS, paced=True, loop=True), dispatcher=O.Dispatcher([sink]),
                        on_status=lambda st: None)
        ctx = mp.get_context("spawn")
        cmds, out = ctx.Queue(), ctx.Queue()
        other = ctx.Process(target=_librarian, args=(str(cfg.db_path), eng.embedder.model, rec.template.size, rec,
                                                       cmds, out))
        other.start()
        out.get(timeout=120)
        t = threading.Thread(target=runner.run, daemon=True)
        t.start()
        try:
            for r in range(rounds):
                mark = time.time()
                if not _wait(lambda: any(e["type"] == "unknown" and ts > mark for ts, e in sink.events), 30):
                    raise RuntimeError("the person was never reported unknown")
                cmds.put("add")
                _, committed, gen = out.get(timeout=60)
                _wait(lambda: lib.index_generation >= gen, 10)
                seen_add.append((lib.synced_at - committed) * 1000)
                if _wait(lambda: any(e["type"] == "decision" and ts > committed for ts, e in sink.events), 10):
                    decided.append((min(ts for ts, e in sink.events if e["type"] == "decision" and ts > committed)
                                    - committed) * 1000)
                cmds.put("delete")
                _, committed, gen = out.get(timeout=60)
                _wait(lambda: lib.index_generation >= gen, 10)
                seen_rm.append((lib.synced_at - committed) * 1000)
                _say(f"live round {r + 1}/{rounds}: enrolment seen after {seen_add[-1]:.0f} ms, decision after "
                     f"{decided[-1] if decided else float('nan'):.0f} ms, deletion seen after {seen_rm[-1]:.0f} ms")
        finally:
            cmds.put(None)
            runner.stop()
            t.join(30)
            other.join(30)
            eng.close()
    return {"rounds": rounds, "person": who["name"],
            "enrolment_seen_ms": {"median": _med(seen_add), "max": round(max(seen_add), 1)},
            "deletion_seen_ms": {"median": _med(seen_rm), "max": round(max(seen_rm), 1)},
            "enrolment_to_decision_ms": {"median": _med(decided), "max": round(max(decided), 1) if decided else None,
                                         "decided_rounds": len(decided)}}


# ---- the index at scale -------------------------------------------------------------------------------------
def index_at(size: int, real: list[np.ndarray], model: str, repeat: int = 5) -> dict:
    from edge.library import FaceLibrary, FaceRecord

    dim = real[0].size
    rng = np.random.default_rng(0)
    n_rand = max(0, size - len(real))
    rand = rng.standard_normal((n_rand, dim)).astype(np.float32)
    vecs = np.concatenate([np.stack(real[:size]), rand]) if n_rand else np.stack(real[:size])
    with tempfile.TemporaryDirectory() as d:
        db = Path(d) / "db" / "face.db"
        lib = FaceLibrary(db, model, dim, max_users=size + 1)
        items = [(f"u{i}", "bench", FaceRecord(v, model), None) for i, v in enumerate(vecs)]
        for i in range(0, len(items), 5000):
            lib.add_many(items[i:i + 5000])
            _say(f"index: {min(i + 5000, size)}/{size} users enrolled")
        t_rebuild = []
        for _ in range(repeat):
            t = time.perf_counter()
            lib.rebuild_index(save=False)
            t_rebuild.append((time.perf_counter() - t) * 1000)
        assert lib.index.ntotal == size
        t = time.perf_counter()
        lib.save_index()
        t_save = (time.perf_counter() - t) * 1000
        t_sync = []
        for _ in range(2000):
            t = time.perf_counter()
            lib.sync()
            t_sync.append((time.perf_counter() - t) * 1e6)
        lib.close()
        t_open = []
        for _ in range(repeat):
            t = time.perf_counter()
            FaceLibrary(db, model, dim, max_users=size + 1).close()
            t_open.append((time.perf_counter() - t) * 1000)
        # baseline: the library before encryption, the same rows plain
        plain = sqlite3.connect(str(Path(d) / "plain.db"), isolation_level=None)
        plain.execute("CREATE TABLE faces (face_id INTEGER PRIMARY KEY, face_token TEXT, user_id TEXT, model TEXT, "
                      "template BLOB, created REAL)")
        plain.execute("BEGIN")
        plain.executemany("INSERT INTO faces VALUES (?, ?, ?, ?, ?, 0)",
                          ((i + 1, f"t{i}", f"u{i}", model, v.tobytes()) for i, v in enumerate(vecs)))
        plain.execute("COMMIT")
        t_plain = []
        from edge.library.index import FaceIndex
        for _ in range(repeat):
            t = time.perf_counter()
            rows = plain.execute("SELECT face_id, template FROM faces WHERE model=?", (model,)).fetchall()
            mat = np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), dim)
            idx = FaceIndex(dim)
            idx.add(np.array([r[0] for r in rows], np.int64), mat / np.linalg.norm(mat, axis=1, keepdims=True))
            t_plain.append((time.perf_counter() - t) * 1000)
        plain.close()
    return {"users": size, "real_templates": min(size, len(real)), "random_distractors": n_rand,
            "rebuild_ms_median": _med(t_rebuild), "baseline_plain_rebuild_ms_median": _med(t_plain),
            "rebuild_ratio_vs_plain": round(_med(t_rebuild, 3) / _med(t_plain, 3), 2),
            "open_with_saved_index_ms_median": _med(t_open), "save_index_ms": round(t_save, 1),
            "search_check_unchanged_us_median": _med(t_sync, 2)}


def library(cfg: Config, images=None, writers_total: int = 200, rounds: int = 5, size: int = 30000,
            repeat: int = 5) -> dict:
    from edge.engine import FaceEngine

    cfg.threads = 1
    with tempfile.TemporaryDirectory() as d:
        home, cfg.home, cfg.models_dir = cfg.home, Path(d), cfg.models_path
        eng = FaceEngine(cfg, open_library=False)
        recs, real = [], []
        files = _images(images, cfg)
        for n, f in enumerate(files):
            try:
                rec, _ = eng.face_record(str(f))
            except Exception:           # a photo without a face: skipped as bench recognition does
                continue
            recs.append(rec)
            real.append(np.asarray(rec.template, np.float32))
            _say(f"templates {n + 1}/{len(files)}")
        model, dim = eng.embedder.model, int(real[0].size)
        cfg.home = home
    out = {"benchmark": "library", "threads": 1, "model": model}
    rates = {}
    for w in (1, 4):
        runs = []
        for k in range(3):
            runs.append(enrol_rate(recs, model, dim, w, writers_total))
            _say(f"enrolment, {w} writer process(es), run {k + 1}/3: {runs[-1]:.0f} per s")
        rates[w] = _med(runs)
    out["enrolment"] = {"unit": "enrolments per second (library only: sealing, SQLite commit with fsync, index)",
                        "per_run": writers_total, "one_writer": rates[1], "four_writers": rates[4],
                        "ratio_four_vs_one": round(rates[4] / rates[1], 2)}
    out["live"] = live(cfg, rounds, images)
    out["index"] = index_at(size, real, model, repeat)
    _say(f"index at {size}: rebuild {out['index']['rebuild_ms_median']} ms (plain "
         f"{out['index']['baseline_plain_rebuild_ms_median']} ms)")
    return out
