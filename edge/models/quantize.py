"""`edge models quantize`: int8 variants of the detector, the landmark model and the embedder.

onnxruntime static quantisation in QDQ format (QuantizeLinear/DequantizeLinear pairs around
each quantised operator: the form onnxruntime's ARM64 and x86 kernels fuse into int8
convolutions), weights int8 per output channel, activations uint8 (u8s8: the pair both
onnxruntime's x86 VNNI/AVX2 and ARM64 NEON/dot-product kernels are fastest on). Activation
ranges are calibrated on what the float pipeline itself feeds each model: the whole photos
(letterboxed) for the detector, the rotated face regions for FaceMesh, the aligned chips (and
their mirror images) for the embedder, from a folder of real faces (``../shared/faces/public``
in development, the demo photos on a device).

Each variant is another model card, ``<id>_int8``, with the float card's adapter, geometry and
metric, and ``precision = "int8"`` in the configuration selects them all (``variant``).
"""
from __future__ import annotations

import copy
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import cards
from .. import errors as E

log = logging.getLogger("edge.models")

SUFFIX = "_int8"
RECIPE = 2            # bump when the quantisation settings change: cards of older recipes are redone
# the float models the pipeline runs and gets an int8 variant of
ROLES = ("detector", "landmarks", "embedder")


def variant(model_id: str, precision: str) -> str:
    """The id the configuration's ``precision`` selects for a float model id."""
    if precision == "int8" and not model_id.endswith(SUFFIX):
        return model_id + SUFFIX
    return model_id


class _Recorder:
    """Stands in front of a real onnxruntime session and keeps a copy of every input it is fed."""

    def __init__(self, sess, limit: int):
        self.sess, self.limit, self.feeds = sess, limit, []

    def run(self, outputs, feed, *a, **kw):
        if len(self.feeds) < self.limit:
            self.feeds.append({k: np.array(v, copy=True) for k, v in feed.items()})
        return self.sess.run(outputs, feed, *a, **kw)

    def __getattr__(self, name):
        return getattr(self.sess, name)


def calibration_inputs(cfg, images: list[Path], limit: int = 400, progress=True) -> dict[str, list[dict]]:
    """Run the float pipeline over ``images`` and collect each model's real inputs, per role."""
    import cv2

    from .. import image as I
    from ..faces import FaceAnalyzer

    an = FaceAnalyzer(cfg)
    rec = {"detector": _Recorder(an.detector.sess, limit), "landmarks": _Recorder(an.mesh.sess, limit),
           "embedder": _Recorder(an.embedder.sess, limit)}
    an.detector.sess, an.mesh.sess, an.embedder.sess = rec["detector"], rec["landmarks"], rec["embedder"]
    for n, f in enumerate(images):
        if progress:
            sys.stderr.write(f"\rquantize: calibration image {n + 1}/{len(images)}")
        try:
            img = I.load(f)
        except E.EdgeError:
            continue
        for view in (img, cv2.flip(img, 1)):      # mirrored: faces turned the other way
            for face in an.detect(view):
                an.template(view, face)
    if progress:
        sys.stderr.write("\n")
    ids = {"detector": an.detector.card["id"], "landmarks": an.mesh.card["id"], "embedder": an.embedder.card["id"]}
    return {ids[r]: rec[r].feeds for r in ROLES}


class _Reader:
    def __init__(self, feeds: list[dict]):
        self.it = iter(feeds)

    def get_next(self):
        return next(self.it, None)


def _opset13(src: Path, tmp: Path) -> Path:
    """Per-channel DequantizeLinear (its ``axis``) needs opset 13; tflite2onnx writes opset 11."""
    import onnx
    from onnx import version_converter

    m = onnx.load(str(src))
    if next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), 13) >= 13:
        return src
    out = tmp / "opset13.onnx"
    onnx.save(version_converter.convert_version(m, 13), str(out))
    return out


def _head_nodes(model) -> list[str]:
    """The prediction heads: from each graph output back through shape-only nodes to (and with)
    the last Conv / MatMul. They stay float: BlazeFace short-range concatenates two heads whose
    logits then share one int8 scale, and every anchor came out a face (measured: ~400
    detections per photo instead of 1)."""
    prod = {o: n for n in model.graph.node for o in n.output}
    names, stack = [], [prod.get(o.name) for o in model.graph.output]
    while stack:
        n = stack.pop()
        if n is None or n.name in names:
            continue
        names.append(n.name)
        if n.op_type not in ("Conv", "MatMul", "Gemm"):
            stack += [prod[i] for i in n.input if i in prod]
    return names


def quantize_model(src: Path, dst: Path, feeds: list[dict], per_channel: bool = True) -> dict:
    """Static QDQ quantisation of one ONNX file; returns the settings used."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not feeds:
        raise E.EdgeError(E.GET_FEATURE_FAIL, f"no calibration inputs for {src.name}: the calibration photos "
                          "gave no face")
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        # shape inference and graph fusion first (onnxruntime's recommended pre-processing)
        quant_pre_process(str(_opset13(src, Path(tmp))), str(pre), skip_symbolic_shape=True)
        import onnx

        m = onnx.load(str(pre))
        for i, n in enumerate(m.graph.node):      # nodes_to_exclude works by name; edge's dlib graph has none
            n.name = n.name or f"{n.op_type.lower()}_{i}"
        onnx.save(m, str(pre))
        float_nodes = _head_nodes(m)
        settings = {"recipe": RECIPE, "format": "QDQ", "activations": "uint8", "weights": "int8",
                    "per_channel": per_channel, "calibration": "minmax", "calibration_inputs": len(feeds),
                    "float_nodes": float_nodes}
        quantize_static(str(pre), str(dst), _Reader(feeds), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=per_channel,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=float_nodes,
                        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
    return settings


def quantize(cfg, images_dir: Path | None = None, force: bool = False, progress=True) -> list[dict]:
    """Write ``<id>_int8.onnx`` and its card for the configured detector, FaceMesh and embedder."""
    from edge_tools.bench import _images

    md = cfg.models_path
    float_cfg = copy.deepcopy(cfg)
    float_cfg.precision = "float"
    float_cfg.threads = max(cfg.threads, 1)
    ids = [float_cfg.detect.detector, "facemesh", Path(float_cfg.embed.embedder).stem]
    todo = [i for i in ids if force or not _up_to_date(md, i)]
    out = []
    if todo:
        images = _images(str(images_dir) if images_dir else None, float_cfg)
        feeds = calibration_inputs(float_cfg, images, progress=progress)
        for mid in todo:
            card = cards.read_card(cards.card_path(md, mid))
            src = cards.verify(card)
            dst = md / f"{mid}{SUFFIX}.onnx"
            tmp = dst.with_suffix(".onnx.part")
            if progress:
                sys.stderr.write(f"quantize: {mid} ({len(feeds[mid])} calibration inputs)\n")
            settings = quantize_model(src, tmp, feeds[mid])
            tmp.replace(dst)
            q = {k: v for k, v in card.items() if not k.startswith("_")}
            q |= {"id": mid + SUFFIX, "file": dst.name, "sha256": cards.sha256_file(dst),
                  "quantized": settings | {"from": mid, "from_sha256": card["sha256"],
                                           "calibration_images": str(images_dir or "default set"),
                                           "calibration_image_count": len(images)},
                  "description": f"{card.get('description', mid)} - int8 (onnxruntime static QDQ)"}
            if "adapter" not in q:
                from .registry import _legacy_adapter
                q["adapter"] = _legacy_adapter(card)
            cards.write_card(md, q)
    for mid in ids:
        _follow_metric(md, mid)
        out.append(cards.read_card(cards.card_path(md, mid + SUFFIX)))
    return out


def _follow_metric(md: Path, mid: str) -> None:
    """An int8 card scores as its float card does: a calibration the float card received after
    quantising (`edge models build`, `edge models calibrate`) is carried over without quantising
    again; one measured on the int8 model itself (``by: "site"``) stays."""
    f = cards.read_card(cards.card_path(md, mid))
    q = cards.read_card(cards.card_path(md, mid + SUFFIX))
    if "metric" not in f:
        return
    metric = copy.deepcopy(f["metric"])
    cards.keep_site_calibration(metric, q)
    if q.get("metric") != metric:
        cards.write_card(md, q | {"metric": metric})


def _up_to_date(md: Path, mid: str) -> bool:
    """An int8 card exists, its file matches, and it was made from the float model there now."""
    try:
        q = cards.read_card(cards.card_path(md, mid + SUFFIX))
        f = cards.read_card(cards.card_path(md, mid))
        cards.verify(q)
    except E.EdgeError:
        return False
    made = q.get("quantized", {})
    return made.get("from_sha256") == f["sha256"] and made.get("recipe") == RECIPE
