"""Configuration and sources without models or photos."""
import numpy as np
import pytest

from edge import sources as S
from edge.config import QualityConfig
from tests.conftest import frames


def test_bad_quality_config_is_refused():
    from edge import config as C
    from edge import errors as E

    with pytest.raises(E.EdgeError) as e:
        QualityConfig(preset="MEDIUM").validate()
    assert e.value.code == E.PARARM_ERROR and "LOW, NORMAL, HIGH" in e.value.message
    with pytest.raises(E.EdgeError):
        C.Config(quality=QualityConfig(max_yaw=120)).validate()


def test_shipped_profiles_load():
    from pathlib import Path

    from edge import config as C

    profiles = sorted((Path(__file__).resolve().parents[2] / "config").glob("*.toml"))
    modes = {p.stem: C.load(p).decision.mode for p in profiles}
    assert modes["gate"] == "gate" and modes["attendance"] == "attendance" and modes["verify"] == "verify"


def test_rgb_and_nir_frames_pair_by_timestamp():
    rgb = S.Replay([np.full((4, 4, 3), i, np.uint8) for i in range(10)], fps=10)
    nir = S.Replay([np.full((4, 4, 3), 100 + i, np.uint8) for i in range(20)], fps=20)
    got = [(int(f.image[0, 0, 0]), int(f.paired[0, 0, 0])) for f in frames(S.Paired(rgb, nir, max_skew=0.03))]
    # NIR runs twice as fast: RGB frame i (t = i/10) pairs with NIR frame 2i (t = 2i/20)
    assert got and all(n == 100 + 2 * r for r, n in got)


def test_precision_selects_int8_cards_and_refuses_other_values(tmp_path):
    from edge import config as C
    from edge import errors as E
    from edge.models.quantize import variant

    p = tmp_path / "c.toml"
    p.write_text('precision = "int8"\n')
    assert C.load(p).precision == "int8"
    assert variant("blazeface_full", "int8") == "blazeface_full_int8"
    assert variant("dlib_resnet_int8", "int8") == "dlib_resnet_int8"      # already a variant
    assert variant("facemesh", "float") == "facemesh"
    p.write_text('precision = "fp16"\n')
    with pytest.raises(E.EdgeError) as e:
        C.load(p)
    assert e.value.code == E.PARARM_ERROR and "precision" in e.value.message
