"""The Python API: detect, compare 1:1, identify 1:N, enrol and library management on images.

Results are plain dicts shaped like the offline SDK's JSON results, so the CLI and (later) the
HTTP API print them as they are.
"""
from __future__ import annotations

import json
import logging
import math

import cv2
import numpy as np

from . import enrol_policy
from . import errors as E
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


def _check_search(top_k, threshold) -> None:
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 50):
        raise E.EdgeError(E.PARARM_ERROR, f"top_k = {top_k!r}: give 1-50 users", http_code=222021)
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                  or not math.isfinite(threshold) or not 0 <= threshold <= 100):
        raise E.EdgeError(E.PARARM_ERROR, f"threshold = {threshold!r}: give a score 0-100", http_code=222030)


class FaceEngine:
    def __init__(self, cfg: Config, open_library: bool = True):
        from .license import require

        self.cfg = cfg
        # with a vendor key installed, recognition refuses to start without a valid license
        self.license = require(cfg)
        self._licensed_users = None
        if self.license and self.license.get("features", {}).get("max_users"):
            licensed = int(self.license["features"]["max_users"])
            if licensed <= cfg.library.max_users:
                self._licensed_users = licensed
            cfg.library.max_users = min(cfg.library.max_users, licensed)
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
            if self._licensed_users is not None:
                self._library.full_hint = (f"ask the vendor for a license with more users (license "
                                           f"{self.license['serial']} allows {self._licensed_users})")
            if lc.reembed_on_model_change:
                self.reembed()
        return self._library

    def close(self):
        if self._library is not None:
            self._library.close()

    # ---- analysis --------------------------------------------------------------------------
    def detect(self, src, max_faces: int | None = None) -> dict:
        if max_faces is not None and (isinstance(max_faces, bool) or not isinstance(max_faces, int)
                                      or not 1 <= max_faces <= 50):
            # 0 or a negative number used to mean "no faces" silently
            raise E.EdgeError(E.PARARM_ERROR, f"max_faces = {max_faces!r}: give 1-50", http_code=222016)
        img = _as_image(src)
        # a still image: the second detector pass and its subject first, as enrolment and search
        faces = self.analyzer.detect_still(img, max_faces)
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
        _check_search(top_k, threshold)
        for g in groups or []:
            # as `user list`: a group that does not exist is an error, not an empty answer
            self.library.get_user_list(g, 0, 1)
        _, face, t = self._template(src)
        return self.identify_template(t.unit, groups, top_k, threshold, user_id) | {"face": face.to_dict()}

    def identify_template(self, unit, groups=None, top_k=None, threshold=None, user_id=None) -> dict:
        _check_search(top_k, threshold)
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
    def face_record(self, src, policy: bool = True) -> tuple[FaceRecord, Face]:
        """The record to enrol for the largest face; with ``policy``, a face the enrolment
        quality policy refuses raises GET_FEATURE_FAIL with the reasons."""
        img = _as_image(src)
        face = self.analyzer.largest(img)
        if policy:
            enrol_policy.require(face, self.cfg.enrol)
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
