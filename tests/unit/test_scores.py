"""The 0-100 score scale of a card, and the calibration that makes it mean false-accept rates."""
import math

import numpy as np
import pytest

from edge import errors as E
from edge.scores import SCORE_FAR, ScoreScale, far_for_score
from edge_tools import calibrate as K

ANCHORS = [[-1.0, 0.0], [0.88, 50.0], [0.91, 60.0], [0.93, 70.0], [0.948, 80.0], [0.958, 90.0], [1.0, 100.0]]


def card(cal=None, same=0.9103):
    metric = {"kind": "cosine", "same_person_cosine": same}
    if cal is not None:
        metric["calibration"] = cal
    return {"id": "m", "metric": metric}


def test_calibrated_scale_passes_through_its_anchors_and_is_monotone():
    s = ScoreScale(card({"flip": {"anchors": ANCHORS, "tail": {"log10_far": [78.0, -86.5]}}}), "flip")
    assert s.calibrated
    for c, score in ANCHORS:
        assert s.score(c) == pytest.approx(score)
        assert s.cosine(score) == pytest.approx(c)
    xs = np.linspace(-1, 1, 2001)
    assert np.all(np.diff(s.score(xs)) >= 0) and s.score(xs).min() == 0 and s.score(xs).max() == 100
    assert s.score(0.939) == pytest.approx(75.0)           # linear in cosine between anchors
    assert isinstance(s.score(0.5), float) and s.score(np.array([0.5])).shape == (1,)


def test_far_follows_the_decades_and_the_fitted_tail_above_90():
    s = ScoreScale(card({"flip": {"anchors": ANCHORS, "tail": {"log10_far": [78.0, -86.5]}}}), "flip")
    assert s.far(80) == pytest.approx(1e-4) and s.far(70) == pytest.approx(1e-3) and s.far(85) == pytest.approx(10 ** -4.5)
    above = s.far(95)
    assert above < 1e-5 and above == pytest.approx(10 ** (78.0 - 86.5 * s.cosine(95)))
    assert far_for_score(60) == pytest.approx(1e-2)
    assert SCORE_FAR[80] == 1e-4


def test_uncalibrated_card_keeps_the_same_person_point_at_80_and_claims_no_rate():
    s = ScoreScale(card(), "flip")
    assert not s.calibrated and s.far(80) is None
    assert s.score(0.9103) == pytest.approx(80) and s.score(1.0) == 100 and s.score(-0.3) == 0
    # an ArcFace-style point at or under 0 still rises monotonically
    t = ScoreScale(card(same=-0.1), "flip")
    assert t.score(-0.1) == pytest.approx(80) and t.score(-1.0) == 0


def test_the_other_variant_is_not_borrowed():
    s = ScoreScale(card({"flip": {"anchors": ANCHORS}}), "single")
    assert not s.calibrated


@pytest.mark.parametrize("anchors", [
    [[-1.0, 0.0], [0.95, 80.0], [0.93, 90.0], [1.0, 100.0]],      # cosine falls
    [[-1.0, 0.0], [0.93, 80.0], [0.95, 80.0], [1.0, 100.0]],      # score flat
    [[-1.0, 0.0], [0.93, 80.0], [1.2, 100.0]],                   # beyond cosine 1
    [[-1.0, 5.0], [0.93, 80.0], [1.0, 100.0]],                   # does not start at 0
    [[-1.0, 0.0], [float("nan"), 80.0], [1.0, 100.0]],
    "not a table", [[0.5]],
])
def test_a_forged_or_broken_calibration_is_refused_with_a_model_error(anchors):
    with pytest.raises(E.EdgeError) as e:
        ScoreScale(card({"flip": {"anchors": anchors}}), "flip")
    assert e.value.code == E.MODEL_IS_EMPTY


# ---- calibration from impostor scores ------------------------------------------------------
def test_measured_anchors_put_exactly_that_share_of_impostors_above():
    rng = np.random.default_rng(1)
    imp = rng.normal(0.0, 0.1, 400_000)
    gen = rng.normal(0.6, 0.1, 2000)
    cal = K.calibration(imp, gen)
    for score, far in SCORE_FAR.items():
        p = cal["points"][str(score)]
        if p["how"] == "measured":
            k = math.floor(far * len(imp))
            assert k - 0.002 * k - 1 <= (imp >= p["cosine"]).sum() <= k
    assert cal["points"]["80"]["how"] == "measured" and cal["points"]["90"]["how"] == "fitted"
    cos = [a[0] for a in cal["anchors"]]
    assert cos[0] == -1.0 and cos[-1] == 1.0 and all(np.diff(cos) > 0)
    ScoreScale(card({"flip": cal}), "flip")                 # what calibrate writes, a card accepts


def test_deeper_rates_come_from_every_pair_then_from_the_fitted_tail():
    rng = np.random.default_rng(2)
    proto = rng.normal(0.0, 0.1, 50_000)
    every = rng.normal(0.0, 0.1, 2_000_000)
    cal = K.calibration(proto, rng.normal(0.6, 0.1, 500), K.Tail.of(every))
    how = {s: p["how"] for s, p in cal["points"].items()}
    assert how["70"] == "measured" and how["80"] == "measured, all pairs" and how["90"] == "measured, all pairs"
    assert cal["points"]["90"]["all_pairs_far"] == pytest.approx(1e-5, rel=0.05)
    # a Gaussian tail thins out faster than the fitted exponential: the fit errs on the safe side
    a, b = cal["tail"]["log10_far"]
    c7 = (math.log10(1e-7) - a) / b
    assert 0.5 * math.erfc(c7 / 0.1 / math.sqrt(2)) < 1e-7


def test_a_kept_tail_counts_like_the_full_list():
    rng = np.random.default_rng(3)
    units = rng.normal(size=(600, 16))
    units /= np.linalg.norm(units, axis=1, keepdims=True)
    labels = [str(i // 4) for i in range(600)]
    t = K.all_pairs_tail(units, labels, floor=0.3)
    full = units @ units.T
    lab = np.array(labels)
    iu = np.triu_indices(600, 1)
    cross = full[iu][(lab[:, None] != lab[None, :])[iu]]
    assert t.n == cross.size
    assert t.far_at(0.5) == pytest.approx((cross >= 0.5).mean())
    assert t.far_at(0.1) is None                           # below the kept tail: not known


def test_too_few_impostor_pairs_is_a_clear_error():
    with pytest.raises(E.EdgeError) as e:
        K.calibration(np.linspace(0, 0.5, 1000), np.ones(10))
    assert e.value.code == E.PARARM_ERROR and "impostor pairs" in e.value.message


# ---- what a threshold means at a library size ----------------------------------------------
def test_expected_fpir_grows_with_the_library_and_the_threshold_for_one_percent():
    from edge.scores import expected_fpir, threshold_for

    s = ScoreScale(card({"flip": {"anchors": ANCHORS, "tail": {"log10_far": [78.0, -86.5]}}}), "flip")
    assert expected_fpir(s, 80, 1) == pytest.approx(1e-4)
    assert expected_fpir(s, 80, 100) == pytest.approx(1 - (1 - 1e-4) ** 100)
    assert expected_fpir(s, 80, 0) == 0.0
    assert expected_fpir(s, 80, 1000) > expected_fpir(s, 80, 100) > expected_fpir(s, 90, 100)
    assert threshold_for(s, 100) == 80.0            # 100 x 1e-4 = 1 % exactly (the decade rule)
    assert threshold_for(s, 10) == 70.0
    t1k, t30k = threshold_for(s, 1000), threshold_for(s, 30000)
    assert 90.0 <= t1k < t30k and expected_fpir(s, t30k, 30000) <= 0.01
    assert expected_fpir(ScoreScale(card(), "flip"), 80, 100) is None
    assert threshold_for(ScoreScale(card(), "flip"), 100) is None
