"""The Python API: detect, compare 1:1, identify 1:N, enrol and library management on images.

Results are plain dicts shaped like the offline SDK's JSON results, so the CLI and (later) the
HTTP API print them as they are.
"""
from __future__ import annotations

import json
import logging

import cv2
import numpy as np

from . import image as I
from .config import Config
from .faces import Face, FaceAnalyzer
from .library import FaceLibrary, FaceRecord, check_id
from .progress import Progress

log = logging.getLogger("edge.engine")

CROP_MAX = 256      # side of the stored face region (px): enough to re-align for a 150 px chip
THUMB_MAX = 96


def _as_image(src) -> np.ndarray:
    if isinstance(src, np.ndarray):
        return I.to_bgr8(src)
    if isinstance(src, (bytes, bytearray)):
        return I.decode(bytes(src))
    return I.load(src)


def face_crop(img: np.ndarray, face: Face) -> tuple[bytes, dict, bytes]:
    """The face region (2x the box, at most CROP_MAX px) as JPEG, the alignment points in its
    coordinates, and a small thumbnail."""
    x, y, w, h = face.box
    side = 2.0 * max(w, h)
    cx, cy = x + w / 2, y + h / 2
    k = min(1.0, CROP_MAX / side)
    out = int(round(side * k))
    M = np.array([[k, 0, -(cx - side / 2) * k], [0, k, -(cy - side / 2) * k]])
    crop = cv2.warpAffine(img, M, (out, out), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    to_crop = lambda pts: (np.asarray(pts) @ M[:, :2].T + M[:, 2]).tolist()
    points = {"dlib5": to_crop(face.dlib5), "five": to_crop(face.landmarks5)}
    ok, jpg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
    thumb = cv2.resize(crop, (THUMB_MAX, THUMB_MAX), interpolation=cv2.INTER_AREA)
    ok2, tjpg = cv2.imencode(".jpg", thumb, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return jpg.tobytes(), points, tjpg.tobytes()


class FaceEngine:
    def __init__(self, cfg: Config, open_library: bool = True):
        from .license import require

        self.cfg = cfg
        # with a vendor key installed, recognition refuses to start without a valid license
        self.license = require(cfg)
        if self.license and self.license.get("features", {}).get("max_users"):
            cfg.library.max_users = min(cfg.library.max_users, int(self.license["features"]["max_users"]))
        self.analyzer = FaceAnalyzer(cfg)
        self.embedder = self.analyzer.embedder
        self._library = None
        if open_library:
            self.library  # noqa: B018  (open now so a broken database fails early)

    @property
    def library(self) -> FaceLibrary:
        if self._library is None:
            lc = self.cfg.library
            self._library = FaceLibrary(self.cfg.db_path, self.embedder.model, self.embedder.dim, lc.max_users,
                                        lc.max_faces_per_user)
            if lc.reembed_on_model_change:
                self.reembed()
        return self._library

    def close(self):
        if self._library is not None:
            self._library.close()

    # ---- analysis --------------------------------------------------------------------------
    def detect(self, src, max_faces: int | None = None) -> dict:
        img = _as_image(src)
        faces = self.analyzer.detect(img, max_faces)
        return {"face_num": len(faces), "face_list": [f.to_dict() for f in faces]}

    def _template(self, src):
        img = _as_image(src)
        face = self.analyzer.largest(img)
        return img, face, self.analyzer.template(img, face)

    def compare(self, a, b) -> dict:
        _, fa, ta = self._template(a)
        _, fb, tb = self._template(b)
        cos = float(np.dot(ta.unit, tb.unit))
        score = float(self.embedder.score(cos))
        thr = self.cfg.recognition.threshold
        return {"score": round(score, 2), "threshold": thr, "match": score >= thr, "cosine": round(cos, 4),
                "euclidean": round(float(np.linalg.norm(ta.vector - tb.vector)), 4), "model": ta.model}

    def identify(self, src, groups: list[str] | None = None, top_k: int | None = None,
                 threshold: float | None = None, user_id: str | None = None) -> dict:
        _, face, t = self._template(src)
        return self.identify_template(t.unit, groups, top_k, threshold, user_id) | {"face": face.to_dict()}

    def identify_template(self, unit, groups=None, top_k=None, threshold=None, user_id=None) -> dict:
        thr = self.cfg.recognition.threshold if threshold is None else threshold
        hits = self.library.search(unit, groups, top_k or self.cfg.recognition.top_k, user_id)
        users = []
        for h in hits:
            score = round(float(self.embedder.score(h["cosine"])), 2)
            users.append({"user_id": h["user_id"], "group_id": h["groups"][0] if h["groups"] else None,
                          "groups": h["groups"], "user_info": h["user_info"], "score": score,
                          "face_token": h["face_token"], "match": score >= thr})
        best = users[0] if users and users[0]["match"] else None
        return {"threshold": thr, "match": best is not None, "user_id": best["user_id"] if best else None,
                "user_list": users}

    # ---- enrolment ---------------------------------------------------------------------------
    def face_record(self, src) -> tuple[FaceRecord, Face]:
        img = _as_image(src)
        face = self.analyzer.largest(img)
        return self.record_for(img, face), face

    def record_for(self, img: np.ndarray, face: Face) -> FaceRecord:
        """What enrolment stores for this face: template, plus crop/thumbnail where configured."""
        t = self.analyzer.template(img, face)
        lc = self.cfg.library
        crop, points, thumb = face_crop(img, face)
        return FaceRecord(t.vector, t.model, crop if lc.keep_crops else None,
                          points if lc.keep_crops else None, thumb if lc.keep_thumbnails else None)

    def user_add(self, src, user_id: str, group_id: str, user_info: str | None = None) -> dict:
        # validate names before the (slow) model work so a typo fails fast
        check_id("user_id", user_id), check_id("group_id", group_id)
        rec, face = self.face_record(src)
        token = self.library.user_add(user_id, group_id, rec, user_info)
        return {"face_token": token, "user_id": user_id, "group_id": group_id, "location": face.to_dict()["location"]}

    def user_update(self, src, user_id: str, group_id: str, user_info: str | None = None) -> dict:
        check_id("user_id", user_id), check_id("group_id", group_id)
        rec, face = self.face_record(src)
        token = self.library.user_update(user_id, group_id, rec, user_info)
        return {"face_token": token, "user_id": user_id, "group_id": group_id}

    # ---- model change --------------------------------------------------------------------------
    def reembed(self, chunk: int = 64) -> int:
        """Re-compute templates made by another model from the stored face crops."""
        lib = self._library
        todo = lib.faces_needing(self.embedder.model)
        if not todo:
            return 0
        usable = [(fid, crop, pts) for fid, crop, pts in todo if crop and pts]
        if len(usable) < len(todo):
            log.warning("%d faces have no stored crop and cannot be re-embedded: re-enrol those users",
                        len(todo) - len(usable))
        prog = Progress(len(usable), f"re-embedding with {self.embedder.model}")
        for i in range(0, len(usable), chunk):
            updates = []
            for fid, crop, pts in usable[i:i + chunk]:
                img = I.decode(crop)
                p = json.loads(pts)
                t = self.embedder(img, np.asarray(p["dlib5"]), np.asarray(p["five"]))
                updates.append((fid, t.vector))
                prog.step()
            lib.replace_templates(updates)
        prog.done()
        return len(usable)
