"""The SFace adapter on real faces: the five points edge finds, cut and fed the way OpenCV's
FaceRecognizerSF cuts and feeds them, on a model with SFace's interface (tests/tiny_models.py)."""
import shutil

import cv2
import numpy as np

from edge import config as C
from edge import image as I
from edge.faces import FaceAnalyzer
from edge.models import cards, catalogue
from tests.conftest import PUBLIC
from tests.tiny_models import sface_like


def test_sface_templates_equal_opencv_features_on_real_faces(models_dir, tmp_path):
    md = tmp_path / "models"
    shutil.copytree(models_dir, md)
    model = sface_like(md / "sface.onnx")
    cards.write_card(md, catalogue.arcface_card("sface", model, catalogue.SFACE_LFW_COSINE, adapter="sface",
                                                normalisation={"mean": 0.0, "std": 1.0}))
    cfg = C.load(home=tmp_path / "home", models_dir=md)
    cfg.embed.embedder, cfg.embed.flip = "sface", False
    an = FaceAnalyzer(cfg)
    rec = cv2.FaceRecognizerSF.create(str(model), "")
    photos = sorted(p for d in ("obama", "biden", "rose_leslie", "alex_lacamoire") for p in (PUBLIC / d).iterdir())
    for p in photos:
        img = I.load(p)
        face = an.main_face(img)
        row = np.concatenate([face.box, np.ravel(face.landmarks5), [face.score]]).astype(np.float32)[None]
        ref = rec.feature(rec.alignCrop(img, row))[0]
        got = an.template(img, face).vector
        cos = float(got @ ref / np.linalg.norm(got) / np.linalg.norm(ref))
        assert cos > 0.9999, (p.name, cos)
