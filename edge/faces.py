"""Still-image face analysis: detect -> landmarks -> quality figures -> template.

One ``FaceAnalyzer`` holds the detector, landmark and embedder sessions chosen by the config's
model ids; everything it returns is plain data.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import detect as D
from . import embed as EM
from . import errors as E
from .config import Config
from .models import registry
from .models.quantize import variant

MESH_PRESENCE_MIN = 0.5   # FaceMesh's own face-presence threshold (MediaPipe default)
# Still images get a second detector pass on the image padded by this share of its longer side
# on every side: BlazeFace full-range misses faces that fill more than about 40 % of the frame
# (close-ups, tight ID crops); padding shrinks them into its range. On lfw-dev + lfw-distractors
# it found 10 of the 11 faces the first pass missed (README "Fewer missed faces").
STILL_PAD = 0.5
# a face closer to the centre is the photo's subject unless it is much smaller than the largest
# (area ratio): a neighbour's face cut by the border of a tight crop is often the biggest one
SUBJECT_MIN_AREA = 0.25


@dataclass
class Face:
    box: list[float]                 # x, y, w, h
    score: float                     # detector confidence 0-1
    landmarks5: list[list[float]]    # eye (image-left), eye (image-right), nose tip, mouth l, mouth r
    dlib5: np.ndarray                # alignment points for dlib-style chips
    pose: dict                       # yaw, pitch, roll in degrees
    openness: dict                   # eye / mouth opening ratios
    quality: dict                    # illumination 0-255, blur 0-1, completeness 0-1, size px
    mesh_presence: float = 1.0

    def to_dict(self) -> dict:
        r = lambda v: [round(float(x), 2) for x in v]
        return {"location": {"left": round(self.box[0], 1), "top": round(self.box[1], 1),
                             "width": round(self.box[2], 1), "height": round(self.box[3], 1)},
                "face_probability": round(self.score, 4),
                "landmark": [r(p) for p in self.landmarks5],
                "angle": {k: round(v, 1) for k, v in self.pose.items()},
                "quality": {k: round(v, 3) if isinstance(v, float) else v for k, v in self.quality.items()},
                "openness": {k: round(v, 3) for k, v in self.openness.items()}}


def quality_figures(img: np.ndarray, box) -> dict:
    """Illumination as the SDK's (mean gray of the face, 0-255), blur (0 sharp .. 1 blurred,
    from the Laplacian energy of the face normalised to 100 px), completeness (share of the
    face box inside the frame)."""
    h, w = img.shape[:2]
    x, y, bw, bh = box
    x0, y0 = int(max(0, x)), int(max(0, y))
    x1, y1 = int(min(w, x + bw)), int(min(h, y + bh))
    inside = max(0, x1 - x0) * max(0, y1 - y0) / max(bw * bh, 1e-9)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return {"illumination": 0, "blur": 1.0, "completeness": round(float(inside), 3), "size": 0}
    gray = cv2.cvtColor(img[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
    illum = int(round(float(gray.mean())))
    face = cv2.resize(gray, (100, 100), interpolation=cv2.INTER_AREA).astype(np.float64)
    face = (face - face.mean()) / (face.std() + 1.0) * 50.0  # contrast-normalised: dark is not blurred
    lap = float(cv2.Laplacian(face, cv2.CV_64F).var())
    blur = float(np.clip(1.0 - lap / (lap + 60.0), 0.0, 1.0))  # 60: Laplacian variance ~ blur 0.5
    return {"illumination": illum, "blur": round(blur, 3), "completeness": round(float(min(1.0, inside)), 3),
            "size": int(round(min(bw, bh)))}


class FaceAnalyzer:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        md, rt = cfg.models_path, registry.Runtime.from_config(cfg)
        v = lambda mid: variant(mid, cfg.precision)     # "<id>_int8" when precision = "int8"
        self.detector = registry.load(md, v(cfg.detect.detector), rt, "detector")
        self.mesh = registry.load(md, v("facemesh"), rt, "landmarks")
        self.embedder = registry.load(md, v(cfg.embed.embedder), rt, "embedder", flip=cfg.embed.flip)

    def detect(self, img: np.ndarray, max_faces: int | None = None) -> list[Face]:
        dc = self.cfg.detect
        dets = self.detector(img, dc.not_face_thr, dc.nms_iou)
        faces = []
        for det in D.select(dets, dc.min_face_size, max_faces or dc.max_detect_num):
            face = self._measure(img, det, det.box, det.score)
            if face is not None:
                faces.append(face)
        return faces

    def still_detections(self, img: np.ndarray) -> list[D.Detection]:
        """Detections in a still image (enrolment, identify, compare, an ID photo), its subject
        first: the largest face whose box holds the image centre (if at least SUBJECT_MIN_AREA of
        the largest face), else the largest face. When no face holds the centre, the detector runs
        again on the padded image (STILL_PAD)."""
        dc = self.cfg.detect
        dets = self.detector(img, dc.not_face_thr, dc.nms_iou)
        if not any(_holds_centre(d, img.shape) for d in dets):
            h, w = img.shape[:2]
            pad = int(round(STILL_PAD * max(h, w)))
            padded = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
            for d in self.detector(padded, dc.not_face_thr, dc.nms_iou):
                d.box[:2] -= pad
                d.keypoints = d.keypoints - pad
                dets.append(d)
            dets = D.suppress(dets, dc.nms_iou)
        dets = D.select(dets, dc.min_face_size, len(dets))
        if not dets:
            return []
        biggest = dets[0].area
        central = [i for i, d in enumerate(dets)
                   if _holds_centre(d, img.shape) and d.area >= SUBJECT_MIN_AREA * biggest]
        if central:
            dets.insert(0, dets.pop(central[0]))
        return dets[: dc.max_detect_num]

    def detect_still(self, img: np.ndarray, max_faces: int | None = None) -> list[Face]:
        """``detect`` for a still image: the second pass and the subject first (``still_detections``)."""
        faces = []
        for det in self.still_detections(img):
            face = self._measure(img, det, det.box, det.score)
            if face is not None:
                faces.append(face)
                if max_faces and len(faces) >= max_faces:
                    break
        return faces

    def follow(self, img: np.ndarray, face: Face) -> Face | None:
        """Find a tracked face again near where it was, with the landmark model alone (the
        detector is not run): the mesh ROI comes from the previous box and eyes. None when the
        mesh says there is no face there any more."""
        prev = np.asarray(face.landmarks5)
        det = D.Detection(np.asarray(face.box, np.float64), face.score, prev[:2])
        mesh = self.mesh(img, det)
        if mesh.presence < MESH_PRESENCE_MIN:
            return None
        now = mesh.five()
        # move and scale the previous box with the five points so its framing stays the detector's
        spread = lambda p: float(np.linalg.norm(p - p.mean(0), axis=1).mean()) + 1e-9
        k = spread(now) / spread(prev)
        x, y, w, h = face.box
        cx, cy = now.mean(0) + (np.array([x + w / 2, y + h / 2]) - prev.mean(0)) * k
        box = np.array([cx - w * k / 2, cy - h * k / 2, w * k, h * k])
        return self._measure(img, det, box, face.score, mesh)

    def _measure(self, img, det, box, score, mesh=None) -> Face | None:
        mesh = mesh or self.mesh(img, det)
        if mesh.presence < MESH_PRESENCE_MIN:
            return None
        yaw, pitch, roll = mesh.pose()
        return Face(box=[float(v) for v in box], score=float(score), landmarks5=mesh.five().tolist(),
                    dlib5=mesh.dlib5(), pose={"yaw": yaw, "pitch": pitch, "roll": roll},
                    openness=mesh.openness(), quality=quality_figures(img, box), mesh_presence=mesh.presence)

    def main_face(self, img: np.ndarray) -> Face:
        """The subject of a still image (``still_detections``); -1012 DETECT_NO_FACE when none."""
        faces = self.detect_still(img, max_faces=1)
        if not faces:
            raise E.EdgeError(E.DETECT_NO_FACE, "no face found in the image: use a frontal photo "
                              "with the face clearly visible")
        return faces[0]

    largest = main_face   # the name callers used while the largest face was the subject

    def template(self, img: np.ndarray, face: Face) -> EM.Template:
        return self.embedder(img, face.dlib5, np.asarray(face.landmarks5))


def _holds_centre(det: D.Detection, shape) -> bool:
    x, y, w, h = det.box
    cy, cx = shape[0] / 2, shape[1] / 2
    return x <= cx <= x + w and y <= cy <= y + h
