"""Face detector adapters (the registry's ``detector`` role): MediaPipe BlazeFace (built pack)
and YuNet (user-supplied).

A detector takes a BGR uint8 image and returns ``Detection``s in image pixels; ``select`` orders
them largest first (the SDK's order) and keeps at most ``max_detect_num``.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .models import cards
from .models.registry import Geometry, Runtime, register

RAW_SCORE_LIMIT = 80.0  # MediaPipe clips logits before the sigmoid


@dataclass
class Detection:
    box: np.ndarray            # x, y, w, h in image pixels (float)
    score: float               # 0-1
    keypoints: np.ndarray      # (K, 2): [0] = eye on the image's left, [1] = eye on the right, ...

    @property
    def area(self) -> float:
        return float(self.box[2] * self.box[3])


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)))


def _ssd_anchors(size: int, strides: list[int], per_cell_for_stride) -> np.ndarray:
    """MediaPipe SSD anchors with fixed size: only centres matter (normalised 0-1)."""
    out = []
    i = 0
    while i < len(strides):
        s = strides[i]
        j = i
        n = 0
        while j < len(strides) and strides[j] == s:
            n += per_cell_for_stride
            j += 1
        g = int(np.ceil(size / s))
        ys, xs = np.mgrid[0:g, 0:g]
        centres = np.stack([(xs + 0.5) / g, (ys + 0.5) / g], -1).reshape(-1, 1, 2)
        out.append(np.repeat(centres, n, axis=1).reshape(-1, 2))
        i = j
    return np.concatenate(out).astype(np.float32)


def iou_xyxy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one box a (x1,y1,x2,y2) with boxes b (N,4)."""
    x1 = np.maximum(a[0], b[:, 0]); y1 = np.maximum(a[1], b[:, 1])
    x2 = np.minimum(a[2], b[:, 2]); y2 = np.minimum(a[3], b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return inter / np.maximum(ua, 1e-9)


def weighted_nms(boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray, iou: float):
    """MediaPipe's weighted NMS: overlapping candidates are averaged, weighted by score."""
    order = np.argsort(-scores)
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    alive = np.ones(len(scores), bool)
    out = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        overlap = iou_xyxy(boxes[i], boxes) > iou
        overlap[i] = True          # a zero-size box has IoU 0 with itself: it still stands for itself
        overlap &= alive
        w = scores[overlap][:, None]
        box = (boxes[overlap] * w).sum(0) / w.sum()
        kp = (kps[overlap] * w[:, :, None]).sum(0) / w.sum()
        out.append((box, kp, float(scores[i])))
        alive &= ~overlap
    return out


@register("detector", "blazeface")
class BlazeFace:
    def __init__(self, card: dict, runtime: Runtime = Runtime()):
        self.card = card
        self.sess = cards.session(card, runtime)
        self.size = int(card["input"]["shape"][2])
        self.geometry = Geometry.from_card(card, "whole frame, letterboxed to a square")
        a = card["anchors"]
        if not all(isinstance(v, int) and v > 0 for v in [*a["strides"], a["per_cell"]]):
            raise ValueError(f"anchors {a!r}: strides and per_cell must be positive whole numbers")
        self.anchors = _ssd_anchors(self.size, a["strides"], a["per_cell"])
        n = self.sess.get_outputs()[0].shape[1]
        if isinstance(n, int) and n != len(self.anchors):
            raise ValueError(f"anchors {a!r} give {len(self.anchors)} anchors; the model has {n}")
        self.input_name = self.sess.get_inputs()[0].name

    def __call__(self, img: np.ndarray, score_thr: float, nms_iou: float) -> list[Detection]:
        h, w = img.shape[:2]
        # letterbox: keep the aspect ratio, pad the short side with black
        scale = self.size / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        small = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        ox, oy = (self.size - nw) // 2, (self.size - nh) // 2
        x = np.zeros((self.size, self.size, 3), np.uint8)
        x[oy:oy + nh, ox:ox + nw] = small
        sx, sy = w / nw, h / nh
        t = (x[:, :, ::-1].astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        raw_boxes, raw_scores = self.sess.run(None, {self.input_name: t})
        scores = _sigmoid(raw_scores.reshape(-1))
        keep = scores >= score_thr
        if not keep.any():
            return []
        r = raw_boxes.reshape(-1, 8, 2)[keep] / self.size
        anc = self.anchors[keep]
        centre = r[:, 0] + anc
        half = r[:, 1] / 2
        boxes = np.concatenate([centre - half, centre + half], 1)
        kps = r[:, 2:] + anc[:, None, :]
        dets = []
        for box, kp, s in weighted_nms(boxes, kps, scores[keep], nms_iou):
            # normalised letterboxed coordinates -> image pixels
            box = (box * self.size - [ox, oy, ox, oy]) * [sx, sy, sx, sy]
            kp = (kp * self.size - [ox, oy]) * [sx, sy]
            dets.append(Detection(np.array([box[0], box[1], box[2] - box[0], box[3] - box[1]]), s, kp))
        return dets


@register("detector", "yunet")
class YuNet:
    """OpenCV Zoo YuNet run through onnxruntime; input BGR 0-255 NCHW, sides a multiple of 32."""

    STRIDES = (8, 16, 32)

    def __init__(self, card: dict, runtime: Runtime = Runtime()):
        self.card = card
        self.sess = cards.session(card, runtime)
        self.geometry = Geometry.from_card(card, "whole frame, longest side <= max_side, padded to x32")
        self.input_name = self.sess.get_inputs()[0].name
        self.out_names = [o.name for o in self.sess.get_outputs()]
        self.max_side = int(card.get("input", {}).get("max_side", 640))

    def __call__(self, img: np.ndarray, score_thr: float, nms_iou: float) -> list[Detection]:
        h, w = img.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        nh, nw = int(np.ceil(h * scale / 32) * 32), int(np.ceil(w * scale / 32) * 32)
        x = np.zeros((nh, nw, 3), np.uint8)
        small = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA) \
            if scale < 1 else img
        x[:small.shape[0], :small.shape[1]] = small
        outs = dict(zip(self.out_names, self.sess.run(None, {self.input_name: x.transpose(2, 0, 1)[None].astype(np.float32)})))
        boxes, kps, scores = [], [], []
        for s in self.STRIDES:
            gh, gw = nh // s, nw // s
            cls = outs[f"cls_{s}"].reshape(-1)
            obj = outs[f"obj_{s}"].reshape(-1)
            score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
            keep = score >= score_thr
            if not keep.any():
                continue
            ys, xs = np.divmod(np.arange(gh * gw), gw)
            bb = outs[f"bbox_{s}"].reshape(-1, 4)[keep]
            kp = outs[f"kps_{s}"].reshape(-1, 5, 2)[keep]
            cx, cy = (xs[keep] + bb[:, 0]) * s, (ys[keep] + bb[:, 1]) * s
            bw, bh = np.exp(bb[:, 2]) * s, np.exp(bb[:, 3]) * s
            boxes.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1))
            kps.append((kp + np.stack([xs[keep], ys[keep]], 1)[:, None, :]) * s)
            scores.append(score[keep])
        if not boxes:
            return []
        dets = []
        for box, kp, sc in weighted_nms(np.concatenate(boxes), np.concatenate(kps), np.concatenate(scores), nms_iou):
            box, kp = box / scale, kp / scale
            dets.append(Detection(np.array([box[0], box[1], box[2] - box[0], box[3] - box[1]]), sc, kp))
        return dets


def select(dets: list[Detection], min_face_size: int, max_num: int) -> list[Detection]:
    """Largest first, as the SDK sorts; drop faces under min_face_size (px, shorter side)."""
    dets = [d for d in dets if min(d.box[2], d.box[3]) >= min_face_size]
    dets.sort(key=lambda d: -d.area)
    return dets[:max_num]


def suppress(dets: list[Detection], iou: float) -> list[Detection]:
    """One detection per face when several passes found it: the most confident one is kept."""
    xyxy = lambda b: np.array([b[0], b[1], b[0] + b[2], b[1] + b[3]])
    keep: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if not keep or (iou_xyxy(xyxy(d.box), np.stack([xyxy(k.box) for k in keep])) <= iou).all():
            keep.append(d)
    return keep
