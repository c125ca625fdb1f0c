"""Image intake: formats, conversions, metadata, bad files, ids, uploads."""

from __future__ import annotations

import hashlib
import io
import re

import cv2
import numpy as np
import pytest
from factory import bad_files, encode, good_files, pattern, write_tree
from PIL import Image

from preprocessing import (
    ImageLoadError,
    LoadConfig,
    load_folder,
    load_paths,
    load_uploads,
    sanitize_upload_name,
)
from preprocessing._decode import decode_image


def decode(data: bytes, **kw):
    args = {"name": "x", "max_pixels": 100_000_000, "min_side": 16, "max_side": None, **kw}
    return decode_image(data, **args)


def test_rgb_jpeg_png_bmp_webp_become_float_rgb():
    img = pattern(40, 50)
    # lossless formats: exact to rounding; JPEG (chroma subsampled): small mean error
    for fmt, kw, tol in [
        ("PNG", {}, 0),
        ("BMP", {}, 0),
        ("WEBP", {"lossless": True}, 0),
        ("JPEG", {"quality": 100, "subsampling": 0}, 3),
    ]:
        d = decode(encode(img, fmt, **kw))
        assert d.pixels.dtype == np.float32 and d.pixels.shape == (40, 50, 3)
        assert 0.0 <= d.pixels.min() and d.pixels.max() <= 1.0
        diff = np.abs(d.pixels * 255 - img)
        err = diff.mean() if fmt == "JPEG" else diff.max()
        assert err <= tol + 0.51, (fmt, err)
        assert d.format == fmt and (d.width, d.height) == (50, 40)


def test_channel_order_is_rgb():
    img = np.zeros((20, 20, 3), np.uint8)
    img[..., 0] = 255  # pure red
    d = decode(encode(img, "PNG"))
    assert d.pixels[0, 0].tolist() == [1.0, 0.0, 0.0]


def test_16bit_gray_tiff_and_png_keep_precision():
    gray = (np.arange(40 * 50).reshape(40, 50) * 31 % 65536).astype(np.uint16)
    for ext in (".tif", ".png"):
        ok, buf = cv2.imencode(ext, gray)
        d = decode(buf.tobytes())
        assert d.bit_depth == 16 and d.pixel_format == "gray"
        np.testing.assert_allclose(d.pixels[..., 0], gray / 65535.0, atol=1e-6)
        np.testing.assert_array_equal(d.pixels[..., 0], d.pixels[..., 2])


def test_16bit_colour_png_and_tiff_keep_precision_and_rgb_order():
    rgb = np.zeros((30, 40, 3), np.uint16)
    rgb[..., 0] = 65535  # red
    rgb[..., 1] = 257  # a value an 8-bit path would round
    for ext in (".png", ".tif"):
        ok, buf = cv2.imencode(ext, rgb[..., ::-1])  # OpenCV writes BGR
        d = decode(buf.tobytes())
        assert d.bit_depth == 16 and d.pixel_format == "RGB"
        np.testing.assert_allclose(d.pixels[0, 0], [1.0, 257 / 65535, 0.0], atol=1e-7)


def test_multipage_tiff_uses_first_page_and_says_so():
    pages = [Image.fromarray(pattern(32, 32, s)) for s in range(3)]
    buf = io.BytesIO()
    pages[0].save(buf, format="TIFF", save_all=True, append_images=pages[1:])
    d = decode(buf.getvalue())
    assert d.frames == 3 and "page 1 of 3 used" in d.notes
    np.testing.assert_allclose(d.pixels * 255, pattern(32, 32, 0), atol=0.51)


def test_animated_gif_uses_first_frame():
    frames = [Image.fromarray(np.full((32, 32, 3), v, np.uint8)) for v in (10, 200)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    d = decode(buf.getvalue())
    assert d.frames == 2 and "frame 1 of 2 used" in d.notes
    assert abs(float(d.pixels.mean()) * 255 - 10) < 2


def test_exif_orientation_is_applied_and_datetime_read():
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, :5] = 255  # white band on the left
    im = Image.fromarray(img)
    exif = im.getexif()
    exif[274] = 6  # rotate 90 degrees clockwise to display
    exif.get_ifd(0x8769)[36867] = "2024:05:06 07:08:09"
    d = decode(encode(im, "JPEG", quality=100, exif=exif.tobytes()))
    assert d.pixels.shape[:2] == (40, 20)  # rotated to portrait
    assert d.pixels[:5].mean() > 0.9  # the left band is now on top
    assert d.exif_orientation == 6 and any("orientation 6" in n for n in d.notes)
    assert d.exif_datetime == "2024:05:06 07:08:09"


def test_palette_rgba_gray_cmyk_bilevel():
    img = pattern(32, 32)
    pal = decode(encode(Image.fromarray(img).convert("P"), "PNG"))
    assert pal.pixel_format == "palette" and pal.pixels.shape == (32, 32, 3)

    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:16, :, 3] = 255  # top opaque red, bottom fully transparent
    d = decode(encode(rgba, "PNG"))
    assert d.pixel_format == "RGBA" and "transparent pixels composited on white" in d.notes
    assert d.pixels[0, 0].tolist() == [1.0, 0.0, 0.0]
    assert d.pixels[31, 0].tolist() == [1.0, 1.0, 1.0]

    gray = decode(encode(Image.fromarray(img).convert("L"), "PNG"))
    assert gray.pixel_format == "gray"
    np.testing.assert_array_equal(gray.pixels[..., 0], gray.pixels[..., 1])

    cmyk = decode(encode(Image.fromarray(img).convert("CMYK"), "JPEG", quality=100))
    assert cmyk.pixel_format == "CMYK" and "CMYK converted to RGB" in cmyk.notes
    assert np.abs(cmyk.pixels * 255 - img).mean() < 6

    bilevel = decode(encode(Image.fromarray(img).convert("1"), "PNG"))
    assert set(np.unique(bilevel.pixels).tolist()) <= {0.0, 1.0}


def test_max_side_downsamples_and_keeps_original_size():
    d = decode(encode(pattern(300, 600), "PNG"), max_side=150)
    assert d.pixels.shape == (75, 150, 3) and (d.width, d.height) == (600, 300)
    assert any("downsampled from 600x300" in n for n in d.notes)


@pytest.mark.parametrize("max_side", [None, 256, 97])
@pytest.mark.parametrize("mode,fmt", [("L", "PNG"), ("L", "JPEG"), ("I;16", "PNG"), ("1", "PNG")])
def test_gray_images_are_fitted_as_one_channel_with_the_rgb_result(mode, fmt, max_side):
    """A gray image is resized and clipped as one channel, then repeated to RGB: the
    same floats as repeating first (the earlier order), and a C-ordered RGB array."""
    rng = np.random.default_rng(7)
    gray = (rng.random((331, 517)) * (65535 if mode == "I;16" else 255)).astype(
        np.uint16 if mode == "I;16" else np.uint8
    )
    image = Image.fromarray(gray)  # uint16: I;16, uint8: L
    if mode == "1":
        image = image.convert("1")
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    d = decode(buf.getvalue(), max_side=max_side)
    assert d.mode == mode
    # the earlier order: the decoded samples to RGB, then fitted, then clipped
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        scale = 65535.0 if mode == "I;16" else 255.0
        samples = np.asarray(im if mode == "I;16" else im.convert("L"), np.float32) / scale
    rgb = np.repeat(samples[:, :, None], 3, axis=2)
    if max_side is not None:
        size = (max_side, round(331 * max_side / 517))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    expected = np.clip(rgb, 0.0, 1.0)
    assert d.pixels.dtype == np.float32 and d.pixels.flags.c_contiguous
    assert d.pixels.shape == expected.shape and np.array_equal(d.pixels, expected)


# .heic is refused by its ending in the folder walk (tested below), not by the decoder.
@pytest.mark.parametrize("name", sorted(n for n in bad_files() if not n.endswith(".heic")))
def test_each_bad_file_raises_with_its_reason(name):
    data, reason = bad_files()[name]
    with pytest.raises(ImageLoadError, match=reason) as info:
        decode(data, name=name, max_pixels=100_000_000)
    assert name in str(info.value)


def test_bomb_limit_is_configurable():
    data = encode(pattern(100, 100), "PNG")
    with pytest.raises(ImageLoadError, match="decompression bomb.*limit of 5000"):
        decode(data, max_pixels=5000)
    assert decode(data, max_pixels=10_000).pixels.shape == (100, 100, 3)


def test_folder_sorted_ids_skips_and_ignores(tmp_path):
    write_tree(tmp_path, good_files())
    write_tree(tmp_path, {name: data for name, (data, _) in bad_files().items()})
    (tmp_path / "readme.txt").write_text("not an image")
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    s = load_folder(tmp_path)
    assert s.ids == ("good_a.jpg", "good_b.png", "sub/good_c.png", "sub/good_d.tif")
    skipped = {x.path: x.reason for x in s.skipped}
    assert set(skipped) == set(bad_files())
    for name, (_, reason) in bad_files().items():
        assert re.search(reason, skipped[name]), (name, skipped[name])
    assert {x.path for x in s.ignored} == {"readme.txt", ".DS_Store"}
    for rec in s:
        assert rec.sha256 == hashlib.sha256((tmp_path / rec.id).read_bytes()).hexdigest()
        assert rec.pixels.dtype == np.float32 and rec.pixels.shape[2] == 3


def test_min_side_and_non_recursive(tmp_path):
    write_tree(tmp_path, good_files())
    s = load_folder(tmp_path, config=LoadConfig(min_side=65, recursive=False))
    assert s.ids == ("good_b.png",) or s.ids == ()
    reasons = {x.path: x.reason for x in s.skipped}
    assert "minimum side is 65 px" in reasons["good_a.jpg"]


def test_duplicates_are_kept_and_flagged(tmp_path):
    data = encode(pattern(40, 40), "PNG")
    write_tree(
        tmp_path, {"a.png": data, "b/a.png": data, "c.png": encode(pattern(40, 40, 9), "PNG")}
    )
    s = load_folder(tmp_path)
    assert s.ids == ("a.png", "b/a.png", "c.png")
    assert s.duplicates() == {"b/a.png": "a.png"}


def test_load_paths_ids_are_relative_to_common_folder(tmp_path):
    write_tree(
        tmp_path,
        {"x/one.png": encode(pattern(), "PNG"), "y/one.png": encode(pattern(seed=4), "PNG")},
    )
    s = load_paths([tmp_path / "y/one.png", tmp_path / "x/one.png"])
    assert s.ids == ("y/one.png", "x/one.png")


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ImageLoadError, match="no such folder"):
        load_folder(tmp_path / "nope")


def test_uploads_are_sanitised_and_made_unique():
    data = encode(pattern(), "PNG")
    s = load_uploads(
        [("../../etc/a.png", data), ("a.png", data), ("C:\\x\\b.png", b""), ("<script>.png", data)]
    )
    assert s.ids == ("a.png", "a-2.png", "_script_.png")
    assert [x.path for x in s.skipped] == ["b.png"]
    assert s.duplicates() == {"a-2.png": "a.png", "_script_.png": "a.png"}
    assert all(r.path is None for r in s)


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("../../etc/passwd", "passwd"),
        ("/abs/path/x.jpg", "x.jpg"),
        ("..", "upload"),
        ("a\x00b.png", "ab.png"),
        ("ünïcode..name.png", "ünïcode..name.png"),
    ],
)
def test_sanitize_upload_name(raw, expected):
    assert sanitize_upload_name(raw) == expected


def test_truncated_files_stay_refused_when_a_library_flips_pillows_switch(monkeypatch):
    """WeasyPrint sets ImageFile.LOAD_TRUNCATED_IMAGES = True on import; we must not care."""
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data, reason = bad_files()["truncated.jpg"]
    with pytest.raises(ImageLoadError, match=reason):
        decode(data, name="truncated.jpg")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored for whoever set it


def test_float_tiff_with_nan_samples_is_refused_not_blackened():
    """A NaN patch used to make the min-max rescale return a flat black image (silently)."""
    rng = np.random.default_rng(0)
    samples = rng.random((100, 100)).astype(np.float32) * 5.0
    samples[40:60, 40:60] = np.nan
    buf = io.BytesIO()
    Image.fromarray(samples, mode="F").save(buf, format="TIFF")
    with pytest.raises(ImageLoadError, match="non-finite samples: 400 of 10000 F samples"):
        decode(buf.getvalue(), name="scan.tif")
    samples[40:60, 40:60] = np.inf
    buf = io.BytesIO()
    Image.fromarray(samples, mode="F").save(buf, format="TIFF")
    with pytest.raises(ImageLoadError, match="non-finite samples"):
        decode(buf.getvalue(), name="scan.tif")


def test_large_jpeg_is_decoded_reduced_and_a_bomb_still_refused():
    big = cv2.resize(pattern(180, 240), (2400, 1800), interpolation=cv2.INTER_LINEAR)
    data = encode(big, "JPEG", quality=90)
    # 4.3 MP against a 1 MP limit: decoded at 1/4 (600 x 450), the original size kept
    d = decode(data, name="scan.jpg", max_pixels=1_000_000, max_side=None)
    assert d.pixels.shape == (450, 600, 3) and (d.width, d.height) == (2400, 1800)
    assert any("decoded at 1/4 size (600x450 px, JPEG draft mode)" in n for n in d.notes)
    assert any("exceed load.max_pixels = 1000000" in n for n in d.notes)
    # the reduced decode is the image: close to an area resize of the full decode
    full = decode(data, name="scan.jpg", max_side=None).pixels
    area = cv2.resize(full, (600, 450), interpolation=cv2.INTER_AREA)
    assert float(np.abs(area - d.pixels).mean()) < 0.02
    # beyond 1/8 of the limit (64 x the pixels): still a decompression bomb
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        decode(data, name="scan.jpg", max_pixels=4_320_000 // 65, max_side=None)
    # other formats are not decoded reduced: over the limit is refused
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        decode(encode(big, "PNG"), name="scan.png", max_pixels=1_000_000)


@pytest.mark.slow
def test_a_108_megapixel_jpeg_scan_loads_within_3_gib(tmp_path):
    """A 12000 x 9000 museum scan: decoded at reduced size, peak memory of the process
    under 3 GiB (measured in a fresh interpreter)."""
    import subprocess
    import sys

    path = tmp_path / "scan.jpg"
    tile = Image.fromarray(pattern(300, 400))
    tile.resize((12000, 9000), Image.Resampling.NEAREST).save(path, quality=85)
    del tile
    code = (
        "import resource, sys\n"
        "from preprocessing import load_paths\n"
        f"s = load_paths([{str(path)!r}])\n"
        "r = s.records[0]\n"
        "print(r.meta.width, r.meta.height, r.pixels.shape[1], r.pixels.shape[0])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    sizes, peak_kib = out.stdout.split("\n")[:2]
    width, height, cols, rows = map(int, sizes.split())
    assert (width, height) == (12000, 9000) and max(cols, rows) == 2048
    assert int(peak_kib) < 3 * 2**20, f"peak {int(peak_kib) / 2**20:.2f} GiB"


def test_jpeg_within_the_limit_decodes_whole_as_before():
    """Only the pixel limit reduces a JPEG in the decoder: an ordinary photograph larger
    than load.max_side is decoded whole, then area-resized (results unchanged)."""
    big = cv2.resize(pattern(180, 240), (1200, 900), interpolation=cv2.INTER_LINEAR)
    data = encode(big, "JPEG", quality=90)
    d = decode(data, name="photo.jpg", max_side=256)
    assert not any("draft" in n for n in d.notes)
    full = decode(data, name="photo.jpg", max_side=None).pixels
    expected = cv2.resize(full, d.pixels.shape[1::-1], interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(d.pixels, np.clip(expected, 0, 1))


def test_threaded_loading_equals_one_thread(tmp_path, monkeypatch):
    # files load on LOAD_THREADS threads: the same records, skips and progress, in order
    import preprocessing.load as load_module

    write_tree(tmp_path, good_files())
    write_tree(tmp_path, {name: data for name, (data, _) in bad_files().items()})
    for k in range(12):
        write_tree(tmp_path, {f"more/{k:02d}.png": encode(pattern(40 + k, 60, seed=k), "PNG")})

    def run(threads):
        monkeypatch.setattr(load_module, "LOAD_THREADS", threads)
        seen = []
        config = LoadConfig(max_side=32)
        s = load_folder(tmp_path, config=config, progress=lambda d, t: seen.append(d))
        return s, seen

    (one, seen_one), (many, seen_many) = run(1), run(4)
    assert many.ids == one.ids and len(one.ids) == 16
    assert seen_many == seen_one == list(range(1, len(seen_one) + 1))
    assert [(s.path, s.reason) for s in many.skipped] == [(s.path, s.reason) for s in one.skipped]
    for a, b in zip(one, many, strict=True):
        assert a.sha256 == b.sha256 and a.meta == b.meta
        np.testing.assert_array_equal(a.pixels, b.pixels)
