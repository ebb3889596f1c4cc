"""The model registry: one adapter contract per role, cards checked against roles, onnxruntime
providers and threads from the configuration. Runs tiny ONNX graphs built here with the onnx
helper API (no model pack needed)."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edge import config as C
from edge import errors as E
from edge.models import cards, registry


def _pooling_embedder(path, dim=8):
    """112x112x3 -> [N, dim]: average-pool to 2x2 per channel, flatten, project with fixed
    weights. A real graph run by onnxruntime, small enough to build in a test."""
    rng = np.random.default_rng(0)
    w = helper.make_tensor("w", TensorProto.FLOAT, [12, dim], rng.standard_normal((12, dim)).astype(np.float32).ravel())
    nodes = [helper.make_node("AveragePool", ["input"], ["p"], kernel_shape=[56, 56], strides=[56, 56]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("MatMul", ["f", "w"], ["embedding"])]
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 112, 112])],
                          [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", dim])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)


@pytest.fixture
def card(tmp_path):
    f = tmp_path / "tiny.onnx"
    _pooling_embedder(f)
    c = {"id": "tiny", "kind": "embedder", "adapter": "arcface", "file": str(f), "sha256": cards.sha256_file(f),
         "input": {"layout": "NCHW RGB", "shape": ["N", 3, 112, 112]}, "outputs": {"embedding": "[N, 8]"},
         "metric": {"kind": "cosine", "same_person_cosine": 0.5}}
    cards.write_card(tmp_path, c)
    return cards.read_card(cards.card_path(tmp_path, "tiny"))


def test_adapter_declares_geometry_and_runs(card, tmp_path):
    emb = registry.load(tmp_path, "tiny", registry.Runtime(threads=1), "embedder", flip=False)
    assert type(emb).name == "arcface" and type(emb).role == "embedder"
    assert emb.geometry.size == (112, 112) and emb.geometry.layout == "NCHW" and emb.geometry.colour == "RGB"
    assert emb.dim == 8
    img = np.zeros((200, 200, 3), np.uint8)
    img[:, 100:] = 255                          # right half white: the pooled quadrants differ
    five = np.array([[70, 90], [130, 90], [100, 120], [75, 150], [125, 150]], float)
    t = emb(img, five, five)
    assert t.vector.shape == (8,) and np.isfinite(t.vector).all() and np.abs(t.vector).sum() > 0
    assert t.model == "tiny@1"


def test_card_of_another_role_or_unknown_adapter_is_refused(card):
    with pytest.raises(E.EdgeError) as e:
        registry.create(card, registry.Runtime(), "detector")
    assert e.value.code == E.MODEL_IS_EMPTY and "is a embedder, not a detector" in e.value.message
    with pytest.raises(E.EdgeError) as e:
        registry.create(dict(card, adapter="nosuch"), registry.Runtime(), "embedder")
    assert e.value.code == E.MODEL_IS_EMPTY and "arcface" in e.value.message and "dlib" in e.value.message


def test_providers_come_from_the_configuration(card):
    with pytest.raises(E.EdgeError) as e:
        cards.session(card, registry.Runtime(providers=("NoSuchNpuExecutionProvider", "CPUExecutionProvider")))
    assert e.value.code == E.NN_CREATE_FAILED and "CPUExecutionProvider" in e.value.message
    sess = cards.session(card, registry.Runtime(threads=2))
    assert sess.get_providers() == ["CPUExecutionProvider"]
    cfg = C.Config()
    cfg.threads, cfg.providers = 3, ["CPUExecutionProvider"]
    assert registry.Runtime.from_config(cfg.validate()) == registry.Runtime(3, ("CPUExecutionProvider",))
    for bad in ([], ["cpu"], [1]):
        cfg.providers = bad
        with pytest.raises(E.EdgeError):
            cfg.validate()


def test_every_role_has_its_built_in_adapters():
    assert {"blazeface", "yunet"} <= set(registry.adapters("detector"))
    assert "facemesh" in registry.adapters("landmarks")
    assert {"dlib", "arcface"} <= set(registry.adapters("embedder"))
