"""A folder of good, bad and awkward files side by side: nothing crashes, nothing is lost."""

from __future__ import annotations

import io
import json
import os
import re

import cv2
import numpy as np
from factory import bad_files, encode, pattern, png_with_declared_size
from PIL import Image

from app.cli import main


def awkward_but_good() -> dict[str, bytes]:
    """Files that must be analysed (id -> bytes)."""
    gray16 = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    ok16, tif16 = cv2.imencode(".tif", gray16)
    pages = [Image.fromarray(pattern(48, 48, s)) for s in range(3)]
    multi = io.BytesIO()
    pages[0].save(multi, format="TIFF", save_all=True, append_images=pages[1:])
    frames = [Image.fromarray(pattern(48, 48, s)) for s in (7, 8)]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    rgba = np.dstack([pattern(48, 48, 9), np.full((48, 48), 128, np.uint8)])
    rotated = Image.fromarray(pattern(40, 60, 10))
    exif = rotated.getexif()
    exif[274] = 8
    same = encode(pattern(50, 50, 11), "PNG")
    return {
        "gray16.tif": tif16.tobytes(),
        "multipage.tif": multi.getvalue(),
        "cmyk.jpg": encode(Image.fromarray(pattern(48, 48, 12)).convert("CMYK"), "JPEG"),
        "rgba.png": encode(rgba, "PNG"),
        "palette.png": encode(Image.fromarray(pattern(48, 48, 13)).convert("P"), "PNG"),
        "animated.gif": gif.getvalue(),
        "rotated.jpg": encode(rotated, "JPEG", exif=exif.tobytes()),
        "blank.png": encode(np.full((64, 64, 3), 128, np.uint8), "PNG"),
        "same_a.png": same,
        "same_b.png": same,
        "one/name.png": encode(pattern(48, 48, 14), "PNG"),
        "two/name.png": encode(pattern(48, 48, 15), "PNG"),
        "ünïcödé.png": encode(pattern(48, 48, 16), "PNG"),
        "two..dots.png": encode(pattern(48, 48, 17), "PNG"),
        "<script>alert(1)<_script>.png": encode(pattern(48, 48, 18), "PNG"),
    }


def bad_ones() -> dict[str, tuple[bytes, str]]:
    out = dict(bad_files())
    out["one_pixel.png"] = (encode(pattern(1, 1), "PNG"), r"too small: 1x1 px")
    out["sliver.png"] = (encode(pattern(8, 10000), "PNG"), r"too small: 10000x8 px")
    out["bomb2.png"] = (png_with_declared_size(30000, 30000), r"decompression bomb")
    return out


def test_mixed_corpus(tmp_path, hashes):
    src = tmp_path / "in"
    good, bad = awkward_but_good(), bad_ones()
    for name, data in {**good, **{k: v for k, (v, _) in bad.items()}}.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    os.symlink("loop_b.png", src / "loop_a.png")  # a symlink loop
    os.symlink("loop_a.png", src / "loop_b.png")
    os.symlink(".", src / "self")  # a folder link to itself: not followed
    before = hashes(src)
    out = tmp_path / "out"
    code = main(["analyze", str(src), "--out", str(out), "--no-progress", "--size", "64"])
    assert code == 0
    assert hashes(src) == before  # originals byte-identical
    run = json.loads((out / "run.json").read_text())
    skipped = {s["path"]: s["reason"] for s in run["skipped"]}
    for name, (_, reason) in bad.items():
        assert re.search(reason, skipped[name]), (name, skipped.get(name))
    assert "loop" in skipped["loop_a.png"] and "loop" in skipped["loop_b.png"]
    assert {i["path"]: i["reason"] for i in run["ignored"]}["self"].startswith("symbolic link")
    analysed = {r["image"]: r for r in run["inputs"]}
    assert set(analysed) == set(good)
    assert analysed["same_b.png"]["duplicate_of"] == "same_a.png"
    assert any("page 1 of 3" in n for n in analysed["multipage.tif"]["notes"])
    assert any("frame 1 of 2" in n for n in analysed["animated.gif"]["notes"])
    assert analysed["gray16.tif"]["bit_depth"] == 16
    assert (analysed["rotated.jpg"]["width"], analysed["rotated.jpg"]["height"]) == (40, 60)
    html = (out / "report.html").read_text(encoding="utf-8")
    for name in skipped:
        assert name in html
    assert "ünïcödé.png" in html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;_script&gt;.png" in html
