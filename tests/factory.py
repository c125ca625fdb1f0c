"""Builders of test images and of a folder of bad files, all made in the tests."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_artworks"


def pattern(rows: int = 48, cols: int = 64, seed: int = 0) -> np.ndarray:
    """A structured RGB uint8 test image: gradients plus a few shapes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:cols]
    img = np.zeros((rows, cols, 3), np.uint8)
    img[..., 0] = (xx * 255 // max(cols - 1, 1)).astype(np.uint8)
    img[..., 1] = (yy * 255 // max(rows - 1, 1)).astype(np.uint8)
    img[..., 2] = 90
    for _ in range(4):
        r, c = rng.integers(0, rows), rng.integers(0, cols)
        cv2.circle(
            img,
            (int(c), int(r)),
            int(rng.integers(3, 10)),
            tuple(int(v) for v in rng.integers(0, 256, 3)),
            -1,
        )
    return img


def encode(img: np.ndarray | Image.Image, fmt: str, **kw) -> bytes:
    im = img if isinstance(img, Image.Image) else Image.fromarray(img)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_with_declared_size(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height (a decompression-bomb header)."""
    data = bytearray(encode(pattern(16, 16), "PNG"))
    ihdr = 8  # signature length; IHDR chunk: length(4) type(4) data(13) crc(4)
    data[ihdr + 8 : ihdr + 16] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr + 4 : ihdr + 8 + 13])) & 0xFFFFFFFF
    data[ihdr + 8 + 13 : ihdr + 8 + 17] = struct.pack(">I", crc)
    return bytes(data)


def good_files() -> dict[str, bytes]:
    return {
        "good_a.jpg": encode(pattern(60, 80, 1), "JPEG", quality=95),
        "good_b.png": encode(pattern(60, 80, 2), "PNG"),
        "sub/good_c.png": encode(pattern(70, 50, 3), "PNG"),
        "sub/good_d.tif": encode(pattern(64, 64, 4), "TIFF"),
    }


def bad_files() -> dict[str, tuple[bytes, str]]:
    """File name -> (bytes, a regex the skip reason must match)."""
    jpeg = encode(pattern(120, 160, 5), "JPEG", quality=95)
    png = encode(pattern(120, 160, 6), "PNG")
    return {
        "empty.jpg": (b"", r"empty file \(0 bytes\)"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], r"truncated|corrupt"),
        "truncated.png": (png[: len(png) // 2], r"truncated|corrupt"),
        "notes.jpg": (
            b"These are my notes about the painting.\n" * 5,
            r"not an image: the content is text",
        ),
        "page.png": (
            b"<!DOCTYPE html><html><body>hi</body></html>",
            r"not an image: the content is HTML",
        ),
        "bomb.png": (png_with_declared_size(20000, 20000), r"decompression bomb"),
        "tiny.png": (encode(pattern(8, 8), "PNG"), r"too small: 8x8 px"),
        "icon.png": (
            encode(Image.fromarray(pattern(32, 32)), "ICO"),
            r"unsupported image format ICO",
        ),
        "scan.heic": (b"\x00\x00\x00\x18ftypheic", r"unsupported image format \(\.heic\)"),
        "noise.tif": (
            bytes(np.random.default_rng(3).integers(0, 256, 4000, dtype=np.uint8)),
            r"not an image",
        ),
    }


def copy_samples(dest: Path, pattern: str, *, limit: int | None = None) -> Path:
    """Copy the sample images matching ``pattern`` (sorted, the first ``limit``) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for p in sorted((SAMPLES / "images").glob(pattern))[:limit]:
        (dest / p.name).write_bytes(p.read_bytes())
    return dest


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


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


def permissions_bind() -> list[str]:
    """A command prefix under which file permissions apply, also when the tests run as root.

    Root ignores permission bits through the CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH capabilities; ``setpriv`` drops both from the bounding
    set, so the command keeps uid 0 (and its access to the interpreter) but an
    unreadable file or a read-only folder refuses it like any user. Skips the
    test when that is not possible here.
    """
    import os
    import shutil
    import subprocess
    import sys

    if os.geteuid() != 0:
        return []
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permission bits do not apply")
    probe = subprocess.run([*prefix, sys.executable, "-c", "pass"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot drop root's file capabilities here: {probe.stderr[-200:]!r}")
    return prefix
