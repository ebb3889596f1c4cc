"""Liveness test material built from real photos. Every construction here is synthetic and says
so in its name and description: nothing here was printed, shown on a real screen or captured by
a real NIR or depth camera.

- ``screen_replay``: a photo shown on a simulated LCD (RGB-stripe sub-pixels, display gamma and
  a bluish white point, a dark bezel), held in front of another real photo's face (a person
  holding up a phone or tablet), perspective-tilted, then "re-photographed": resampled to
  640x480 (the sub-pixel grid aliases into moiré), lens blur, sensor noise, JPEG.
- ``still_frames``: camera frames of a still scene: +-1 px shake, +-3 % brightness, sensor noise.
- ``walk_sequences``: frames of a person walking (a head cut-out) or of an attack photo held up
  (the whole picture) over the test scenes' backdrop.
- ``nir_live`` / ``nir_screen`` / ``shift``: synthetic NIR of a live face (the red channel), of a
  screen replay (dark and flat), and the second camera's offset view.
- ``depth_of_face`` / ``depth_of_sheet`` / ``holes``: depth rendered from FaceMesh points, of a
  photo held flat, bent or curved, and structured-light dropouts.
- ``close_eyes`` / ``open_mouth``: landmark-moving edits of a real photo for action liveness.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge import image as I


def still_frames(img: np.ndarray, n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` synthetic camera frames of a still picture: a sub-pixel shake of up to 1 px, a
    brightness flicker of up to 3 %, Gaussian sensor noise of sigma 2."""
    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    out = []
    for _ in range(n):
        dx, dy = rng.uniform(-1, 1, 2)
        M = np.float32([[1, 0, dx], [0, 1, dy]])
        f = cv2.warpAffine(img, M, (w, h), borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        f = f * rng.uniform(0.97, 1.03) + rng.normal(0, 2.0, f.shape)
        out.append(np.clip(f, 0, 255).astype(np.uint8))
    return out


def _lcd(content: np.ndarray, width: int) -> np.ndarray:
    """``content`` as an LCD of ``width`` pixels would show it, at 3 output pixels per screen
    pixel: display gamma and white point, then each pixel split into R, G, B stripes."""
    h = int(round(content.shape[0] * width / content.shape[1]))
    px = cv2.resize(content, (width, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    px = px ** 1.25                                   # a panel's gamma differs from the photo's
    px = px * np.array([1.08, 0.98, 0.88], np.float32)  # BGR: a cool, bluish white point
    px = 0.06 + 0.9 * np.clip(px, 0, 1)                # black level: an LCD is never black
    big = np.repeat(np.repeat(px, 3, axis=0), 3, axis=1)
    stripe = np.zeros((1, 3 * width, 3), np.float32)
    for c, ch in enumerate((2, 1, 0)):                 # R, G, B stripes left to right (BGR arrays)
        stripe[0, c::3, ch] = 1.0
    big = big * (0.35 + 0.65 * stripe)                 # the dark matrix between sub-pixels
    big[2::3] *= 0.7                                   # and between pixel rows
    return np.clip(big * 255, 0, 255).astype(np.uint8)


def screen_replay(content: np.ndarray, content_face, host: np.ndarray, host_face, seed: int = 0,
                  size=(640, 480)) -> np.ndarray:
    """A synthetic screen replay (see the module docstring): ``content`` (a real photo, face box
    ``content_face``) on a simulated LCD held over the face of the person in ``host`` (another
    real photo, face box ``host_face``), re-photographed at ``size``."""
    rng = np.random.default_rng(seed)
    # crop the content around its face as a phone showing a portrait would (3:4, face ~40 %)
    x, y, w, h = content_face
    cw = max(w, h) * 1.8
    ch = cw * 4 / 3
    cx, cy = x + w / 2, y + h / 2
    M = np.float32([[1, 0, cw / 2 - cx], [0, 1, ch * 0.42 - cy]])
    shown = cv2.warpAffine(content, M, (int(cw), int(ch)), borderMode=cv2.BORDER_REPLICATE)
    screen = _lcd(shown, 200)
    bez = max(6, screen.shape[1] // 14)
    panel = cv2.copyMakeBorder(screen, bez, bez * 2, bez, bez, cv2.BORDER_CONSTANT, value=(18, 18, 20))
    # the host photo, scaled to the output frame with its face near the centre
    hx, hy, hw, hh = host_face
    k = size[1] * 0.55 / max(hw, hh)
    Mh = np.float32([[k, 0, size[0] / 2 - (hx + hw / 2) * k], [0, k, size[1] * 0.45 - (hy + hh / 2) * k]])
    frame = cv2.warpAffine(host, Mh, size, borderMode=cv2.BORDER_REFLECT)
    # the panel covers the host's face; a slight tilt (perspective) as a hand holds it
    ph, pw = panel.shape[:2]
    target_h = size[1] * rng.uniform(0.78, 0.9)
    s = target_h / ph
    cx, cy = size[0] / 2 + rng.uniform(-30, 30), size[1] * 0.5
    tw, th = pw * s, ph * s
    j = lambda: rng.uniform(-0.04, 0.04) * tw
    dst = np.float32([[cx - tw / 2 + j(), cy - th / 2 + j()], [cx + tw / 2 + j(), cy - th / 2 + j()],
                      [cx + tw / 2 + j(), cy + th / 2 + j()], [cx - tw / 2 + j(), cy + th / 2 + j()]])
    src = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]])
    P = cv2.getPerspectiveTransform(src, dst)
    # resampling the 3x sub-pixel grid at a non-integer ratio is what makes the moiré
    warped = cv2.warpPerspective(panel, P, size, flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones((ph, pw), np.float32), P, size, flags=cv2.INTER_LINEAR)[..., None]
    out = frame.astype(np.float32) * (1 - mask) + warped.astype(np.float32) * mask
    out = cv2.GaussianBlur(out, (0, 0), 0.7)                          # lens
    out += rng.normal(0, 2.5, out.shape)                               # sensor
    out = np.clip(out, 0, 255).astype(np.uint8)
    return cv2.imdecode(cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, 88])[1], cv2.IMREAD_COLOR)


SCREEN_DESCRIPTION = ("synthetic screen replay: {content} shown on a simulated LCD (RGB-stripe sub-pixels, "
                      "display gamma, bluish white point, bezel) held over the face in {host}, tilted, "
                      "resampled to 640x480 (moiré), blurred, noised, JPEG 88; not a real screen or print")


def build_set(out: Path, shared: Path, find_face, lfw_count: int = 200, quiet: bool = False) -> dict:
    """Write the evaluation set of the README's "Liveness" section into ``out`` (which must not
    exist or be empty): ``real/`` and ``spoof/`` plus ``manifest.json`` describing each sample.
    ``find_face(img) -> box`` is the analyzer's largest face."""
    import json
    import shutil

    from edge.progress import Progress

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty")
    public = sorted(p for p in (shared / "faces" / "public").rglob("*") if p.suffix.lower() in
                    (".jpg", ".jpeg", ".png"))
    lfw = sorted((shared / "faces" / "lfw-dev").rglob("*.jpg"))
    lfw = lfw[:: max(1, len(lfw) // lfw_count)][:lfw_count]
    manifest = {}
    (out / "real" / "public").mkdir(parents=True)
    (out / "real" / "lfw").mkdir(parents=True)
    (out / "spoof" / "screen").mkdir(parents=True)
    prog = Progress(len(public) * 2 + len(lfw) + 3, "liveness set", quiet=quiet)
    for p in public:
        dst = out / "real" / "public" / f"{p.parent.name}__{p.name}"
        shutil.copyfile(p, dst)
        manifest[str(dst.relative_to(out))] = f"real: news/press photo {p.parent.name}/{p.name} (not a camera capture at a door)"
        prog.step(p.name)
    for p in lfw:
        dst = out / "real" / "lfw" / p.name
        shutil.copyfile(p, dst)
        manifest[str(dst.relative_to(out))] = f"real: LFW news photo {p.name} (not a camera capture at a door)"
        prog.step(p.name)
    for name, label in (("image_T1.jpg", "real"), ("image_F1.jpg", "spoof"), ("image_F2.jpg", "spoof")):
        dst = out / label / name
        shutil.copyfile(shared / "spoof" / name, dst)
        manifest[str(dst.relative_to(out))] = (f"{label}: Silent-Face-Anti-Spoofing sample {name} as published "
                                                "(EXIF orientation 6)" + ("; a photo of a face" if label == "spoof" else
                                                                          "; a live face"))
        prog.step(name)
    faces = {}
    for p in public:
        try:
            img = I.load(p)
            faces[p] = (img, find_face(img))
        except Exception:     # noqa: BLE001 - a photo without a detectable face is simply not used
            continue
    keys = list(faces)
    for i, p in enumerate(keys):
        host = keys[(i + 7) % len(keys)]
        img, box = faces[p]
        himg, hbox = faces[host]
        frame = screen_replay(img, box, himg, hbox, seed=i)
        name = f"screen__{p.parent.name}__{p.stem}.jpg"
        cv2.imwrite(str(out / "spoof" / "screen" / name), frame)
        manifest[f"spoof/screen/{name}"] = SCREEN_DESCRIPTION.format(content=f"{p.parent.name}/{p.name}",
                                                                     host=f"{host.parent.name}/{host.name}")
        prog.step(name)
    # moving sequences: what the camera loop sees, frame after frame, for the multi-frame decision
    seqs = walk_sequences(out, shared, find_face, [p for p in keys], sorted((out / "spoof" / "screen").iterdir()))
    manifest.update(seqs)
    prog.done()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return manifest


# ---- synthetic NIR and depth frames ---------------------------------------------------------
def nir_live(img: np.ndarray) -> np.ndarray:
    """Synthetic NIR of a live scene: the photo's red channel (skin reflects 850 nm much as it
    reflects red light), a little softer (NIR sensors are less sharp), as a grey 3-channel frame."""
    red = cv2.GaussianBlur(img[:, :, 2], (0, 0), 0.8)
    return cv2.cvtColor(red, cv2.COLOR_GRAY2BGR)


def nir_screen(nir: np.ndarray, box, margin: float = 0.9, seed: int = 0) -> np.ndarray:
    """Synthetic NIR of a phone/monitor replay: the screen (the face box grown by ``margin`` on
    each side) is dark and flat at 850 nm (level 12, sensor noise sigma 2)."""
    rng = np.random.default_rng(seed)
    out = nir.copy()
    x, y, w, h = box
    x0, y0 = int(max(0, x - margin * w)), int(max(0, y - margin * h))
    x1, y1 = int(min(out.shape[1], x + w * (1 + margin))), int(min(out.shape[0], y + h * (1 + margin)))
    panel = np.clip(12 + rng.normal(0, 2, (y1 - y0, x1 - x0)), 0, 255).astype(np.uint8)
    out[y0:y1, x0:x1] = panel[..., None]
    return out


def shift(img: np.ndarray, dx: float, dy: float, scale: float = 1.0) -> np.ndarray:
    """The second camera's view: ``img`` scaled about the origin and shifted (the calibration a
    dual-camera module needs)."""
    M = np.float32([[scale, 0, dx], [0, scale, dy]])
    return cv2.warpAffine(img, M, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REPLICATE)


FACE_WIDTH_MM = 140.0      # cheek to cheek (FaceMesh 234-454), an adult's typical


def _triangles(xy: np.ndarray) -> np.ndarray:
    x0, y0 = xy.min(0) - 2
    x1, y1 = xy.max(0) + 2
    sd = cv2.Subdiv2D((int(x0), int(y0), int(x1 - x0) + 2, int(y1 - y0) + 2))
    for p in xy:
        sd.insert((float(p[0]), float(p[1])))
    tris = sd.getTriangleList().reshape(-1, 3, 2)
    # map the corners back to point indices (Subdiv2D returns coordinates)
    d = np.linalg.norm(tris[:, :, None, :] - xy[None, None, :, :], axis=3)
    idx = d.argmin(2)
    ok = d.min(2).max(1) < 1e-3
    return idx[ok]


def depth_of_face(points: np.ndarray, size, distance_mm: float = 600.0, z_from: np.ndarray | None = None,
                  noise_mm: float = 1.5, seed: int = 0) -> np.ndarray:
    """Synthetic depth of a live face (uint16 mm, ``size`` = (w, h)): FaceMesh's points of a real
    photo (x, y pixels; z, its relative depth in the same units) rendered as a surface
    ``distance_mm`` from the camera, flat-shaded per mesh triangle, scaled so the face is
    ``FACE_WIDTH_MM`` wide; ``z_from``, another face's points, lends its relief instead (another
    real face's geometry); the head around the face 40 mm further, the wall 800 mm behind; sensor
    noise of ``noise_mm``."""
    rng = np.random.default_rng(seed)
    w, h = size
    xy = points[:, :2]
    mm_per_px = FACE_WIDTH_MM / (np.linalg.norm(xy[454] - xy[234]) + 1e-9)
    z = points[:, 2] if z_from is None else z_from[:, 2] * (
        np.linalg.norm(xy[454] - xy[234]) / (np.linalg.norm(z_from[454, :2] - z_from[234, :2]) + 1e-9))
    depth = np.full((h, w), distance_mm + 800.0, np.float32)
    hull = cv2.convexHull(xy.astype(np.float32)).astype(np.int32)
    head = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(head, hull, 1)
    head = cv2.dilate(head, np.ones((15, 15), np.uint8))
    depth[head > 0] = distance_mm + (z.max() - z.min()) * mm_per_px * 0.5 + 40.0
    zmm = distance_mm + (z - z.min()) * mm_per_px
    for t in _triangles(xy):
        cv2.fillConvexPoly(depth, np.round(xy[t]).astype(np.int32), float(zmm[t].mean()))
    depth += rng.normal(0, noise_mm, depth.shape).astype(np.float32)
    return np.clip(depth, 0, 65535).astype(np.uint16)


def depth_of_sheet(box, size, distance_mm: float = 600.0, bend: str = "flat", tilt=(0.3, 0.1),
                   radius_mm: float = 100.0, noise_mm: float = 1.5, seed: int = 0) -> np.ndarray:
    """Synthetic depth of a photo held up to the camera (uint16 mm): a sheet covering the face box
    grown 1.5x on each side, ``flat`` (a plane tilted by ``tilt`` mm per mm), ``bent`` round a
    vertical axis (a cylinder of ``radius_mm``, convex to the camera) or ``bowl`` (curved both
    ways), the wall 800 mm behind."""
    rng = np.random.default_rng(seed)
    w, h = size
    x, y, bw, bh = box
    mm_per_px = FACE_WIDTH_MM / (bw * 0.9)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    X = (xx - (x + bw / 2)) * mm_per_px
    Y = (yy - (y + bh / 2)) * mm_per_px
    if bend == "flat":
        sheet = distance_mm + tilt[0] * X + tilt[1] * Y
    elif bend == "bent":
        sheet = distance_mm + radius_mm - np.sqrt(np.clip(radius_mm ** 2 - X ** 2, 0, None))
    else:
        sheet = distance_mm + (X ** 2 + Y ** 2) / (2 * radius_mm)
    inside = (np.abs(xx - (x + bw / 2)) < bw * 2) & (np.abs(yy - (y + bh / 2)) < bh * 2)
    depth = np.where(inside, sheet, distance_mm + 800.0)
    depth += rng.normal(0, noise_mm, depth.shape)
    return np.clip(depth, 0, 65535).astype(np.uint16)


def holes(depth: np.ndarray, share: float, seed: int = 0) -> np.ndarray:
    """Structured-light dropouts: ``share`` of the pixels set to 0 (no measurement)."""
    rng = np.random.default_rng(seed)
    out = depth.copy()
    out[rng.random(out.shape) < share] = 0
    return out


WALK_FRAMES = 12


def walk_sequences(out: Path, shared: Path, find_face, people: list[Path], screens: list[Path]) -> dict:
    """Folders of 640x480 frames (``*.seq``): each real photo as a person walking slowly across
    the view (the test scenes' head cut-out on their backdrop), and each attack — the two
    published attack photos and the synthetic screen replays — as the whole picture raised into
    view and drifting, as a hand holds it. Returns their manifest entries."""
    from .scenes import Actor, Scene

    entries = {}
    attacks = [shared / "spoof" / "image_F1.jpg", shared / "spoof" / "image_F2.jpg"] + list(screens)
    for label, items, shape in (("real", people, "head"), ("spoof", attacks, "whole")):
        for i, p in enumerate(items):
            seq = out / label / "walk" / f"{p.parent.name}__{p.stem}.seq"
            seq.mkdir(parents=True)
            x0 = 220 + 40 * (i % 5)
            actor = Actor(p, 0, WALK_FRAMES, (x0, 235), (x0 + 60, 245), face_px=130 if shape == "head" else 150,
                          shape=shape)
            try:
                scene = Scene([actor], WALK_FRAMES, find_face=find_face)
            except Exception:  # noqa: BLE001 - no detectable face in the source: no sequence
                import shutil
                shutil.rmtree(seq)
                continue
            for k, frame in enumerate(scene):
                cv2.imwrite(str(seq / f"{k:03d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 92])
            what = (f"real: {p.parent.name}/{p.name} as a person walking across a synthetic backdrop "
                    f"({WALK_FRAMES} frames)") if label == "real" else \
                (f"attack: {p.parent.name}/{p.name} (the whole picture) raised into view over a synthetic backdrop "
                 f"and drifting ({WALK_FRAMES} frames)")
            entries[str(seq.relative_to(out))] = what
    return entries


# ---- landmark-moving edits for action liveness -----------------------------------------------
# FaceMesh contours: image-left eye (upper lid, lower lid), image-right eye; inner lips
EYE_LIDS = (([33, 246, 161, 160, 159, 158, 157, 173, 133], [33, 7, 163, 144, 145, 153, 154, 155, 133]),
            ([263, 466, 388, 387, 386, 385, 384, 398, 362], [263, 249, 390, 373, 374, 380, 381, 382, 362]))
LIPS_UPPER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LIPS_LOWER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]


def close_eyes(img: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Edit: both eyes closed. Per column of each eye, the skin above the upper lid is stretched
    down over the eye to just below the lower lid (FaceMesh's lid contours), and a lash line is
    drawn where the lids meet."""
    out = img
    H, W = img.shape[:2]
    for upper, lower in EYE_LIDS:
        u, lo = points[upper, :2], points[lower, :2]
        x0 = int(np.floor(min(u[:, 0].min(), lo[:, 0].min()))) - 1
        x1 = int(np.ceil(max(u[:, 0].max(), lo[:, 0].max()))) + 1
        xs = np.arange(max(0, x0), min(W - 1, x1) + 1)
        us = np.interp(xs, *zip(*sorted(zip(u[:, 0], u[:, 1]))))
        ls = np.interp(xs, *zip(*sorted(zip(lo[:, 0], lo[:, 1]))))
        h = max(float((ls - us).max()), 2.0)
        mapx = np.tile(np.arange(W, dtype=np.float32), (H, 1))
        mapy = np.tile(np.arange(H, dtype=np.float32)[:, None], (1, W))
        for i, x in enumerate(xs):
            top, target = us[i] - 2.0 * h, ls[i] + 0.15 * h
            ys = np.arange(max(0, int(top)), min(H - 1, int(np.ceil(target))) + 1)
            mapy[ys, x] = top + (ys - top) * (us[i] - 0.3 * h - top) / max(target - top, 1e-6)
        out = cv2.remap(out, mapx, mapy, cv2.INTER_LINEAR)
        line = np.stack([xs, ls], 1).round().astype(np.int32)
        cv2.polylines(out, [line], False, (40, 35, 35), max(1, int(round(h * 0.15))), cv2.LINE_AA)
    return out


def _warp_mesh(img: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Piecewise-affine warp of the face: each FaceMesh triangle moved from ``src`` to ``dst``."""
    out = img.copy()
    H, W = img.shape[:2]
    for t in _triangles(src):
        s, d = src[t].astype(np.float32), dst[t].astype(np.float32)
        x, y, w, h = cv2.boundingRect(d)
        if w <= 0 or h <= 0:
            continue
        M = cv2.getAffineTransform(s, d - np.float32([x, y]))
        patch = cv2.warpAffine(img, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        mask = np.zeros((h, w), np.uint8)
        cv2.fillConvexPoly(mask, np.round(d - np.float32([x, y])).astype(np.int32), 1)
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
        if x1 <= x0 or y1 <= y0:
            continue
        m = mask[y0 - y:y1 - y, x0 - x:x1 - x].astype(bool)
        out[y0:y1, x0:x1][m] = patch[y0 - y:y1 - y, x0 - x:x1 - x][m]
    return out


def open_mouth(img: np.ndarray, points: np.ndarray, amount: float = 0.45) -> np.ndarray:
    """Edit: the jaw drops by ``amount`` mouth widths. FaceMesh points below the lips move down
    (less towards the ears), the face is warped triangle by triangle to them, and the gap
    between the inner lip contours is filled with the dark of an open mouth."""
    p = points[:, :2]
    width = float(np.linalg.norm(p[291] - p[61]))
    d = amount * width
    mouth_y = (p[13, 1] + p[14, 1]) / 2
    cx, half = (p[61, 0] + p[291, 0]) / 2, abs(p[454, 0] - p[234, 0]) / 2
    weight = np.clip(1.2 - np.abs(p[:, 0] - cx) / half, 0, 1)
    new = p.copy()
    below = p[:, 1] > mouth_y
    new[below, 1] += d * weight[below]
    new[LIPS_LOWER, 1] = p[LIPS_LOWER, 1] + d * weight[LIPS_LOWER]
    new[[78, 308], 1] = p[[78, 308], 1] + d * 0.5
    out = _warp_mesh(img, p, new)
    poly = np.vstack([new[LIPS_UPPER], new[LIPS_LOWER[::-1]]]).round().astype(np.int32)
    cavity = out.copy()
    cv2.fillPoly(cavity, [poly], (30, 25, 45))
    m = np.zeros(img.shape[:2], np.float32)
    cv2.fillPoly(m, [poly], 1.0)
    m = cv2.GaussianBlur(m, (0, 0), max(1.0, width * 0.02))[..., None]
    return (out * (1 - m) + cavity * m).astype(np.uint8)
