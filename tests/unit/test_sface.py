"""The SFace adapter and its catalogue entry, on a model with SFace's interface built here
(tests/tiny_models.py): OpenCV's own FaceRecognizerSF runs the same file as the reference, so the
chip, colour order and scaling are checked against what OpenCV does. Fetch and import go through
a loopback server and a folder. The real SFace file is never run here (no network to GitHub)."""
import copy
import hashlib
import http.server
import json
import threading

import cv2
import numpy as np
import pytest

from edge import errors as E
from edge.cli import main
from edge.models import cards, catalogue, fetch, registry
from tests.tiny_models import sface_like

FIVE = np.array([[100, 120], [170, 118], [135, 160], [108, 200], [165, 198]], np.float32)


def _image(seed=0):
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur((rng.random((300, 280, 3)) * 255).astype(np.uint8), (0, 0), 6)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)


def _opencv_feature(model, img, five=FIVE, mirror=False):
    rec = cv2.FaceRecognizerSF.create(str(model), "")
    row = np.concatenate([[80, 80, 120, 150], five.ravel(), [0.9]]).astype(np.float32)[None]
    chip = rec.alignCrop(img, row)
    return rec.feature(np.ascontiguousarray(chip[:, ::-1]) if mirror else chip)[0]


def _install_card(tmp_path, model, **kw):
    card = catalogue.arcface_card("sf", model, catalogue.SFACE_LFW_COSINE, adapter="sface",
                                  normalisation={"mean": 0.0, "std": 1.0}, **kw)
    cards.write_card(tmp_path, card)
    return card


def _cos(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_sface_adapter_gives_opencv_face_recognizer_sf_features(tmp_path):
    model = sface_like(tmp_path / "sf.onnx")
    _install_card(tmp_path, model)
    emb = registry.load(tmp_path, "sf", registry.Runtime(), "embedder", flip=False)
    assert type(emb).name == "sface" and emb.dim == 128 and emb.geometry.size == (112, 112)
    for seed in range(3):
        img = _image(seed)
        ref = _opencv_feature(model, img)
        got = emb(img, None, FIVE).vector
        assert _cos(got, ref) > 0.9999 and np.allclose(got, ref, rtol=0.02, atol=0.5)
    # the check has teeth: ArcFace's scaling or BGR order give other features from the same file
    img = _image(0)
    ref = _opencv_feature(model, img)
    chip = emb.chip(img, None, FIVE)
    arc = emb.run(((chip[None, ..., ::-1].astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2))[0]
    bgr = emb.run(chip[None].astype(np.float32).transpose(0, 3, 1, 2))[0]
    for wrong in (arc, bgr):
        assert np.linalg.norm(wrong - ref) > 0.05 * np.linalg.norm(ref)


def test_flip_runs_a_batch_of_one_model_once_per_chip(tmp_path):
    model = sface_like(tmp_path / "sf.onnx")
    _install_card(tmp_path, model)
    emb = registry.load(tmp_path, "sf", registry.Runtime(), "embedder", flip=True)
    img = _image(1)
    want = (_opencv_feature(model, img) + _opencv_feature(model, img, mirror=True)) / 2
    t = emb(img, None, FIVE)
    assert t.model == "sf@1+flip" and _cos(t.vector, want) > 0.9999


def test_a_card_names_the_embedding_output(tmp_path, capsys):
    model = sface_like(tmp_path / "two.onnx", second_output=True)     # outputs: norm, fc1
    md = tmp_path / "models"
    for chosen in ("fc1", "1"):
        assert main(["--json", "--home", str(tmp_path), "models", "register", "arcface", str(model), "--id", "two",
                     "--same-person-cosine", "0.3", "--embedding-output", chosen, "--models-dir", str(md)]) == 0
        card = json.loads(capsys.readouterr().out)["registered"]
        assert card["embedding_output"] == "fc1" and card["outputs"] == {"norm": "not used", "fc1": "embedding"}
    emb = registry.load(md, "two", registry.Runtime(), "embedder", flip=False)
    v = emb(_image(2), None, FIVE).vector
    assert emb.dim == 128 and abs(np.linalg.norm(v) - 1.0) > 0.1       # fc1, not the normalised copy
    for bad in ("logits", "5"):
        assert main(["--json", "--home", str(tmp_path), "models", "register", "arcface", str(model), "--id", "x",
                     "--same-person-cosine", "0.3", "--embedding-output", bad, "--models-dir", str(md)]) == 1
        err = json.loads(capsys.readouterr().out)
        assert err["errno"] == E.PARARM_ERROR and "fc1" in err["msg"]
    # a card naming an output the file does not have is refused when loaded
    card = cards.read_card(cards.card_path(md, "two"))
    card["embedding_output"] = "gone"
    with pytest.raises(E.EdgeError) as e:
        registry.create(card, registry.Runtime(), "embedder")
    assert e.value.code == E.MODEL_IS_EMPTY and "norm" in e.value.message


def _nhwc_model(path):
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Transpose", ["input"], ["t"], perm=[0, 3, 1, 2]),
             helper.make_node("GlobalAveragePool", ["t"], ["g"]),
             helper.make_node("Flatten", ["g"], ["emb"])]
    g = helper.make_graph(nodes, "nhwc", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 112, 112, 3])],
                          [helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["N", 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def test_register_writes_the_shape_the_model_declares(tmp_path, capsys):
    model = _nhwc_model(tmp_path / "nhwc.onnx")
    md = tmp_path / "models"
    args = ["--json", "--home", str(tmp_path), "models", "register", "arcface", str(model), "--id", "n",
            "--same-person-cosine", "0.4", "--models-dir", str(md)]
    assert main(args + ["--layout", "NHWC RGB"]) == 0
    card = json.loads(capsys.readouterr().out)["registered"]
    assert card["input"]["shape"] == ["N", 112, 112, 3]
    emb = registry.load(md, "n", registry.Runtime(), "embedder", flip=False)
    assert emb.geometry.layout == "NHWC" and emb.geometry.size == (112, 112)
    chip = np.zeros((112, 112, 3), np.uint8)
    chip[..., 2] = 255                                      # red in BGR
    assert np.allclose(emb.embed_chips(chip[None])[0], [1.0, -1.0, -1.0])   # RGB order, (x - 127.5) / 127.5
    # the NCHW default contradicts the file: refused, saying what to give instead
    assert main(args) == 1
    err = json.loads(capsys.readouterr().out)
    assert err["errno"] == E.PARARM_ERROR and "NHWC" in err["msg"]


# ---- fetch and import ------------------------------------------------------------------------
class _Serve(http.server.BaseHTTPRequestHandler):
    files: dict = {}

    def do_GET(self):
        data = self.files.get(self.path.rsplit("/", 1)[-1])
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Serve)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_the_catalogue_pins_the_published_sface_file():
    spec = catalogue.CATALOGUE["sface"]["files"][0]
    assert spec["name"] == "face_recognition_sface_2021dec.onnx"
    assert spec["sha256"] == "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79"
    assert spec["url"].startswith("https://media.githubusercontent.com/media/opencv/opencv_zoo/")
    assert catalogue.CATALOGUE["sface"]["licence"].startswith("Apache-2.0")


def test_fetch_refuses_any_other_file_under_the_published_name(tmp_path, server):
    name = catalogue.CATALOGUE["sface"]["files"][0]["name"]
    _Serve.files = {name: sface_like(tmp_path / "x.onnx").read_bytes()}
    md = tmp_path / "models"
    with pytest.raises(E.EdgeError) as e:
        fetch.fetch("sface", md, mirror=server, quiet=True)
    assert e.value.code == E.MODEL_IS_EMPTY and "sha256" in e.value.message
    assert sorted(p.name for p in md.rglob("*") if p.is_file()) == []


@pytest.fixture
def tiny_entry(tmp_path, monkeypatch):
    """The sface entry pinned to a file of the same interface (the published one is 38.7 MB on
    GitHub, out of reach here): the install path is the real one."""
    model = sface_like(tmp_path / "face_recognition_sface_2021dec.onnx")
    entry = copy.deepcopy(catalogue.CATALOGUE["sface"])
    entry["files"][0]["sha256"] = hashlib.sha256(model.read_bytes()).hexdigest()
    monkeypatch.setitem(catalogue.CATALOGUE, "sface", entry)
    return model


def test_fetch_installs_sface_with_its_adapter_card(tmp_path, server, tiny_entry):
    _Serve.files = {tiny_entry.name: tiny_entry.read_bytes()}
    md = tmp_path / "models"
    [card] = fetch.fetch("sface", md, mirror=server, quiet=True)
    assert card["id"] == "sface" and card["adapter"] == "sface" and card["version"] == "2021dec"
    assert card["input"]["shape"] == [1, 3, 112, 112] and card["input"]["mean"] == 0.0
    assert card["embedding_output"] == "fc1" and card["metric"]["same_person_cosine"] == 0.363
    emb = registry.load(md, "sface", registry.Runtime(), "embedder", flip=False)
    img = _image(3)
    assert _cos(emb(img, None, FIVE).vector, _opencv_feature(md / "sface.onnx", img)) > 0.9999
    # uncalibrated: OpenCV's LFW point is 80 and no false-accept rate is claimed
    assert emb.score(0.363) == pytest.approx(80.0) and emb.scale.far(80) is None


def test_import_takes_sface_from_a_folder(tmp_path, tiny_entry, capsys):
    usb = tmp_path / "usb"
    usb.mkdir()
    (usb / "renamed.onnx").write_bytes(tiny_entry.read_bytes())     # recognised by its sha256
    md = tmp_path / "models"
    assert main(["--json", "--home", str(tmp_path), "models", "import", str(usb), "sface", "--models-dir", str(md)]) == 0
    assert json.loads(capsys.readouterr().out)["installed"][0]["id"] == "sface"
    assert (md / "sface.onnx").read_bytes() == tiny_entry.read_bytes()
