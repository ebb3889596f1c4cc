"""The PyTorch weights reader behind the MiniFASNet converter: it reads the legacy stream and the
zip format of a state dict, and refuses anything that is not plain tensors — a forged weights
file must not run code when it is converted. Weights files are written here by a pickler that
stands in for PyTorch's (same opcodes, same global names), so no PyTorch and no model is needed."""
import io
import pickle
import struct
import sys
import types
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

from edge.models import minifasnet_convert as M


class _Storage:
    def __init__(self, key, arr):
        self.key, self.arr = key, np.ascontiguousarray(arr, np.float32).ravel()


class _Tensor:
    def __init__(self, storage, shape):
        self.storage, self.shape = storage, shape

    def __reduce__(self):
        stride = tuple(int(np.prod(self.shape[i + 1:])) for i in range(len(self.shape)))
        return (_fake_torch()._utils._rebuild_tensor_v2, (self.storage, 0, self.shape, stride, False, OrderedDict()))


def _fake_torch():
    """Stand-ins registered as ``torch`` / ``torch._utils`` so pickle writes the globals PyTorch
    writes (pickle checks that a global can be found under its name)."""
    torch = sys.modules.get("torch")
    if torch is None or not getattr(torch, "_edge_fake", False):
        torch = types.ModuleType("torch")
        torch._edge_fake = True
        utils = types.ModuleType("torch._utils")

        def _rebuild_tensor_v2(*a):
            raise AssertionError("never called while writing")

        _rebuild_tensor_v2.__module__ = "torch._utils"
        _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
        utils._rebuild_tensor_v2 = _rebuild_tensor_v2
        torch._utils = utils
        torch.FloatStorage = type("FloatStorage", (), {"__module__": "torch", "__qualname__": "FloatStorage"})
        sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
    return torch


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", _fake_torch().FloatStorage, obj.key, "cpu", obj.arr.size, None)
        return None


@pytest.fixture(autouse=True)
def no_fake_torch_left():
    yield
    for name in ("torch._utils", "torch"):
        if getattr(sys.modules.get(name), "_edge_fake", False) or name == "torch._utils" and \
                getattr(sys.modules.get("torch"), "_edge_fake", False):
            del sys.modules[name]


def _state(tensors: dict):
    storages = {k: _Storage(str(i), v) for i, (k, v) in enumerate(tensors.items())}
    sd = OrderedDict((k, _Tensor(storages[k], tuple(np.shape(v)))) for k, v in tensors.items())
    return sd, storages


def legacy_file(tensors: dict, payload=None) -> bytes:
    """PyTorch's legacy format: magic, protocol, sys info, the state dict, the storage keys, then
    each storage as an int64 count and its bytes."""
    sd, storages = _state(tensors) if payload is None else (payload, {})
    f = io.BytesIO()
    for obj in (M.LEGACY_MAGIC, M.LEGACY_PROTOCOL, {"protocol_version": 1001, "little_endian": True,
                                                    "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(obj, f, protocol=2)
    _Pickler(f, protocol=2).dump(sd)
    pickle.dump([s.key for s in storages.values()], f, protocol=2)
    for s in storages.values():
        f.write(struct.pack("<q", s.arr.size) + s.arr.tobytes())
    return f.getvalue()


def zip_file(tensors: dict) -> bytes:
    sd, storages = _state(tensors)
    pkl = io.BytesIO()
    _Pickler(pkl, protocol=2).dump(sd)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("archive/data.pkl", pkl.getvalue())
        for s in storages.values():
            z.writestr(f"archive/data/{s.key}", s.arr.tobytes())
    return out.getvalue()


TENSORS = {"module.conv1.conv.weight": np.arange(2 * 3 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 3),
           "module.conv1.bn.running_var": np.array([0.5, 2.0], np.float32)}


@pytest.mark.parametrize("writer", [legacy_file, zip_file])
def test_reads_both_formats_without_torch(tmp_path, writer):
    p = tmp_path / "w.pth"
    p.write_bytes(writer(TENSORS))
    for name in ("torch._utils", "torch"):          # the reader must not need the stand-ins either
        sys.modules.pop(name, None)
    sd = M.load_state_dict(p)
    assert sorted(sd) == ["conv1.bn.running_var", "conv1.conv.weight"]     # DataParallel prefix removed
    assert np.array_equal(sd["conv1.conv.weight"], TENSORS["module.conv1.conv.weight"])
    assert sd["conv1.bn.running_var"].dtype == np.float32


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.path}",))


def test_a_forged_weights_file_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"
    for payload in (_Evil(marker), {"module.x": _Evil(marker)}):
        p = tmp_path / "evil.pth"
        p.write_bytes(legacy_file(TENSORS, payload=payload))
        with pytest.raises(M.PthFormatError, match="refused to load posix.system|refused to load os.system"):
            M.load_state_dict(p)
        assert not marker.exists()
    # the same in a zip archive
    pkl = io.BytesIO()
    pickle.dump({"w": _Evil(marker)}, pkl, protocol=2)
    with zipfile.ZipFile(tmp_path / "evil.zip.pth", "w") as z:
        z.writestr("archive/data.pkl", pkl.getvalue())
    with pytest.raises(M.PthFormatError, match="refused"):
        M.load_state_dict(tmp_path / "evil.zip.pth")
    assert not marker.exists()


def test_corrupt_or_foreign_files_are_clear_errors(tmp_path):
    good = legacy_file(TENSORS)
    cases = {"truncated": good[: len(good) - 7], "not torch": pickle.dumps({"a": 1}), "empty": b"",
             "wrong size": good.replace(struct.pack("<q", 54), struct.pack("<q", 55), 1)}
    for what, data in cases.items():
        p = tmp_path / f"{what}.pth"
        p.write_bytes(data)
        with pytest.raises(M.PthFormatError):
            M.load_state_dict(p)
    # tensors only: a state dict holding anything else is refused
    p = tmp_path / "odd.pth"
    p.write_bytes(legacy_file(TENSORS, payload={"module.x": 3}))
    with pytest.raises(M.PthFormatError, match="not a tensor"):
        M.load_state_dict(p)


def test_a_state_dict_that_is_not_minifasnet_is_refused():
    with pytest.raises(M.PthFormatError, match="not a MiniFASNet"):
        M.build_onnx({"conv1.conv.weight": np.zeros((2, 3, 3, 3), np.float32)})
