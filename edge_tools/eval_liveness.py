"""`edge eval liveness DIR`: presentation-attack detection measured as ISO/IEC 30107-3 does.

``DIR/real/`` holds bona fide samples, ``DIR/spoof/`` attacks, at any depth. A sample is an image
file, or a folder of frames (``*.jpg|png``, in name order; a frame ``X`` may have its second
camera's view beside it as ``X.nir.png`` or ``X.depth.png``, 16-bit millimetres; ``actions.json``
lists the actions performed for an action challenge). ``DIR/manifest.json``, when present, says
what each sample is (`--make-set` writes one).

Each sample's frames go through the liveness stage one by one, as the camera loop's decision
attempts do; the sample's verdict is the stage's first decision (the largest face of each frame
is judged). A still image counts as one frame, or as ``--frames N`` synthetic camera frames of
it (shake, flicker, noise) to measure the multi-frame decision against single frames.

Reported per level (NONE / LOW / NORMAL / HIGH): APCER (attacks accepted / attacks), BPCER
(bona fide refused / bona fide), ACER (their mean), with the counts; samples with no detectable
face are counted apart (failure to acquire), not in the rates.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge import errors as E
from edge import image as I
from edge.config import LIVENESS_LEVELS, Config
from edge.progress import Progress

from .evaluate import IMAGE_EXT
from .liveness_data import still_frames


@dataclass
class Sample:
    path: Path
    label: str                          # "real" | "spoof"
    frames: list = field(default_factory=list)     # image paths
    paired: dict = field(default_factory=dict)     # frame path -> second-camera path
    actions: list | None = None


def samples(root: Path) -> list[Sample]:
    out = []
    for label in ("real", "spoof"):
        base = root / label
        if not base.is_dir():
            continue
        seqs = sorted(d for d in base.rglob("*") if d.is_dir() and _is_sequence(d))
        for d in seqs:
            frames = sorted(f for f in d.iterdir() if f.suffix.lower() in IMAGE_EXT and not _is_second_view(f))
            paired = {}
            for f in frames:
                for kind in ("nir", "depth"):
                    q = f.with_name(f"{f.stem}.{kind}.png")
                    if q.is_file():
                        paired[f] = q
            actions = json.loads((d / "actions.json").read_text()) if (d / "actions.json").is_file() else None
            out.append(Sample(d, label, frames, paired, actions))
        for p in sorted(base.rglob("*")):
            if p.is_file() and p.suffix.lower() in IMAGE_EXT and not _is_second_view(p) and \
                    not any(q in seqs for q in p.parents):
                out.append(Sample(p, label, [p]))
    return out


def _is_second_view(p: Path) -> bool:
    return p.name.lower().endswith((".nir.png", ".depth.png"))


def _is_sequence(d: Path) -> bool:
    """A folder of frames (not a folder of samples): it has frames with second views or an
    actions.json, or is named ``*.seq``."""
    return d.suffix == ".seq" or (d / "actions.json").is_file() or any(_is_second_view(f) for f in d.iterdir())


def _load_second(path: Path) -> np.ndarray:
    if path.name.endswith(".depth.png"):
        from edge.liveness.depth import load_depth
        return load_depth(path)
    return I.load(path)


def _faces(analyzer, imgs) -> list:
    out = []
    for img in imgs:
        try:
            out.append(analyzer.largest(img))
        except E.EdgeError:
            out.append(None)
    return out


def _judge(stage, frames, faces, mirrored=False) -> dict:
    """Run the frames through ``stage`` as the camera loop would (observe every frame, judge each
    as one attempt); the first decision is the verdict."""
    from edge.sources import Frame

    history: dict = {}
    per_frame, verdict = [], None
    for i, ((img, second), face) in enumerate(zip(frames, faces)):
        if face is None:
            continue
        fr = Frame(img, i / 25.0, i, "rgb", second)
        stage.observe(fr, face, history, mirrored)
        res = stage(fr, face, history)
        per_frame.append({k: v["frame_score"] for k, v in res.detail.items() if isinstance(v, dict)
                          and "frame_score" in v})
        if verdict is None and not res.pending:
            verdict = {"passed": res.passed, "score": round(res.score, 4), "frame": i}
    return {"faces": sum(f is not None for f in faces), "frames": len(frames), "verdict": verdict,
            "frame_scores": per_frame}


def _rates(rows: list[dict], key: str) -> dict:
    att = [r for r in rows if r["label"] == "spoof" and r[key] is not None]
    bon = [r for r in rows if r["label"] == "real" and r[key] is not None]
    acc = sum(1 for r in att if r[key])
    rej = sum(1 for r in bon if not r[key])
    apcer = acc / len(att) if att else None
    bpcer = rej / len(bon) if bon else None
    acer = (apcer + bpcer) / 2 if apcer is not None and bpcer is not None else None
    return {"attacks": len(att), "attacks_accepted": acc, "APCER": _pct(apcer),
            "bona_fide": len(bon), "bona_fide_refused": rej, "BPCER": _pct(bpcer), "ACER": _pct(acer),
            "accepted_attacks": [r["sample"] for r in att if r[key]],
            "refused_bona_fide": [r["sample"] for r in bon if not r[key]]}


def _pct(v):
    return None if v is None else round(100.0 * v, 2)


def run(cfg: Config, args) -> dict:
    from edge.faces import FaceAnalyzer
    from edge.liveness import LivenessStage

    if not args.folder:
        raise E.EdgeError(E.PARARM_ERROR, "give the folder: `edge eval liveness DIR` (DIR/real, DIR/spoof); "
                          "`--make-set` builds one from ../shared")
    root = Path(args.folder)
    if getattr(args, "make_set", False):
        from .bench import shared_public
        shared = shared_public()
        if shared is None:
            raise E.EdgeError(E.FILE_NOT_EXIST, "--make-set needs ../shared beside the checkout")
        an = FaceAnalyzer(cfg)
        try:
            from .liveness_data import build_set
            build_set(root, shared.parents[1], lambda img: an.largest(img).box, quiet=args.quiet)
        except FileExistsError:
            raise E.EdgeError(E.RECORD_ALREADY_EXIST, f"{root} is not empty: --make-set writes a new folder") from None
    if not (root / "real").is_dir() and not (root / "spoof").is_dir():
        raise E.EdgeError(E.FILE_NOT_EXIST, f"{root} has neither real/ nor spoof/: see `edge eval liveness --help`")
    mode = args.mode or (cfg.liveness.mode if cfg.liveness.mode != "none" else "rgb")
    cfg = copy.deepcopy(cfg)
    cfg.liveness.mode = mode
    cfg.validate()
    n_frames = max(1, int(getattr(args, "frames", 1) or 1))
    if getattr(args, "window", None):
        cfg.liveness.frames = args.window
    an = FaceAnalyzer(cfg)
    manifest = json.loads((root / "manifest.json").read_text()) if (root / "manifest.json").is_file() else {}
    items = samples(root)
    if not items:
        raise E.EdgeError(E.NO_DATA, f"no samples under {root}/real or {root}/spoof")
    stages = {}
    for level in LIVENESS_LEVELS:
        c = copy.deepcopy(cfg)
        c.liveness.level = level
        stages[level] = LivenessStage(c, an)
    rows = []
    prog = Progress(len(items), "liveness", quiet=args.quiet)
    for s in items:
        rel = str(s.path.relative_to(root))
        try:
            imgs = [I.load(f) for f in s.frames]          # turned upright by their EXIF orientation
            seconds = [_load_second(s.paired[f]) if f in s.paired else None for f in s.frames]
        except E.EdgeError as e:
            rows.append({"sample": rel, "label": s.label, "error": e.message, **{lv: None for lv in LIVENESS_LEVELS}})
            prog.step(rel)
            continue
        single = len(imgs) == 1
        if single and n_frames > 1:
            imgs = still_frames(imgs[0], n_frames, seed=len(rows))
            seconds = seconds * n_frames
        row = {"sample": rel, "label": s.label, "what": manifest.get(rel, "")}
        faces = _faces(an, imgs)
        for level, stage in stages.items():
            # a sample shorter than the multi-frame window is decided on the frames it has
            stage.frames = max(1, min(cfg.liveness.frames, sum(f is not None for f in faces)))
            if s.actions is not None and stage.action is not None:
                stage.action.rng = _Fixed(s.actions)
            j = _judge(stage, list(zip(imgs, seconds)), faces, cfg.camera.mirror)
            v = j["verdict"]
            row[level] = None if v is None else v["passed"]
            if level == "NONE":
                row.update(faces=j["faces"], frames=j["frames"], score=v["score"] if v else None,
                           single=j["frame_scores"])
        rows.append(row)
        prog.step(rel)
    prog.done()
    out = {"folder": str(root), "mode": mode, "frames_per_still": n_frames, "multi_frame": cfg.liveness.frames,
           "samples": len(rows), "no_face": [r["sample"] for r in rows if r.get("faces") == 0 or r.get("error")],
           "levels": {}}
    for level in LIVENESS_LEVELS:
        thr = {p: t for p, t in stages[level].thresholds.items()}
        out["levels"][level] = {"thresholds": thr, **_rates(rows, level)}
        # every judged frame on its own (each frame of a sequence counts once): what the
        # multi-frame decision is compared with
        flat = [{"sample": f"{r['sample']}#{i}", "label": r["label"],
                 level: all(fs[p] >= t for p, t in thr.items() if p in fs)}
                for r in rows for i, fs in enumerate(r.get("single") or [])]
        out["levels"][level]["single_frame"] = {k: v for k, v in _rates(flat, level).items()
                                                if not isinstance(v, list)}
    if getattr(args, "per_sample", False):
        out["per_sample"] = [{k: v for k, v in r.items() if k != "single"} for r in rows]
    if getattr(args, "plot", None):
        out["plot"] = plot(rows, {lv: stages[lv].thresholds for lv in LIVENESS_LEVELS}, Path(args.plot))
    # what the set built by --make-set holds, said only where the set holds it
    has = lambda prefix: any(r["sample"].startswith(prefix) for r in rows)
    notes = (["real/public and real/lfw are news and press photos, not captures of a door camera"]
             if has("real/public") or has("real/lfw") else []) + \
            (["spoof/screen samples are synthetic screen replays (see manifest.json), not real screens or prints"]
             if has("spoof/screen") else [])
    if notes:
        out["note"] = "; ".join(notes)
    return out


def plot(rows: list[dict], thresholds: dict, path: Path) -> str:
    """A PNG: each sample's score (the weakest check's mean at its decision) as a histogram,
    bona fide above the axis in green, attacks below in red, the levels' thresholds as lines."""
    import cv2

    W, H, pad = 820, 420, 40
    img = np.full((H, W, 3), 255, np.uint8)
    bins = 50
    mid = H // 2
    for label, colour, sign in (("real", (60, 160, 60), -1), ("spoof", (50, 50, 210), 1)):
        sc = [r["score"] for r in rows if r["label"] == label and r.get("score") is not None]
        counts = np.histogram(sc, bins=bins, range=(0, 1))[0] if sc else np.zeros(bins, int)
        scale = (mid - pad) / max(1, counts.max())
        for i, c in enumerate(counts):
            x0 = pad + int(i * (W - 2 * pad) / bins)
            x1 = pad + int((i + 1) * (W - 2 * pad) / bins) - 1
            cv2.rectangle(img, (x0, mid), (x1, mid + sign * int(c * scale)), colour, -1)
        cv2.putText(img, f"{'bona fide' if label == 'real' else 'attacks'} ({len(sc)})",
                    (pad, mid + sign * (mid - 15)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    cv2.line(img, (pad, mid), (W - pad, mid), (0, 0, 0), 1)
    for level, thr in thresholds.items():
        if level == "NONE" or not thr:
            continue
        x = pad + int(min(thr.values()) * (W - 2 * pad))
        cv2.line(img, (x, pad // 2), (x, H - pad // 2), (120, 120, 120), 1)
        cv2.putText(img, level, (x + 3, pad // 2 + 10), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (90, 90, 90), 1, cv2.LINE_AA)
    for v in (0.0, 0.5, 1.0):
        cv2.putText(img, f"{v:g}", (pad + int(v * (W - 2 * pad)) - 8, H - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise E.EdgeError(E.SYSTEM_ERROR, f"cannot write the plot to {path}: use a .png path in a writable folder")
    return str(path)


class _Fixed:
    """An action challenge in the order a recorded sequence performed it."""

    def __init__(self, actions):
        self.actions = list(actions)

    def sample(self, population, k):
        return list(self.actions)
