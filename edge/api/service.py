"""The HTTP API's one door to the engine: images in (BASE64 / FACE_TOKEN), v3-shaped results out.

Every call into ``FaceEngine`` / ``FaceLibrary`` made by the API or the admin page goes through
``FaceService``, so a change of the engine's interface is adjusted here only. One engine is
shared with the camera loop when ``edge serve --camera`` runs one, so an enrolment made here is
searched by the loop's next attempt.

Licensing applies as in the CLI: with a vendor key installed and no valid licence the engine is
not built and every face endpoint answers the licence error (v3 code 6); the licence is checked
again every ``LICENSE_RECHECK`` seconds, so an expiry or a newly imported licence takes effect
without a restart.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np

from .. import enrol_policy
from .. import errors as E
from .. import image as I
from .. import quality as Q
from ..config import PRESETS, Config
from ..engine import CROP_MAX, face_crop
from ..faces import Face
from .envelope import ApiError
from .liveness import ApiLiveness
from .liveness import threshold as live_threshold

LICENSE_RECHECK = 60.0
TOKEN_TTL = 3600.0            # seed: detect/search face_token valid 60 min
DUPLICATE_COSINE = 0.9999     # the very same image enrolled again for the same user: 223105
COMPLETE = 0.98               # share of the face box inside the frame that counts as complete
# v3 quality_control: occlusion region -> error code
OCCLUSION_CODES = {"left_eye": 223121, "right_eye": 223122, "left_cheek": 223123, "right_cheek": 223124,
                   "chin_contour": 223125, "nose": 223126, "mouth": 223127}
CONTROLS = ("NONE", "LOW", "NORMAL", "HIGH")
# what a face failing quality_control / liveness_control gets; multi-search leaves such faces out
CONTROL_FAILURES = frozenset(OCCLUSION_CODES.values()) | {223114, 223115, 223116, 223120}


@dataclass
class Probe:
    """One face of a request image, ready for quality checks and recognition."""
    face: Face                  # in the coordinates of ``img``
    img: np.ndarray | None      # the image (or the stored face region, for a FACE_TOKEN)
    token: str
    location: dict              # in the request image's coordinates
    unit: np.ndarray | None = None
    crops: list | None = None   # the anti-spoof models' inputs (None: no models, or an enrolled face)
    live: float | None = None   # its liveness score, once judged


@dataclass
class _Entry:
    expires: float
    face: Face                  # in crop coordinates
    crop: bytes                 # JPEG of the face region (never the whole photo)
    location: dict
    unit: np.ndarray | None = None
    # the anti-spoof crops (80x80, 2.7x and 4x the box) cut from the whole image when the token was
    # made: the stored 2x face region is too tight to judge liveness on later
    crops: list | None = None
    live: float | None = None


class FaceTokens:
    """face_tokens of detected faces: memory only, bounded, each valid ``TOKEN_TTL`` s. Same
    image, same token (derived from the image's digest and the face's rank)."""

    def __init__(self, size: int, clock=time.monotonic):
        self.size, self.clock = size, clock
        self._d: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def make(digest: bytes, rank: int) -> str:
        return hashlib.sha256(digest + rank.to_bytes(2, "big")).hexdigest()[:32]

    def put(self, token: str, img: np.ndarray, face: Face, location: dict, unit=None, crops=None) -> None:
        if self.size <= 0:
            return
        jpg, points, _ = face_crop(img, face)
        x, y, w, h = face.box
        side = 2.0 * max(w, h)
        k = min(1.0, CROP_MAX / side)
        ox, oy = x + w / 2 - side / 2, y + h / 2 - side / 2
        local = Face(box=[(x - ox) * k, (y - oy) * k, w * k, h * k], score=face.score, landmarks5=points["five"],
                     dlib5=np.asarray(points["dlib5"]), pose=face.pose, openness=face.openness,
                     quality=face.quality, mesh_presence=face.mesh_presence)
        with self._lock:
            self._d[token] = _Entry(self.clock() + TOKEN_TTL, local, jpg, location, unit, crops)
            self._d.move_to_end(token)
            while len(self._d) > self.size:
                self._d.popitem(last=False)

    def get(self, token: str) -> _Entry | None:
        with self._lock:
            e = self._d.get(token)
            if e is None:
                return None
            if e.expires < self.clock():
                del self._d[token]
                return None
            return e

    def set_unit(self, token: str, unit: np.ndarray) -> None:
        with self._lock:
            if token in self._d:
                self._d[token].unit = unit

    def set_live(self, token: str, score: float) -> None:
        with self._lock:
            if token in self._d:
                self._d[token].live = score


def location(face: Face) -> dict:
    x, y, w, h = face.box
    return {"left": round(x, 2), "top": round(y, 2), "width": round(w, 2), "height": round(h, 2),
            "rotation": int(round(face.pose.get("roll", 0.0)))}


class FaceService:
    def __init__(self, cfg: Config, engine=None):
        self.cfg = cfg
        self._engine = engine
        self._checked = time.monotonic()
        self._build = threading.Lock()
        # one API-side lock around library calls: the library's SQLite connection and FAISS
        # index are shared by the request threads (and the camera loop's searches)
        self.lib_lock = threading.RLock()
        self.tokens = FaceTokens(cfg.serve.face_tokens)
        self.liveness = ApiLiveness(cfg)

    # ---- engine and licence -------------------------------------------------------------------
    def engine(self):
        from ..license import require

        try:
            if self._engine is None:
                with self._build:
                    if self._engine is None:
                        from ..engine import FaceEngine
                        self._engine = FaceEngine(self.cfg)
                        self._checked = time.monotonic()
            elif time.monotonic() - self._checked > LICENSE_RECHECK:
                require(self.cfg)
                self._checked = time.monotonic()
        except E.EdgeError as e:
            raise ApiError.from_edge(e) from None
        return self._engine

    @property
    def ready(self) -> bool:
        return self._engine is not None

    def library(self):
        return self.engine().library

    # ---- images ------------------------------------------------------------------------------------
    def _decode(self, image: str) -> tuple[np.ndarray, bytes]:
        if not isinstance(image, str) or not image:
            raise ApiError(222001, "image is empty", field="image")
        s = image.strip()
        if s.startswith("data:") and "," in s[:100]:
            s = s.split(",", 1)[1]          # a data-URI header the seed says to leave out: tolerated
        try:
            data = base64.b64decode(s, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(222203, "image is not valid base64") from None
        try:
            img = I.decode(data)
        except E.EdgeError as e:
            if e.code == E.UNSUPPORT_IMAGE_TYPE:
                # GIF is "image format error" in the seed; bytes that are no image at all cannot be parsed
                raise ApiError(216201 if data[:4] == b"GIF8" else 222203, e.message) from None
            raise ApiError.from_edge(e) from None
        return img, hashlib.sha256(data).digest()

    def probes(self, image: str, image_type: str, max_faces: int = 1, sort: int = 0,
               required: bool = True) -> list[Probe]:
        """The faces of a request image, largest (sort 0) or nearest the centre (sort 1) first."""
        if image_type == "URL":
            raise ApiError(222204, "the device is offline and does not download images: send BASE64")
        if image_type == "FACE_TOKEN":
            return [self._token_probe(image)]
        if image_type != "BASE64":
            raise ApiError(222015, f"image_type {image_type!r}", field="image_type")
        img, digest = self._decode(image)
        eng = self.engine()
        want = max_faces if sort == 0 else max(max_faces, self.cfg.detect.max_detect_num)
        # a still image, as the CLI's: the second detector pass, the subject before bigger neighbours
        faces = eng.analyzer.detect_still(img, want)
        if sort == 1:
            h, w = img.shape[:2]
            faces.sort(key=lambda f: (f.box[0] + f.box[2] / 2 - w / 2) ** 2 + (f.box[1] + f.box[3] / 2 - h / 2) ** 2)
        faces = faces[:max_faces]
        if not faces and required:
            raise ApiError(222202, "no face in the image")
        out = []
        for rank, f in enumerate(faces):
            token = FaceTokens.make(digest, rank)
            loc = location(f)
            crops = self.liveness.crops(img, f.box)
            self.tokens.put(token, img, f, loc, crops=crops)
            out.append(Probe(f, img, token, loc, crops=crops))
        return out

    def _token_probe(self, token: str) -> Probe:
        if not isinstance(token, str) or not 1 <= len(token) <= 64:
            raise ApiError(222025, "face_token", field="face_token")
        e = self.tokens.get(token)
        if e is not None:
            crop = I.decode(e.crop)
            return Probe(e.face, crop, token, e.location, e.unit, e.crops, e.live)
        with self.lib_lock:
            unit = self.library().face_unit(token)
        if unit is None:
            raise ApiError(222209, f"face_token {token} is unknown or expired (detect tokens live 60 min)")
        return Probe(None, None, token, {}, unit)

    def unit(self, p: Probe) -> np.ndarray:
        if p.unit is None:
            p.unit = self.engine().analyzer.template(p.img, p.face).unit
            self.tokens.set_unit(p.token, p.unit)
        return p.unit

    # ---- controls ----------------------------------------------------------------------------------
    def controls(self, liveness: str = "NONE", spoofing: str = "NONE") -> None:
        """216102 for a control this device cannot apply, before any work is done on the image."""
        if spoofing != "NONE":
            # no synthetic-image (face-merge / edited photo) model exists here: refusing is honest,
            # passing unchecked is not
            raise ApiError(216102, "spoofing_control needs a synthetic-image model, and this device has none: "
                           "send NONE")
        if liveness != "NONE":
            self.liveness.require()

    def check(self, p: Probe, quality: str = "NONE", liveness: str = "NONE") -> None:
        """The request's quality_control / liveness_control, as errors: the seed's order, quality
        first, then liveness (223120 below the level's threshold). Callers have run ``controls``
        on the same values before decoding the image (216102 without the models)."""
        self._quality(p, quality)
        if liveness != "NONE":
            score, thr = self.live_score(p), live_threshold(liveness)
            if score < thr:
                raise ApiError(223120, f"liveness {score:.4f} < {thr} ({liveness}; RGB "
                               f"{'+'.join(self.cfg.liveness.rgb_models)}) face_token {p.token}")

    def live_score(self, p: Probe) -> float:
        """The face's RGB liveness score (0-1), judged once per face_token."""
        if p.live is None:
            if p.crops is None:
                raise ApiError(222209, f"face_token {p.token} has no image to judge liveness on (an enrolled "
                               "face, or detected before the liveness models were installed): send the image")
            p.live = self.liveness.score(p.crops)
            self.tokens.set_live(p.token, p.live)
        return p.live

    def _quality(self, p: Probe, quality: str) -> None:
        if quality == "NONE" or p.face is None:
            return
        lim = PRESETS[quality]
        occ = Q.occlusion(p.img, p.face)
        for region, code in OCCLUSION_CODES.items():
            if occ[region] > lim["occlusion"]:
                raise ApiError(code, f"{region} occlusion {occ[region]} > {lim['occlusion']}")
        q = p.face.quality
        if q["blur"] > lim["blur"]:
            raise ApiError(223114, f"blur {q['blur']} > {lim['blur']}")
        if q["illumination"] < lim["illumination"]:
            raise ApiError(223115, f"illumination {q['illumination']} < {lim['illumination']}")
        if (1 if q["completeness"] >= COMPLETE else 0) < lim["completeness"]:
            raise ApiError(223116, f"completeness {q['completeness']}")

    # ---- results ---------------------------------------------------------------------------------
    def face_fields(self, p: Probe, fields: set[str]) -> dict:
        f = p.face
        out = {"face_token": p.token, "location": p.location, "face_probability": round(float(f.score), 4),
               "angle": {k: round(float(f.pose[k]), 2) for k in ("yaw", "pitch", "roll")}}
        if "landmark" in fields:
            # the seed's 4 points: left eye centre, right eye centre, nose tip, mouth centre, in
            # the request image's coordinates
            pts = np.asarray(f.landmarks5, float)
            if p.location and f.box[2] > 0:
                k = p.location["width"] / f.box[2]
                pts = (pts - np.array(f.box[:2])) * k + np.array([p.location["left"], p.location["top"]])
            four = [pts[0], pts[1], pts[2], (pts[3] + pts[4]) / 2]
            out["landmark"] = [{"x": round(float(x), 2), "y": round(float(y), 2)} for x, y in four]
        if "quality" in fields:
            q = f.quality
            occ = Q.occlusion(p.img, f)
            out["quality"] = {"occlusion": occ, "blur": q["blur"], "illumination": q["illumination"],
                              "completeness": 1 if q["completeness"] >= COMPLETE else 0}
        return out

    def users(self, unit, groups: list[str], top: int, threshold: float, user_id: str | None = None) -> list[dict]:
        eng = self.engine()
        with self.lib_lock:
            lib = eng.library
            for g in groups:
                lib.get_user_list(g, 0, 1)          # 223100 for a group that does not exist
            res = eng.identify_template(unit, groups, top, threshold, user_id)
        return [{"group_id": u["group_id"], "user_id": u["user_id"], "user_info": u["user_info"] or "",
                 "score": u["score"]} for u in res["user_list"] if u["score"] >= threshold]

    def score(self, a, b) -> float:
        return round(float(self.engine().embedder.score(float(np.dot(a, b)))), 2)

    def enrol(self, p: Probe, user_id: str, group_id: str, user_info: str | None, replace: bool,
              must_exist: bool = False) -> str:
        """Store the face; ``replace`` swaps the user's faces for this one. Returns the face_token."""
        from ..library import FaceRecord, check_id

        check_id("user_id", user_id), check_id("group_id", group_id)
        eng = self.engine()
        if p.face is not None:
            enrol_policy.require(p.face, self.cfg.enrol)     # the one enrolment policy, as the CLI's
            rec = eng.record_for(p.img, p.face)
        else:
            rec = FaceRecord(p.unit, eng.embedder.model)   # a registered face_token: its template
        unit = rec.template / (np.linalg.norm(rec.template) + 1e-12)
        with self.lib_lock:
            lib = eng.library
            try:
                groups = lib.get_user(user_id)["groups"]
            except E.EdgeError:
                groups = []
            member = group_id in groups
            if must_exist and not member:
                raise ApiError(223103, f"user {user_id} is not in group {group_id}")
            if groups and not replace:
                hit = lib.search(unit, None, 1, user_id)
                if hit and hit[0]["cosine"] >= DUPLICATE_COSINE:
                    raise ApiError(223105, f"this face is already enrolled for {user_id} ({hit[0]['face_token']})")
            if replace and member:
                return lib.user_update(user_id, group_id, rec, user_info)
            return lib.user_add(user_id, group_id, rec, user_info)

    def call(self, fn, *a, **kw):
        """A library call under the API's lock, EdgeErrors as their v3 codes."""
        with self.lib_lock:
            try:
                return fn(self.library(), *a, **kw)
            except E.EdgeError as e:
                raise ApiError.from_edge(e) from None

    def thumbnail(self, user_id: str) -> bytes | None:
        return self.call(lambda lib: lib.get_thumbnail(user_id))


def jpeg(img: np.ndarray, quality: int = 80) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return buf.tobytes()


def admin_enrol(svc: FaceService, img: np.ndarray, user_id: str, group_id: str, user_info: str | None,
                liveness: str = "NONE") -> dict:
    """The admin page's enrolment: the one enrolment policy (``[enrol]``, as `edge user add`),
    then, when asked, the API's RGB liveness at ``liveness``, with every reason a person can act
    on when the photo is refused."""
    svc.controls(liveness)                   # 216102 without the models, before the photo is read
    eng = svc.engine()
    faces = eng.analyzer.detect_still(img, 1)
    if not faces:
        return {"ok": False, "reasons": [], "no_face": True}
    f = faces[0]
    found = enrol_policy.problems(f, svc.cfg.enrol)
    if found:
        return {"ok": False, "reasons": [p.to_dict() | {"text": p.text, "code": p.http_code} for p in found]}
    probe = Probe(f, img, "", location(f), crops=svc.liveness.crops(img, f.box) if liveness != "NONE" else None)
    if liveness != "NONE":
        score, thr = svc.live_score(probe), live_threshold(liveness)
        if score < thr:
            return {"ok": False, "reasons": [{"reason": "spoof", "value": score, "limit": thr, "code": 223120,
                                              "text": f"liveness {score:.3f} < {thr} ({liveness})"}]}
    token = svc.enrol(probe, user_id, group_id, user_info or None, replace=False)
    return {"ok": True, "face_token": token}
