"""Fixtures of the similarity tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from factory import build_tiny_onnx


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> Path:
    pytest.importorskip("onnxruntime")
    return build_tiny_onnx(tmp_path_factory.mktemp("onnx") / "tiny.onnx")
