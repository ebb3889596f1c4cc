"""Convert dlib's ResNet face embedder (``dlib_face_recognition_resnet_model_v1.dat``) to ONNX.

dlib serialises a network layer by layer, innermost (input) first, each layer's details after
its sub-network. Tag and skip layers write no details, so the stream is a flat sequence of
named layers; the residual wiring is recovered from the known shape of the network
(``dnn_face_recognition_ex.cpp``): every residual block is ``con, affine, relu, con, affine``
then ``add_prev`` (and, for down-sampling blocks, an ``avg_pool`` of the block input first).

dlib defaults that matter: strided convolutions and pools have no padding, and ``add_prev``
zero-pads the smaller tensor to the larger one in channels and height/width (top-left aligned).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

INPUT_SIZE = 150


class DlibFormatError(ValueError):
    pass


class _Reader:
    def __init__(self, data: bytes, pos: int = 0):
        self.d = data
        self.p = pos

    def int(self) -> int:
        # dlib's integer encoding: a control byte (low nibble = byte count, 0x80 = negative),
        # then the magnitude little-endian.
        ctrl = self.d[self.p]
        n = ctrl & 0x0F
        if n > 8:
            raise DlibFormatError(f"bad integer control byte {ctrl:#x} at {self.p}")
        v = int.from_bytes(self.d[self.p + 1:self.p + 1 + n], "little")
        self.p += 1 + n
        return -v if ctrl & 0x80 else v

    def float(self) -> float:
        mantissa = self.int()
        exponent = self.int()
        return float(mantissa) * 2.0 ** exponent

    def string(self) -> str:
        n = self.int()
        s = self.d[self.p:self.p + n]
        self.p += n
        return s.decode("ascii")

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise DlibFormatError(f"unsupported tensor version {version}")
        n, k, nr, nc = (self.int() for _ in range(4))
        count = n * k * nr * nc
        arr = np.frombuffer(self.d, dtype="<f4", count=count, offset=self.p).copy()
        self.p += 4 * count
        return arr.reshape(n, k, nr, nc)


@dataclass
class Layer:
    kind: str
    params: dict = field(default_factory=dict)


# layer name as serialised -> kind
_KINDS = {
    "input_rgb_image_sized": "input",
    "con_4": "con", "con_5": "con",
    "affine_": "affine",
    "relu_": "relu",
    "max_pool_2": "max_pool",
    "avg_pool_2": "avg_pool",
    "add_prev_": "add_prev",
    "fc_2": "fc", "fc_3": "fc",
}


def _find_names(data: bytes):
    """Positions of serialised layer names, in stream order."""
    hits = []
    for name in _KINDS:
        enc = bytes([1, len(name)]) + name.encode()
        start = 0
        while True:
            i = data.find(enc, start)
            if i < 0:
                break
            end = i + len(enc)
            hits.append((i, name, end))
            start = end
    hits.sort()
    return hits


def parse_layers(data: bytes) -> list[Layer]:
    layers: list[Layer] = []
    for pos, name, end in _find_names(data):
        r = _Reader(data, end)
        kind = _KINDS[name]
        if kind == "input":
            mean = [r.float() for _ in range(3)]
            rows, cols = r.int(), r.int()
            layers.append(Layer(kind, {"mean": mean, "size": (rows, cols)}))
        elif kind == "con":
            params = r.tensor().reshape(-1)
            num_filters, nr, nc, sy, sx, py, px = (r.int() for _ in range(7))
            nw = params.size - num_filters
            k = nw // (num_filters * nr * nc)
            w = params[:nw].reshape(num_filters, k, nr, nc)
            b = params[nw:]
            layers.append(Layer(kind, {"w": w, "b": b, "stride": (sy, sx), "pad": (py, px)}))
        elif kind == "affine":
            params = r.tensor().reshape(-1)
            c = params.size // 2
            layers.append(Layer(kind, {"gamma": params[:c], "beta": params[c:]}))
        elif kind in ("max_pool", "avg_pool"):
            nr, nc, sy, sx, py, px = (r.int() for _ in range(6))
            layers.append(Layer(kind, {"size": (nr, nc), "stride": (sy, sx), "pad": (py, px)}))
        elif kind == "fc":
            n_out, n_in = r.int(), r.int()
            params = r.tensor().reshape(-1)
            if params.size != n_in * n_out:
                raise DlibFormatError("fc layers with a bias are not expected in this network")
            layers.append(Layer(kind, {"w": params.reshape(n_in, n_out)}))
        else:
            layers.append(Layer(kind))
    if not layers or layers[0].kind != "input" or layers[-1].kind != "fc":
        raise DlibFormatError("not a dlib ResNet face embedder: input or fc layer missing")
    return layers


def _conv_out(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def build_onnx(layers: list[Layer], opset: int = 13):
    """Rebuild the network as an ONNX graph. Input: float32 NCHW RGB, 0-255, 150x150."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits, nodes = [], []
    counter = [0]

    def name(prefix: str) -> str:
        counter[0] += 1
        return f"{prefix}_{counter[0]}"

    def const(arr: np.ndarray, prefix: str) -> str:
        n = name(prefix)
        inits.append(numpy_helper.from_array(np.asarray(arr), n))
        return n

    def node(op: str, inputs: list[str], **attrs) -> str:
        out = name(op.lower())
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    inp = layers[0].params
    rows, cols = inp["size"]
    mean = np.array(inp["mean"], np.float32).reshape(1, 3, 1, 1)
    x = node("Sub", ["input", const(mean, "mean")])
    x = node("Mul", [x, const(np.array(1.0 / 256.0, np.float32), "scale")])
    shape = [3, rows, cols]  # C, H, W without the batch

    block_in = None          # tensor and shape feeding the current residual block
    pooled_skip = None       # avg-pooled block input in a down-sampling block
    start_of_block = False
    i = 1
    while i < len(layers):
        L = layers[i]
        p = L.params
        if L.kind == "con":
            if start_of_block:
                block_in = (x, list(shape))
                start_of_block = False
            k = p["w"].shape[2]
            sy, sx = p["stride"]
            py, px = p["pad"]
            x = node("Conv", [x, const(p["w"], "w"), const(p["b"], "b")],
                     kernel_shape=[k, k], strides=[sy, sx], pads=[py, px, py, px])
            shape = [p["w"].shape[0], _conv_out(shape[1], k, sy, py), _conv_out(shape[2], k, sx, px)]
        elif L.kind == "affine":
            c = p["gamma"].size
            x = node("Mul", [x, const(p["gamma"].reshape(1, c, 1, 1), "gamma")])
            x = node("Add", [x, const(p["beta"].reshape(1, c, 1, 1), "beta")])
        elif L.kind == "relu":
            x = node("Relu", [x])
        elif L.kind == "max_pool":
            (kh, kw), (sy, sx), (py, px) = p["size"], p["stride"], p["pad"]
            x = node("MaxPool", [x], kernel_shape=[kh, kw], strides=[sy, sx], pads=[py, px, py, px])
            shape = [shape[0], _conv_out(shape[1], kh, sy, py), _conv_out(shape[2], kw, sx, px)]
            start_of_block = True
        elif L.kind == "avg_pool":
            (kh, kw), (sy, sx), (py, px) = p["size"], p["stride"], p["pad"]
            if kh == 0:  # avg_pool_everything
                x = node("GlobalAveragePool", [x])
                x = node("Flatten", [x], axis=1)
                shape = [shape[0]]
            else:
                if block_in is None:
                    raise DlibFormatError("avg_pool outside a residual block")
                src, s = block_in
                t = node("AveragePool", [src], kernel_shape=[kh, kw], strides=[sy, sx],
                         pads=[py, px, py, px], count_include_pad=1)
                pooled_skip = (t, [s[0], _conv_out(s[1], kh, sy, py), _conv_out(s[2], kw, sx, px)])
        elif L.kind == "add_prev":
            other, oshape = pooled_skip if pooled_skip is not None else block_in
            pooled_skip = None
            target = [max(a, b) for a, b in zip(shape, oshape)]
            x = _pad_to(x, shape, target, node, const)
            other = _pad_to(other, oshape, target, node, const)
            x = node("Add", [x, other])
            shape = target
            # the relu after add_prev closes the block; the next con opens a new one
            start_of_block = True
        elif L.kind == "fc":
            x = node("MatMul", [x, const(p["w"], "fc")])
            shape = [p["w"].shape[1]]
        else:
            raise DlibFormatError(f"unexpected layer {L.kind}")
        i += 1

    nodes[-1].output[0] = "descriptor"
    graph = helper.make_graph(
        nodes, "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, rows, cols])],
        [helper.make_tensor_value_info("descriptor", TensorProto.FLOAT, ["N", shape[0]])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="edge.models.dlib_convert")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _pad_to(x, shape, target, node, const):
    """Zero-pad channels / height / width at the end, as dlib's add_prev does."""
    if shape == target:
        return x
    pads = [0, 0, 0, 0, 0, target[0] - shape[0], target[1] - shape[1], target[2] - shape[2]]
    return node("Pad", [x, const(np.array(pads, np.int64), "pads")], mode="constant")


def convert(dat_path: str, onnx_path: str) -> None:
    import onnx

    with open(dat_path, "rb") as f:
        data = f.read()
    model = build_onnx(parse_layers(data))
    onnx.save(model, onnx_path)
