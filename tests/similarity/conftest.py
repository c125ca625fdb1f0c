"""Fixtures of the similarity tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def build_tiny_onnx(path: Path, *, seed: int = 0, side: int = 64) -> Path:
    """A small fixed-weight CNN saved as ONNX: conv 3x3 (16) -> ReLU -> 8x8 average pool.

    Built here with onnx.helper, so the embedding metric is tested on a real
    ONNX model without downloading one.
    """
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 0.5, size=(16, 3, 3, 3)).astype(np.float32)
    bias = rng.normal(0, 0.1, size=(16,)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("AveragePool", ["r"], ["p"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Flatten", ["p"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, side, side])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16 * (side // 8) ** 2])],
        initializer=[numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> Path:
    pytest.importorskip("onnxruntime")
    return build_tiny_onnx(tmp_path_factory.mktemp("onnx") / "tiny.onnx")
