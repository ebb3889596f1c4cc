"""`edge run` warns when the threshold lets strangers match someone more than 1 % of the time at
the library's size (the pack's dlib calibration: 80 = FAR 1e-4, so about 100 users)."""
import logging
from types import SimpleNamespace

import numpy as np
import pytest

from edge import config as C
from edge.library import FaceLibrary, FaceRecord
from edge.models.build import RECIPE
from edge.runner import warn_fpir
from edge.scores import ScoreScale

MODEL, DIM = "m@1", 8


@pytest.fixture
def engine(tmp_path):
    lib = FaceLibrary(tmp_path / "face.db", MODEL, DIM)
    scale = ScoreScale({"id": "dlib_resnet", "metric": RECIPE["dlib_resnet"]["metric"]}, "flip")
    yield SimpleNamespace(library=lib, embedder=SimpleNamespace(scale=scale))
    lib.close()


def _enrol(lib, n, group="staff"):
    rng = np.random.default_rng(n)
    lib.add_many([(f"{group}{i}", group, FaceRecord(rng.standard_normal(DIM).astype(np.float32), MODEL), None)
                  for i in range(n)])


def test_a_library_past_the_thresholds_size_is_warned_about(engine, tmp_path, caplog):
    cfg = C.load(home=tmp_path)
    cfg.decision.groups = ["staff"]
    _enrol(engine.library, 150)
    with caplog.at_level(logging.WARNING, logger="edge.run"):
        fpir = warn_fpir(cfg, engine)
    assert fpir == pytest.approx(1 - (1 - 1e-4) ** 150, rel=1e-6)
    msg = " ".join(r.getMessage() for r in caplog.records)
    assert "threshold 80 with 150 enrolled users" in msg and "1.5 %" in msg and "threshold 82 keeps it under 1 %" in msg


def test_a_small_library_or_a_strict_threshold_is_quiet(engine, tmp_path, caplog):
    cfg = C.load(home=tmp_path)
    cfg.decision.groups = ["staff"]
    _enrol(engine.library, 60)
    _enrol(engine.library, 90, group="visitors")
    with caplog.at_level(logging.WARNING, logger="edge.run"):
        assert warn_fpir(cfg, engine) == pytest.approx(1 - (1 - 1e-4) ** 60)     # only the searched group
        cfg.decision.groups = []
        cfg.decision.threshold = 85.0                          # 150 users at FAR 10^-4.5: 0.47 %
        assert warn_fpir(cfg, engine) < 0.01
    assert not caplog.records
