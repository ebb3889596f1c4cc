"""Convert MiniFASNet anti-spoofing weights (Silent-Face-Anti-Spoofing ``.pth`` state dicts) to
ONNX without PyTorch.

Reading: a ``.pth`` is either PyTorch's zip format (``<root>/data.pkl`` plus one file per tensor
storage under ``<root>/data/``) or, as these two files are, the legacy stream: pickled magic
number, protocol version and system info, then the pickled state dict whose tensors refer to
storages by key, then the pickled list of keys, then each storage's bytes (an int64 element
count, then the raw little-endian data) in that order. Both are read with a restricted
unpickler: the only callables it will hand to pickle are our own tensor and dict builders, so a
forged file can fail to load but cannot run code.

Building: the network is MiniFASNet as published (``src/model_lib/MiniFASNet.py``): a stem of two
Conv-BN-PReLU blocks, inverted-residual stages (1x1 expand, 3x3 depthwise, 1x1 project; V1SE adds
a squeeze-excitation on the last block of each stage), a 5x5 depthwise "global" convolution, a
linear embedding with BatchNorm1d, and a 3-class linear head. Channel counts, kernel sizes,
groups and the SE blocks are read from the state dict's names and shapes; strides and paddings
are the architecture's. BatchNorm is folded into the preceding convolution or linear layer (in
float64); PReLU becomes max(x, slope * x) where every slope is <= 1 (both published models);
the graph outputs the three logits (index 1 = real).
"""
from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
BN_EPS = 1e-5                      # torch.nn.BatchNorm default; the upstream model keeps it
MAX_STORAGE_BYTES = 64 << 20       # these models are ~2 MB; refuse absurd sizes before allocating

_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
           "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
           "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}


class PthFormatError(ValueError):
    pass


# ---- reading the state dict -----------------------------------------------------------------
@dataclass
class _Storage:
    dtype: type
    key: str
    numel: int
    data: np.ndarray | None = None


@dataclass
class _TensorRef:
    storage: _Storage
    offset: int
    size: tuple
    stride: tuple

    def array(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise PthFormatError(f"storage {self.storage.key} was never filled")
        n = int(np.prod(self.size)) if self.size else 1
        if n == 0:
            return np.zeros(self.size, self.storage.dtype)
        last = self.offset + sum((s - 1) * st for s, st in zip(self.size, self.stride))
        if self.offset < 0 or last >= data.size or any(st < 0 for st in self.stride):
            raise PthFormatError(f"tensor outside its storage {self.storage.key}")
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(data[self.offset:], shape=self.size,
                                               strides=[st * item for st in self.stride])
        return np.array(view)          # own the memory; as_strided views must not escape


class _StateDict(OrderedDict):
    """Stands in for collections.OrderedDict; accepts the ``_metadata`` attribute pickle sets."""


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    if not isinstance(storage, _Storage):
        raise PthFormatError("a tensor that does not refer to a storage")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride):
        raise PthFormatError("tensor size and stride disagree")
    return _TensorRef(storage, int(storage_offset), size, stride)


class _StorageType:
    def __init__(self, name):
        self.name = name


class _Unpickler(pickle.Unpickler):
    """Allows exactly the globals a state dict of plain tensors needs; storages come from
    ``persistent_load`` (never from pickle itself)."""

    def __init__(self, f, storages: dict):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return _StateDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _DTYPES:
            return _StorageType(name)
        raise PthFormatError(f"refused to load {module}.{name}: a weights file holds tensors only")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise PthFormatError(f"unexpected persistent id {str(pid)[:80]!r}")
        stype, key, _location, numel = pid[1:5]
        if not isinstance(stype, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise PthFormatError("malformed storage reference")
        if len(pid) > 5 and pid[5] is not None:
            raise PthFormatError("storage views are not supported")
        key = str(key)
        if key not in self.storages:
            self.storages[key] = _Storage(_DTYPES[stype.name], key, numel)
        return self.storages[key]


def _fill(st: _Storage, raw: bytes):
    item = np.dtype(st.dtype).itemsize
    if len(raw) != st.numel * item:
        raise PthFormatError(f"storage {st.key}: {len(raw)} bytes for {st.numel} elements")
    st.data = np.frombuffer(raw, dtype=np.dtype(st.dtype).newbyteorder("<")).astype(st.dtype)


def _read_legacy(f) -> tuple[dict, dict]:
    def plain():
        # the header pickles hold only numbers and a dict of numbers
        return _Unpickler(f, {}).load()

    try:
        if plain() != LEGACY_MAGIC:
            raise PthFormatError("not a PyTorch weights file (magic number)")
        if plain() != LEGACY_PROTOCOL:
            raise PthFormatError("unsupported PyTorch legacy protocol version")
        info = plain()
        if not isinstance(info, dict) or not info.get("little_endian", True):
            raise PthFormatError("big-endian weights are not supported")
        storages: dict = {}
        state = _Unpickler(f, storages).load()
        keys = plain()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError, IndexError) as e:
        if isinstance(e, PthFormatError):
            raise
        raise PthFormatError(f"corrupt weights file ({type(e).__name__}: {e})") from None
    if not isinstance(keys, list):
        raise PthFormatError("corrupt weights file (storage key list)")
    for key in keys:
        st = storages.get(str(key))
        head = f.read(8)
        if st is None or len(head) != 8:
            raise PthFormatError(f"corrupt weights file (storage {key})")
        numel = struct.unpack("<q", head)[0]
        nbytes = numel * np.dtype(st.dtype).itemsize
        if numel != st.numel or nbytes > MAX_STORAGE_BYTES:
            raise PthFormatError(f"storage {key}: {numel} elements, expected {st.numel}")
        _fill(st, f.read(nbytes))
    return state, storages


def _read_zip(path: Path) -> tuple[dict, dict]:
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise PthFormatError(f"corrupt weights archive ({e})") from None
    with z:
        pkl = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise PthFormatError("weights archive without exactly one data.pkl")
        root = pkl[0][: -len("data.pkl")]
        storages: dict = {}
        try:
            state = _Unpickler(io.BytesIO(z.read(pkl[0])), storages).load()
        except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError, IndexError) as e:
            if isinstance(e, PthFormatError):
                raise
            raise PthFormatError(f"corrupt weights file ({type(e).__name__}: {e})") from None
        for key, st in storages.items():
            name = f"{root}data/{key}"
            try:
                info = z.getinfo(name)
            except KeyError:
                raise PthFormatError(f"weights archive lacks {name}") from None
            if info.file_size > MAX_STORAGE_BYTES:
                raise PthFormatError(f"{name} is {info.file_size} bytes")
            _fill(st, z.read(name))
    return state, storages


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a PyTorch state dict as numpy arrays, keyed by name (``module.`` prefix of
    DataParallel checkpoints removed)."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        state, _ = _read_zip(path)
    else:
        with open(path, "rb") as f:
            state, _ = _read_legacy(f)
    if not isinstance(state, dict):
        raise PthFormatError("the file does not hold a state dict")
    out = {}
    for k, v in state.items():
        if not isinstance(k, str) or not isinstance(v, _TensorRef):
            raise PthFormatError(f"state dict entry {str(k)[:60]!r} is not a tensor")
        out[k[7:] if k.startswith("module.") else k] = v.array()
    return out


# ---- building the graph ------------------------------------------------------------------------
# (module, stride) in forward order; Depth_Wise "transition" blocks down-sample, residual stages do not
_STEM = [("conv1", 2), ("conv2_dw", 1)]
_BODY = [("conv_23", 2), ("conv_3", 1), ("conv_34", 2), ("conv_4", 1), ("conv_45", 2), ("conv_5", 1)]


class _Graph:
    def __init__(self, sd: dict[str, np.ndarray]):
        from onnx import helper, numpy_helper

        self.sd, self.helper, self.nh = sd, helper, numpy_helper
        self.nodes, self.inits, self.n = [], [], 0
        self.used: set[str] = set()

    def name(self, prefix):
        self.n += 1
        return f"{prefix}_{self.n}"

    def const(self, arr, prefix):
        n = self.name(prefix)
        self.inits.append(self.nh.from_array(np.ascontiguousarray(arr), n))
        return n

    def node(self, op, inputs, **attrs):
        out = self.name(op.lower())
        self.nodes.append(self.helper.make_node(op, inputs, [out], **attrs))
        return out

    def get(self, key) -> np.ndarray:
        if key not in self.sd:
            raise PthFormatError(f"state dict lacks {key}: not a MiniFASNet")
        self.used.add(key)
        return self.sd[key].astype(np.float64)

    def bn(self, prefix):
        g, b = self.get(f"{prefix}.weight"), self.get(f"{prefix}.bias")
        m, v = self.get(f"{prefix}.running_mean"), self.get(f"{prefix}.running_var")
        self.used.add(f"{prefix}.num_batches_tracked")
        s = g / np.sqrt(v + BN_EPS)
        return s, b - m * s

    def conv_bn(self, x, prefix, stride=1, pad=None, prelu=True):
        """Conv (no bias) + BatchNorm folded into one Conv, then PReLU (Conv_block) or not
        (Linear_block). Groups follow from the weight shape and the input channels."""
        w = self.get(f"{prefix}.conv.weight")
        cin = self.channels
        cout, per_group, kh, kw = w.shape
        if cin % per_group:
            raise PthFormatError(f"{prefix}: {cin} input channels do not fit weights {w.shape}")
        s, b = self.bn(f"{prefix}.bn")
        w = (w * s[:, None, None, None]).astype(np.float32)
        p = (kh // 2) if pad is None else pad
        x = self.node("Conv", [x, self.const(w, "w"), self.const(b.astype(np.float32), "b")],
                      kernel_shape=[kh, kw], strides=[stride, stride], pads=[p, p, p, p],
                      group=cin // per_group)
        self.channels = cout
        if prelu:
            a = self.get(f"{prefix}.prelu.weight").astype(np.float32).reshape(-1, 1, 1)
            if np.all(a <= 1):
                # PReLU with slopes <= 1 is max(x, slope * x), exactly; onnxruntime runs that
                # pair 3-4x faster than its PRelu (which was half of the network's time)
                x = self.node("Max", [x, self.node("Mul", [x, self.const(a, "slope")])])
            else:
                x = self.node("PRelu", [x, self.const(a, "slope")])
        return x

    def depth_wise(self, x, prefix, stride, residual):
        skip = x
        x = self.conv_bn(x, f"{prefix}.conv", 1, 0)
        x = self.conv_bn(x, f"{prefix}.conv_dw", stride, 1)
        x = self.conv_bn(x, f"{prefix}.project", 1, 0, prelu=False)
        if residual and f"{prefix}.se_module.fc1.weight" in self.sd:
            x = self.se(x, f"{prefix}.se_module")
        return self.node("Add", [skip, x]) if residual else x

    def se(self, x, prefix):
        y = self.node("GlobalAveragePool", [x])
        for i, act in ((1, "Relu"), (2, "Sigmoid")):
            w = self.get(f"{prefix}.fc{i}.weight")
            s, b = self.bn(f"{prefix}.bn{i}")
            w = (w * s[:, None, None, None]).astype(np.float32)
            y = self.node("Conv", [y, self.const(w, "se_w"), self.const(b.astype(np.float32), "se_b")],
                          kernel_shape=[1, 1])
            y = self.node(act, [y])
        return self.node("Mul", [x, y])


def build_onnx(sd: dict[str, np.ndarray], graph_name: str = "minifasnet", opset: int = 13):
    """The MiniFASNet in ``sd`` as an ONNX model: input ``input`` float32 [N, 3, H, W] BGR 0..255
    (no normalisation, as upstream), output ``logits`` [N, classes]."""
    import onnx
    from onnx import TensorProto, helper

    g = _Graph(sd)
    if "conv1.conv.weight" not in sd or sd["conv1.conv.weight"].shape[1] != 3:
        raise PthFormatError("not a MiniFASNet state dict (conv1 with 3 input channels missing)")
    k6 = sd.get("conv_6_dw.conv.weight")
    if k6 is None or k6.ndim != 4:
        raise PthFormatError("not a MiniFASNet state dict (conv_6_dw missing)")
    # four stride-2 stages bring the input to the global depthwise kernel's size
    size = (int(k6.shape[2]) * 16, int(k6.shape[3]) * 16)
    g.channels = 3
    x = "input"
    for name, stride in _STEM:
        x = g.conv_bn(x, name, stride)
    for name, stride in _BODY:
        if f"{name}.conv.conv.weight" in sd:               # a single (transition) Depth_Wise
            x = g.depth_wise(x, name, stride, residual=False)
            continue
        blocks = sorted({int(k.split(".")[2]) for k in sd if k.startswith(f"{name}.model.")})
        if not blocks:
            raise PthFormatError(f"state dict lacks the {name} stage")
        for i in blocks:
            x = g.depth_wise(x, f"{name}.model.{i}", 1, residual=True)
    x = g.conv_bn(x, "conv_6_sep", 1, 0)
    x = g.conv_bn(x, "conv_6_dw", 1, 0, prelu=False)
    x = g.node("Flatten", [x], axis=1)
    # embedding: Linear (no bias) then BatchNorm1d, folded into one Gemm; dropout is off in eval
    s, b = g.bn("bn")
    if "linear.weight" in sd and sd["linear.weight"].shape[0] != sd["linear.weight"].shape[1]:
        w = g.get("linear.weight") * s[:, None]
        x = g.node("Gemm", [x, g.const(w.astype(np.float32), "fc_w"), g.const(b.astype(np.float32), "fc_b")],
                   transB=1)
    else:                                                  # embedding_size 512: no linear layer
        g.used.add("linear.weight")
        x = g.node("Add", [g.node("Mul", [x, g.const(s.astype(np.float32), "bn_s")]),
                           g.const(b.astype(np.float32), "bn_b")])
    w = g.get("prob.weight").astype(np.float32)
    x = g.node("Gemm", [x, g.const(w, "prob_w")], transB=1)
    g.nodes[-1].output[0] = "logits"
    unused = sorted(set(sd) - g.used)
    if unused:
        raise PthFormatError(f"state dict has tensors this MiniFASNet does not use: {unused[:4]}")
    graph = helper.make_graph(
        g.nodes, graph_name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, size[0], size[1]])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", int(w.shape[0])])],
        g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="edge.models.minifasnet_convert")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def convert(pth_path: str | Path, onnx_path: str | Path, graph_name: str = "minifasnet") -> dict:
    """Convert one ``.pth``; returns what the card needs (input size, number of classes)."""
    import onnx

    model = build_onnx(load_state_dict(pth_path), graph_name)
    onnx.save(model, str(onnx_path))
    inp = model.graph.input[0].type.tensor_type.shape.dim
    out = model.graph.output[0].type.tensor_type.shape.dim
    return {"input_hw": [inp[2].dim_value, inp[3].dim_value], "classes": out[1].dim_value}
