"""Still images (enrolment, identify, compare, an ID photo): the second detector pass finds the
close-ups BlazeFace full-range misses, and the subject is the central face, not a neighbour's
bigger face cut by the border (README "Fewer missed faces")."""
import numpy as np

from edge import image as I
from tests.conftest import LFW

# the full-range model's first pass finds no face at all in these close-ups
CLOSE_UPS = ["George_HW_Bush_0002", "James_Blake_0013", "Richard_Myers_0003"]
# a neighbour's face is the largest in these; the subject holds the centre
CROWDED = ["Abdullah_Gul_0016", "Winona_Ryder_0015", "Taha_Yassin_Ramadan_0006"]


def _path(name):
    person = name.rsplit("_", 1)[0]
    return LFW / person / f"{name}.jpg"


def _first(name):
    person = name.rsplit("_", 1)[0]
    return _path(f"{person}_0001")


def _unit(an, img, face):
    return an.template(img, face).unit


def _holds_centre(box, img):
    x, y, w, h = box
    return x <= img.shape[1] / 2 <= x + w and y <= img.shape[0] / 2 <= y + h


def test_close_ups_missed_by_the_first_pass_are_found_and_identified(analyzer):
    dc = analyzer.cfg.detect
    refs = {}
    for name in CLOSE_UPS:
        img = I.load(_first(name))
        refs[name] = _unit(analyzer, img, analyzer.main_face(img))
    for name in CLOSE_UPS:
        img = I.load(_path(name))
        assert analyzer.detector(img, dc.not_face_thr, dc.nms_iou) == []
        face = analyzer.main_face(img)
        assert _holds_centre(face.box, img)
        u = _unit(analyzer, img, face)
        scores = {other: float(analyzer.embedder.score(float(u @ r))) for other, r in refs.items()}
        # closest to the same person's first photo, and at least at the FAR-1e-2 point
        assert max(scores, key=scores.get) == name and scores[name] >= 60, scores


def test_the_central_face_is_the_subject_not_the_largest(analyzer):
    for name in CROWDED:
        img = I.load(_path(name))
        faces = analyzer.detect(img)
        assert len(faces) >= 2
        main = analyzer.main_face(img)
        assert _holds_centre(main.box, img)
        assert not np.allclose(main.box, faces[0].box)      # not the largest face
        ref_img = I.load(_first(name))
        ref = _unit(analyzer, ref_img, analyzer.main_face(ref_img))
        best = max(faces, key=lambda f: float(_unit(analyzer, img, f) @ ref))
        assert np.allclose(best.box, main.box), name        # the face that is the person
