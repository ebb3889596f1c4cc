"""The MiniFASNet anti-spoof models: converted from the published .pth files without PyTorch, they
reproduce the logits the upstream code (PyTorch 1.12.1) produced on every reference crop in
../shared/models/minifasnet-reference, and edge's crop reproduces upstream's crop boxes and pixels;
a user-supplied anti-spoof model plugs in through a card."""
import hashlib
import json

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from edge.liveness.antispoof import scaled_box
from edge.models import minifasnet_convert as M
from edge.models import registry
from tests.conftest import SHARED

REF = SHARED / "models" / "minifasnet-reference"
FILES = {"MiniFASNetV2": "2.7_80x80_MiniFASNetV2.pth", "MiniFASNetV1SE": "4_0_0_80x80_MiniFASNetV1SE.pth"}
IDS = {"MiniFASNetV2": "minifasnet_v2", "MiniFASNetV1SE": "minifasnet_v1se"}


def _runs():
    ref = json.loads((REF / "reference.json").read_text())
    for im in ref["images"]:
        for source, runs in im["runs"].items():
            for r in runs:
                for model, v in r["models"].items():
                    yield im, source, r, model, v


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    d = tmp_path_factory.mktemp("minifasnet")
    out = {}
    for model, name in FILES.items():
        info = M.convert(SHARED / "models" / name, d / f"{model}.onnx", model)
        assert info == {"input_hw": [80, 80], "classes": 3}
        out[model] = ort.InferenceSession(str(d / f"{model}.onnx"), providers=["CPUExecutionProvider"])
    return out


def test_converted_models_reproduce_the_reference_logits(converted):
    worst, n = 0.0, 0
    for _, _, _, model, v in _runs():
        crop = cv2.imread(str(REF / v["crop_png"]), cv2.IMREAD_UNCHANGED)       # BGR 0..255, as fed upstream
        logits = converted[model].run(None, {"input": crop.astype(np.float32).transpose(2, 0, 1)[None]})[0][0]
        worst = max(worst, float(np.abs(logits - np.array(v["logits"])).max()))
        n += 1
    assert n == 110 and worst < 1e-4, (n, worst)


def test_crops_are_upstreams_box_for_box_and_pixel_for_pixel(antispoof_models):
    adapters = {m: registry.load(antispoof_models, i, registry.Runtime(), "antispoof") for m, i in IDS.items()}
    n = 0
    for im, source, r, model, v in _runs():
        key = im["key"]
        # cv2.imread turns the spoof JPEGs upright (EXIF orientation 6), as the references were made
        img = cv2.imread(str(SHARED / ("faces" if key.startswith("public") else "") / key))
        a = adapters[model]
        assert list(scaled_box(img.shape[1], img.shape[0], r["box_xywh"], a.scale)) == v["crop_box_ltrb"], (key, source)
        crop = a.crop(img, r["box_xywh"])
        assert hashlib.sha256(crop.tobytes()).hexdigest() == v["crop_sha256"], (key, source, model)
        assert a(img, r["box_xywh"]) == pytest.approx(v["p_real"], abs=1e-4)
        n += 1
    assert n == 110


def test_adapter_declares_its_geometry_from_the_card(antispoof_models):
    a = registry.load(antispoof_models, "minifasnet_v1se", registry.Runtime(threads=1), "antispoof")
    assert type(a).role == "antispoof" and type(a).name == "minifasnet"
    assert a.geometry.size == (80, 80) and a.geometry.colour == "BGR" and a.geometry.extra["crop_scale"] == 4.0
    assert a.real_index == 1 and a.activation == "softmax"


def test_a_user_supplied_antispoof_model_plugs_in_through_a_card(antispoof_models, tmp_path, capsys):
    """`edge models register antispoof` writes the card; the same network under that card scores
    the same, and a card that says RGB where the network wants BGR does not."""
    from edge.cli import main

    f = str(antispoof_models / "minifasnet_v2.onnx")
    md = str(tmp_path / "m")
    assert main(["--json", "models", "register", "antispoof", f, "--id", "mine", "--crop-scale", "2.7",
                 "--layout", "NCHW BGR", "--models-dir", md]) == 0
    assert main(["--json", "models", "register", "antispoof", f, "--id", "mine_rgb", "--crop-scale", "2.7",
                 "--models-dir", md]) == 0
    assert main(["--json", "models", "register", "antispoof", f, "--id", "x", "--models-dir", md]) == 1
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["errno"] == -1002      # --crop-scale missing
    img = cv2.imread(str(SHARED / "spoof" / "image_F1.jpg"))
    box = [165.4, 148.9, 194.1, 194.1]
    ours = registry.load(antispoof_models, "minifasnet_v2", registry.Runtime(), "antispoof")(img, box)
    mine = registry.load(tmp_path / "m", "mine", registry.Runtime(), "antispoof")(img, box)
    swapped = registry.load(tmp_path / "m", "mine_rgb", registry.Runtime(), "antispoof")(img, box)
    assert mine == pytest.approx(ours, abs=1e-6) and abs(swapped - ours) > 1e-3
