"""A model card edited by hand or damaged on disk is the documented model error (-4, "run `edge
models build`"), never "unexpected error (TypeError …)". Runs a tiny ONNX embedder built here."""
import copy
import json

import pytest

from edge import errors as E
from edge.models import cards, registry
from tests.unit.test_registry import _pooling_embedder

BAD = [None, "x", "", [], {}, 5, 1e308, [1, "a"], {"a": 1}]
FIELDS = [("id",), ("file",), ("sha256",), ("adapter",), ("input",), ("input", "shape"), ("input", "layout"),
          ("outputs",), ("metric",), ("metric", "calibration"), ("metric", "same_person_cosine")]


@pytest.fixture
def good(tmp_path):
    f = tmp_path / "tiny.onnx"
    _pooling_embedder(f)
    return {"id": "tiny", "kind": "embedder", "adapter": "arcface", "file": str(f), "sha256": cards.sha256_file(f),
            "input": {"layout": "NCHW RGB", "shape": ["N", 3, 112, 112]}, "outputs": {"embedding": "[N, 8]"},
            "metric": {"kind": "cosine", "same_person_cosine": 0.5}}


def _set(card, keys, value):
    d = card
    for k in keys[:-1]:
        d = d[k]
    d[keys[-1]] = value


@pytest.mark.parametrize("keys", FIELDS, ids=".".join)
def test_a_damaged_card_field_is_the_model_error(tmp_path, good, keys):
    # before: 126 of 522 such edits of the pack's own cards answered SYSTEM_ERROR "unexpected error"
    for value in BAD:
        card = copy.deepcopy(good)
        _set(card, keys, value)
        (tmp_path / "tiny.json").write_text(json.dumps(card))
        try:
            registry.load(tmp_path, "tiny", registry.Runtime(), "embedder", flip=False)
        except E.EdgeError as e:
            assert e.code in (E.MODEL_IS_EMPTY, E.NN_CREATE_FAILED), (keys, value, e)
            assert e.message.startswith("model "), e.message          # names the card or file
        # a value the adapter can use (e.g. another id) may load; anything else is the model error


def test_a_card_that_is_not_an_object_is_the_model_error(tmp_path):
    for text in ("[1, 2]", "5", "null", '"card"'):
        (tmp_path / "tiny.json").write_text(text)
        with pytest.raises(E.EdgeError) as e:
            registry.load(tmp_path, "tiny", registry.Runtime(), "embedder")
        assert e.value.code == E.MODEL_IS_EMPTY and "edge models build" in e.value.message
