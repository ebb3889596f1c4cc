"""The pack's own detector card, damaged: the model error, not a crash on the first frame."""
import json
import os

import pytest

from edge import errors as E
from edge.models import registry


@pytest.mark.parametrize("anchors", [{"strides": [4], "per_cell": 0}, {"strides": [4, "a"], "per_cell": 1},
                                     {"strides": [8], "per_cell": 1}, {"strides": 4, "per_cell": 1}])
def test_damaged_detector_anchors_are_the_model_error(models_dir, tmp_path, anchors):
    # before: per_cell 0 loaded and failed on the first frame with IndexError ("unexpected error");
    # stride 8 built 576 anchors for the model's 2,304 outputs
    card = json.loads((models_dir / "blazeface_full.json").read_text())
    os.symlink(models_dir / card["file"], tmp_path / card["file"])
    (tmp_path / "blazeface_full.json").write_text(json.dumps(card | {"anchors": anchors}))
    with pytest.raises(E.EdgeError) as e:
        registry.load(tmp_path, "blazeface_full", registry.Runtime(), "detector")
    assert e.value.code == E.MODEL_IS_EMPTY and "blazeface_full" in e.value.message
