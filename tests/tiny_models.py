"""Small ONNX graphs built with the onnx helper API, with the interface of a published model, for
testing adapters where the model itself cannot be downloaded (no model pack, no network)."""
import numpy as np
import onnx
from onnx import TensorProto, helper


def sface_like(path, dim=128, second_output=False):
    """SFace's interface: input ``data`` [1, 3, 112, 112] (RGB, 0-255), output ``fc1`` [1, dim].
    Average-pools 4x4 cells per channel, subtracts 100 and rectifies (so a 0-255 input and a
    -1..1 input give different features, and so do RGB and BGR), then projects with fixed random
    weights. ``second_output`` puts a normalised copy first and ``fc1`` second, as some exports do."""
    rng = np.random.default_rng(7)
    w = helper.make_tensor("w", TensorProto.FLOAT, [48, dim], rng.standard_normal((48, dim)).astype(np.float32).ravel())
    c = helper.make_tensor("c", TensorProto.FLOAT, [], [100.0])
    nodes = [helper.make_node("AveragePool", ["data"], ["p"], kernel_shape=[28, 28], strides=[28, 28]),
             helper.make_node("Sub", ["p", "c"], ["s"]),
             helper.make_node("Relu", ["s"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"]),
             helper.make_node("MatMul", ["f", "w"], ["fc1"])]
    outputs = [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, dim])]
    if second_output:
        nodes.append(helper.make_node("LpNormalization", ["fc1"], ["norm"], axis=1, p=2))
        outputs.insert(0, helper.make_tensor_value_info("norm", TensorProto.FLOAT, [1, dim]))
    g = helper.make_graph(nodes, "sface_like", [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 112, 112])],
                          outputs, [w, c])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path
