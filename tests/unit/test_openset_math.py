"""The open-set estimator on synthetic templates, where every impostor score is an independent
draw, so the estimate from the 1:1 distribution must agree with what a real gallery measures."""
import numpy as np
import pytest

from edge.scores import ScoreScale
from edge_tools import calibrate as K
from edge_tools.eval_openset import FarCurve, Openset
from edge_tools.evaluate import Templates


def _people(rng, n_people, photos, dim, noise):
    centres = rng.standard_normal((n_people, dim))
    units = np.repeat(centres, photos, 0) + noise * rng.standard_normal((n_people * photos, dim))
    units /= np.linalg.norm(units, axis=1, keepdims=True)
    labels = [f"p{i:03d}" for i in range(n_people) for _ in range(photos)]
    return Templates(labels, labels, units.astype(np.float32), units.astype(np.float32), np.ones(len(labels), bool))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    t = _people(rng, 300, 4, 24, 0.6)
    d = _people(rng, 1200, 1, 24, 0.6)
    first = np.arange(0, len(t.labels), 4)
    imp = (t.units[first] @ d.units.T).ravel()
    cal = K.calibration(imp, np.ones(10))
    scale = ScoreScale({"id": "syn", "metric": {"calibration": {"flip": cal}}}, "flip")
    return Openset(t, d, scale)


def test_far_curve_is_the_measured_share_then_the_fitted_tail():
    rng = np.random.default_rng(1)
    imp = rng.normal(0, 0.1, 200_000)
    far = FarCurve(imp)
    for c in (0.0, 0.2, 0.3):
        assert far(c) == pytest.approx((imp >= c).mean())
    beyond = far(np.array([far.resolved_to + 0.01, far.resolved_to + 0.05]))
    assert np.all(beyond <= far.resolved_far) and beyond[1] < beyond[0]


def test_estimated_rates_agree_with_the_measured_gallery(data):
    o = data
    size = o.real_sizes()[-1]                    # 300 people + 600 enrolled distractors
    assert size == 900
    for score in (60.0, 70.0):
        c = [o.scale.cosine(score)]
        m, e = o.measured(size, c), o.estimated(size, c)
        fpir = m["strangers_matched"][0] / m["strangers"]
        fnir = m["missed"][0] / m["genuine"]
        assert e["fpir"][0] == pytest.approx(fpir, abs=0.03 + 0.25 * fpir)
        assert e["fnir"][0] == pytest.approx(fnir, abs=0.02 + 0.15 * fnir)


def test_rates_move_the_right_way(data):
    o = data
    cos = [o.scale.cosine(s) for s in (60.0, 70.0, 80.0)]
    small, big = o.estimated(1000, cos), o.estimated(30000, cos)
    assert np.all(np.diff(small["fpir"]) < 0) and np.all(np.diff(small["fnir"]) >= 0)
    assert np.all(big["fpir"] > small["fpir"]) and np.all(big["fnir"] >= small["fnir"])
    assert o.recommend(100) <= o.recommend(1000) <= o.recommend(30000)
    assert o.estimated(1, cos)["fpir"] == pytest.approx(o.far(np.array(cos)))
