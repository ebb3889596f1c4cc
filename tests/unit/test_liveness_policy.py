"""Liveness policy without models or photos: configuration, levels, the multi-frame decision
(fed by plain score functions), upstream's crop box, the NIR calibration fit, the depth relief
fit and the error-rate arithmetic of `edge eval liveness`."""
import numpy as np
import pytest

from edge import config as C
from edge import errors as E
from edge.liveness import LivenessStage, levels, make
from edge.liveness.antispoof import scaled_box
from edge.liveness.calibrate import fit
from edge.liveness.depth import relief
from edge.liveness.nir import appearance
from edge.sources import Frame


def _cfg(**liveness):
    cfg = C.Config()
    cfg.camera.second_kind, cfg.camera.second_uri = "opencv", "1"     # NIR / depth modes need one
    for k, v in liveness.items():
        setattr(cfg.liveness, k, v)
    return cfg.validate()


@pytest.mark.parametrize("mode", ["none", "rgb", "nir", "depth", "rgb+nir", "rgb+depth", "rgb+nir+depth", "action",
                                  "rgb+action"])
def test_modes_of_the_offline_sdk_and_action(mode):
    assert _cfg(mode=mode).liveness.parts == (() if mode == "none" else tuple(mode.split("+")))


@pytest.mark.parametrize("bad", [{"mode": "rgb+rgb"}, {"mode": "sonar"}, {"mode": ""}, {"level": "MEDIUM"},
                                 {"threshold": 1.5}, {"frames": 0}, {"nir_offset": [1.0]}, {"nir_scale": 0.0},
                                 {"depth_min_mm": 3000, "depth_max_mm": 200}, {"rgb_models": []}])
def test_bad_liveness_configuration_is_refused(bad):
    with pytest.raises(E.EdgeError) as e:
        _cfg(**bad)
    assert e.value.code == E.PARARM_ERROR


def test_a_dual_camera_mode_without_the_second_camera_is_refused():
    cfg = C.Config()
    cfg.liveness.mode = "rgb+depth"
    with pytest.raises(E.EdgeError) as e:
        cfg.validate()
    assert e.value.code == E.PARARM_ERROR and "camera.second_kind" in e.value.message


def test_bad_action_configuration_is_refused(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[liveness]\nmode = "rgb+action"\n[liveness.action]\nactions = ["blink", "wink"]\n')
    with pytest.raises(E.EdgeError) as e:
        C.load(p)
    assert "wink" in e.value.message


def test_levels_map_to_thresholds_and_overrides_win():
    lc = _cfg(mode="rgb+nir", level="HIGH").liveness
    assert levels.threshold(lc, "rgb") == 0.8 and levels.threshold(lc, "nir") == 0.8
    lc.level = "NORMAL"
    assert levels.threshold(lc, "rgb") == 0.5
    lc.threshold = 0.65
    assert levels.threshold(lc, "rgb") == 0.65 and levels.threshold(lc, "nir") == 0.5
    # the v3 API's LOW (0.05) would pass both published attacks (MiniFASNet scores them 0.05-0.06)
    assert levels.THRESHOLDS["rgb"]["LOW"] > 0.064


def _stage(scores: dict, **liveness):
    """A stage whose checks answer from lists of scores, one per judged frame."""
    it = {p: iter(v) for p, v in scores.items()}
    checks = {p: (lambda image, face, paired, p=p: (next(it[p]), {})) for p in scores}
    return LivenessStage(_cfg(mode="+".join(scores), **liveness), checks=checks)


def _judge(stage, n):
    history, out = {}, []
    for i in range(n):
        r = stage(Frame(np.zeros((4, 4, 3), np.uint8), i / 25, i), None, history)
        out.append("pending" if r.pending else "passed" if r.passed else "failed")
    return out


def test_multi_frame_decision_waits_then_decides_on_the_mean():
    # a live face with one weak frame: the mean of two frames passes
    assert _judge(_stage({"rgb": [0.45, 0.9, 0.95]}, frames=2), 3) == ["pending", "passed", "passed"]
    # an attack with one lucky frame: pending, then failed
    assert _judge(_stage({"rgb": [0.7, 0.1, 0.2]}, frames=2), 3) == ["pending", "failed", "failed"]
    # a single frame decides at once when frames = 1
    assert _judge(_stage({"rgb": [0.45]}, frames=1), 1) == ["failed"]
    # NONE refuses nothing and never waits
    assert _judge(_stage({"rgb": [0.01, 0.01]}, frames=2, level="NONE"), 2) == ["passed", "passed"]


def test_every_enabled_check_must_pass():
    stage = _stage({"rgb": [0.9, 0.9], "nir": [0.9, 0.1]}, frames=1)
    assert _judge(stage, 2) == ["passed", "failed"]
    history = {}
    stage = _stage({"rgb": [0.9], "depth": [0.2]}, frames=1)
    r = stage(Frame(np.zeros((4, 4, 3), np.uint8), 0, 0), None, history)
    assert not r.passed and r.detail["rgb"]["passed"] and not r.detail["depth"]["passed"] and r.score == 0.2


def test_mode_none_passes_everything():
    r = make(C.Config())(Frame(np.zeros((4, 4, 3), np.uint8), 0, 0), None, {})
    assert r.passed and r.kind == "none"


def test_upstream_crop_box_rules():
    # inside: scaled about the centre (int() truncation)
    assert scaled_box(640, 480, (270, 190, 100, 100), 2.7) == (185, 105, 455, 375)
    # near the left/top edge: shifted inside, same size
    assert scaled_box(640, 480, (10, 5, 100, 100), 2.7) == (0, 0, 270, 270)
    # near the right/bottom edge
    assert scaled_box(640, 480, (560, 400, 70, 70), 2.7) == (450, 290, 639, 479)
    # larger than the image allows: the scale shrinks to fit the height
    l, t, r, b = scaled_box(640, 480, (220, 140, 200, 200), 4.0)
    assert (t, b) == (0, 479) and r - l == 479
    with pytest.raises(E.EdgeError):
        scaled_box(640, 480, (10, 10, 0, 20), 2.7)


def test_nir_calibration_fit_recovers_scale_and_offset():
    rng = np.random.default_rng(0)
    rgb = [rng.uniform(50, 600, (5, 2)) for _ in range(8)]
    pairs = [(p, p * 0.96 + [31.0, -12.5] + rng.normal(0, 0.3, p.shape)) for p in rgb]
    r = fit(pairs)
    assert r["nir_scale"] == pytest.approx(0.96, abs=2e-3)
    assert r["nir_offset"] == pytest.approx([31.0, -12.5], abs=0.5) and r["residual_px_median"] < 1.0


def test_depth_relief_tells_a_face_from_planes_and_bent_sheets():
    rng = np.random.default_rng(1)
    xy = rng.uniform(-60, 60, (300, 2))
    nose = 25 * np.exp(-(xy ** 2).sum(1) / (2 * 12 ** 2))               # a bump where a nose is
    sockets = 8 * (np.exp(-((xy - [-25, -20]) ** 2).sum(1) / 80) + np.exp(-((xy - [25, -20]) ** 2).sum(1) / 80))
    face_z = -nose + sockets + 0.004 * (xy ** 2).sum(1)                  # plus the head's roundness
    noise = lambda: rng.normal(0, 1.5, len(xy))
    live = relief(600 + face_z + noise(), face_z, xy)
    assert live["shape"] > 0.8 and live["relief_mm"] > 3
    for sheet in (600 + 0.3 * xy[:, 0], 600 + 0.006 * xy[:, 0] ** 2, 600 + 0.004 * (xy ** 2).sum(1)):
        fake = relief(sheet + noise(), face_z, xy)
        assert fake["shape"] < 0.3 and fake["relief_mm"] < 1.5


def test_nir_appearance_of_a_dark_flat_panel_and_of_a_face():
    rng = np.random.default_rng(2)
    panel = np.clip(12 + rng.normal(0, 2, (200, 200)), 0, 255).astype(np.uint8)
    face = np.full((200, 200), 150, np.uint8)
    face[70:85, 50:90] = face[70:85, 110:150] = 40                       # eyes and brows
    face[140:150, 80:120] = 90
    a, b = appearance(panel, (40, 40, 120, 120)), appearance(face, (40, 40, 120, 120))
    assert a["mean"] < 20 and b["mean"] > 100 and b["contrast"] > 0.12


def test_eval_rates():
    from edge_tools.eval_liveness import _rates

    rows = [{"sample": f"s{i}", "label": "spoof", "NORMAL": i < 1} for i in range(4)] + \
           [{"sample": f"r{i}", "label": "real", "NORMAL": i < 9} for i in range(10)] + \
           [{"sample": "nf", "label": "real", "NORMAL": None}]
    r = _rates(rows, "NORMAL")
    assert (r["attacks"], r["attacks_accepted"], r["APCER"]) == (4, 1, 25.0)
    assert (r["bona_fide"], r["bona_fide_refused"], r["BPCER"], r["ACER"]) == (10, 1, 10.0, 17.5)
