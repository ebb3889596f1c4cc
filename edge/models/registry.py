"""One adapter contract and one registry for every model role.

A model is an ONNX file described by a card (``cards.py``). An *adapter* is the small class that
knows one model family: how to turn a frame (and, for every role but the detector, a face) into
the model's input, and its output into plain values. Every role has the same shape:

- ``role`` / ``name``: the registry keys (``@register("embedder", "arcface")``);
- ``__init__(card, runtime, **options)``: load from a card, with onnxruntime's providers and
  threads from the configuration (``Runtime``), never hard-coded;
- ``geometry``: the input it declares (size, layout, colour order, how the crop is made), read
  from the card, so a user-supplied model of a known family needs a card, not code;
- ``__call__``: detector ``(image, score_thr, nms_iou) -> [Detection]``; landmarks
  ``(image, detection) -> Mesh``; embedder ``(image, dlib5, five) -> Template``; anti-spoof
  ``(image, face box, landmarks) -> real-probability 0..1``.

A card names its role (``kind``) and its adapter (``adapter``); cards written before adapters
were named are recognised by the fields their builder wrote.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

from .. import errors as E
from . import cards

ROLES = ("detector", "landmarks", "embedder", "antispoof")
# where each role's adapters live; imported on first use so the registry fills itself
_MODULES = {"detector": "edge.detect", "landmarks": "edge.landmarks", "embedder": "edge.embed",
            "antispoof": "edge.liveness.antispoof"}
_REGISTRY: dict[str, dict[str, type]] = {r: {} for r in ROLES}


@dataclass(frozen=True)
class Runtime:
    """How onnxruntime runs every model: execution providers in order of preference (an NPU's
    provider first, CPU last) and intra-op threads (gate terminals share their cores)."""
    threads: int = 1
    providers: tuple[str, ...] = ("CPUExecutionProvider",)

    @classmethod
    def from_config(cls, cfg) -> "Runtime":
        return cls(cfg.threads, tuple(cfg.providers))


@dataclass(frozen=True)
class Geometry:
    """The input a model declares: what a frontend must produce for it."""
    size: tuple[int, int] | None          # (width, height); None = any size (e.g. YuNet)
    layout: str = "NCHW"
    colour: str = "RGB"
    crop: str = ""                        # how the face region is cut, in words and numbers
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_card(cls, card: dict, crop: str = "", **extra) -> "Geometry":
        inp = card.get("input", {})
        shape = inp.get("shape") or []
        layout = "NHWC" if "NHWC" in inp.get("layout", "") else "NCHW"
        dims = shape[1:3] if layout == "NHWC" else shape[2:4]
        size = (int(dims[1]), int(dims[0])) if len(dims) == 2 and all(isinstance(d, int) for d in dims) else None
        colour = "BGR" if "BGR" in inp.get("layout", "") else "RGB"
        return cls(size, layout, colour, crop or inp.get("alignment") or inp.get("resize", ""), dict(extra))


def register(role: str, name: str):
    """Class decorator: ``@register("detector", "yunet")``."""
    if role not in ROLES:
        raise ValueError(f"unknown model role {role!r}")

    def deco(cls):
        cls.role, cls.name = role, name
        _REGISTRY[role][name] = cls
        return cls
    return deco


def adapters(role: str) -> dict[str, type]:
    importlib.import_module(_MODULES[role])
    return dict(_REGISTRY[role])


def _legacy_adapter(card: dict) -> str | None:
    """Cards built before adapters were named: infer from what their builder wrote."""
    if card.get("kind") == "detector":
        return "blazeface" if "anchors" in card else "yunet"
    if card.get("kind") == "landmarks":
        return "facemesh"
    if card.get("kind") == "embedder":
        return "dlib" if card.get("converter") == "dlib" else "arcface"
    return None


def create(card: dict, runtime: Runtime, role: str, **options):
    """The adapter for ``card`` in ``role``; -4 MODEL_IS_EMPTY when the card is for another role
    or names an adapter this build does not have."""
    kind = card.get("kind")
    if kind is not None and kind != role:
        raise E.EdgeError(E.MODEL_IS_EMPTY, f"model {card.get('id')} is a {kind}, not a {role}: check the "
                          "model id in the configuration")
    name = card.get("adapter") or _legacy_adapter(dict(card, kind=role))
    known = adapters(role)
    if not isinstance(name, str) or name not in known:
        raise E.EdgeError(E.MODEL_IS_EMPTY, f"model card {card.get('id')}: unknown {role} adapter {name!r} "
                          f"(known: {', '.join(sorted(known))})")
    try:
        return known[name](card, runtime, **options)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as e:
        # a field the adapter needs is missing or of the wrong kind (edited or damaged card)
        raise E.EdgeError(E.MODEL_IS_EMPTY, f"model card {card.get('id')} is malformed ({type(e).__name__}: "
                          f"{e}): run `edge models build`, or register the model again") from None


def load(models_dir: Path, model_id: str, runtime: Runtime, role: str, **options):
    """Read ``<models_dir>/<model_id>.json`` and build its adapter."""
    return create(cards.read_card(cards.card_path(models_dir, model_id)), runtime, role, **options)
