"""Decode image bytes into Atelier's one internal format.

The internal format is RGB, channels last, ``float32`` in [0, 1], shape
``(M, N, 3)``. Everything format-specific (EXIF orientation, palettes, alpha,
CMYK, 16-bit samples, multi-page files) is resolved here, once, and written
into the notes of the image's metadata.
"""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import ImageLoadError

__all__ = [
    "SUPPORTED_FORMATS",
    "IMAGE_EXTENSIONS",
    "UNSUPPORTED_IMAGE_EXTENSIONS",
    "DecodedImage",
    "decode_image",
]

#: Pillow format names Atelier decodes (MPO is the multi-picture JPEG variant).
SUPPORTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "TIFF", "BMP", "WEBP", "GIF"})

#: File endings taken as images when a folder is searched.
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".tif", ".tiff", ".bmp", ".dib", ".webp", ".gif"}
)

#: Image file endings that are recognised but not supported: such files are
#: reported as skipped with the reason, not ignored.
UNSUPPORTED_IMAGE_EXTENSIONS = frozenset(
    {
        ".heic",
        ".heif",
        ".avif",
        ".jxl",
        ".jp2",
        ".j2k",
        ".svg",
        ".psd",
        ".xcf",
        ".ico",
        ".icns",
        ".tga",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
        ".exr",
        ".hdr",
        ".dng",
        ".cr2",
        ".cr3",
        ".nef",
        ".arw",
        ".orf",
        ".rw2",
        ".raf",
        ".eps",
        ".pdf",
    }
)

_EXIF_IFD = 0x8769
_TAG_DATETIME_ORIGINAL = 36867
_TAG_DATETIME = 306
_TAG_ORIENTATION = 274
_TIFF_BITS_PER_SAMPLE = 258

# Pillow's bomb guard and its truncated-image switch are module-level settings that
# other libraries change (WeasyPrint sets LOAD_TRUNCATED_IMAGES = True on import, which
# would let truncated files through silently). Both are set for each decode, under this
# lock so concurrent loads do not race on them, and restored afterwards.
_PILLOW_GUARD_LOCK = threading.Lock()


@contextmanager
def _strict_pillow(max_pixels: int) -> Iterator[list[warnings.WarningMessage]]:
    """Strict Pillow settings; yields the warnings raised meanwhile (recorded, not printed)."""
    with _PILLOW_GUARD_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        previous = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
        # JPEGs up to DRAFT_FACTOR x the limit open: they are decoded reduced (draft
        # mode); _decode checks every declared size against the limit itself
        Image.MAX_IMAGE_PIXELS = max_pixels * DRAFT_FACTOR
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield caught
        finally:
            Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = previous


@dataclass
class DecodedImage:
    """Pixels in the internal format plus what decoding learned about the file."""

    pixels: np.ndarray
    format: str
    mode: str
    pixel_format: str
    bit_depth: int
    width: int
    height: int
    frames: int = 1
    exif_orientation: int | None = None
    exif_datetime: str | None = None
    notes: list[str] = field(default_factory=list)


def _describe_non_image(data: bytes) -> str:
    head = data[:512].lstrip()
    lowered = head.lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered:
        return "not an image: the content is HTML"
    if lowered.startswith(b"<?xml") or lowered.startswith(b"<svg"):
        return "not an image: the content is XML/SVG, which is not supported"
    if head.startswith(b"%PDF"):
        return "not an image: the content is a PDF document"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "not an image: the content is not a recognised image format"
    return "not an image: the content is text"


#: A JPEG larger than the pixel limit is decoded at 1/2, 1/4 or 1/8 of its size (its DCT
#: scaled in the decoder: Pillow's draft mode), so it may declare up to 8 x 8 times the limit.
DRAFT_FACTOR = 64


def _draft_scale(cols: int, rows: int, max_pixels: int) -> int:
    """The smallest JPEG reduction (1, 2, 4 or 8) that brings the image within the pixel
    limit. Images within the limit are decoded whole (then resized as any other), so
    ordinary photographs decode exactly as before."""
    scale = 1
    while scale < 8 and (cols // scale) * (rows // scale) > max_pixels:
        scale *= 2
    return scale


def _check_finite(gray: np.ndarray, name: str, mode: str) -> None:
    bad = int(np.count_nonzero(~np.isfinite(gray)))
    if bad:
        raise ImageLoadError(
            name,
            f"non-finite samples: {bad} of {gray.size} {mode} samples are NaN or infinite "
            "(no value to compare there); fix or crop them and load the image again",
        )


def _open(data: bytes, name: str, max_pixels: int) -> Image.Image:
    """Open (header only); call inside :func:`_strict_pillow`."""
    try:
        return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as err:
        raise ImageLoadError(
            name, f"decompression bomb guard: {err} (limit {max_pixels} pixels)"
        ) from err
    except UnidentifiedImageError as err:
        raise ImageLoadError(name, _describe_non_image(data)) from err
    except Exception as err:  # noqa: BLE001 - Pillow's plugins raise many types on bad input
        raise ImageLoadError(name, f"corrupt image header ({type(err).__name__}: {err})") from err


def _is_16bit_colour(im: Image.Image, data: bytes) -> bool:
    """Pillow reads 16-bit colour PNG/TIFF as 8-bit RGB; detect those files."""
    if im.mode not in {"RGB", "RGBA"}:
        return False
    if im.format == "PNG" and len(data) > 24:
        return data[24] == 16  # IHDR bit depth
    if im.format == "TIFF":
        bits = getattr(im, "tag_v2", {}).get(_TIFF_BITS_PER_SAMPLE)
        if isinstance(bits, tuple):
            return bool(bits) and bits[0] == 16
        return bits == 16
    return False


def _decode_16bit_colour(data: bytes, name: str) -> np.ndarray:
    """Decode a 16-bit colour PNG/TIFF with OpenCV (BGR[A] uint16 -> RGB[A] float)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16 or arr.ndim != 3:
        raise ImageLoadError(name, "corrupt 16-bit colour image data")
    arr = arr.astype(np.float32) / 65535.0
    if arr.shape[2] == 4:
        return arr[:, :, [2, 1, 0, 3]]
    return arr[:, :, ::-1].copy()


def _orient_array(arr: np.ndarray, orientation: int | None) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an array, as exif_transpose does."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1, :],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.rot90(a, k=-1),
        7: lambda a: np.rot90(np.swapaxes(a, 0, 1), k=2),
        8: lambda a: np.rot90(a, k=1),
    }
    op = ops.get(orientation or 1)
    return np.ascontiguousarray(op(arr)) if op else arr


def _composite_on_white(rgba: np.ndarray, notes: list[str]) -> np.ndarray:
    alpha = rgba[:, :, 3:4]
    if float(alpha.min()) < 1.0:
        notes.append("transparent pixels composited on white")
    return rgba[:, :, :3] * alpha + (1.0 - alpha)


def _to_float_rgb(
    im: Image.Image, notes: list[str], name: str = "image"
) -> tuple[np.ndarray, str, int]:
    """Convert a loaded Pillow image to RGB float32; return pixel format and depth.

    A gray image stays one channel, ``(M, N, 1)``: :func:`decode_image` repeats it
    to RGB once it is fitted to its size (a third of the resizing and clipping, and
    the same floats: OpenCV's area resize treats each channel alike; tested).

    Raises
    ------
    ImageLoadError
        A float image with NaN or infinite samples (a min-max rescale would
        silently turn it into a flat image).
    """
    mode = im.mode
    if mode in {"I;16", "I;16B", "I;16L", "I;16N"}:
        gray = np.asarray(im, dtype=np.float32) / 65535.0
        return gray[:, :, None], "gray", 16
    if mode in {"I", "F"}:
        gray = np.asarray(im, dtype=np.float64)
        _check_finite(gray, name, mode)
        lo, hi = float(gray.min()), float(gray.max())
        if mode == "I" and lo >= 0 and hi <= 65535:
            depth = 16 if hi > 255 else 8
            gray = gray / (65535.0 if depth == 16 else 255.0)
        elif mode == "F" and lo >= 0 and hi <= 1:
            depth = 32
        else:
            depth = 32
            gray = (gray - lo) / (hi - lo) if hi > lo else np.zeros_like(gray)
            notes.append(f"{mode} samples in [{lo:g}, {hi:g}] rescaled to [0, 1]")
        gray32 = gray.astype(np.float32)
        return gray32[:, :, None], "gray", depth
    if mode == "CMYK":
        notes.append("CMYK converted to RGB")
        arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
        return arr, "CMYK", 8
    has_alpha = mode in {"RGBA", "LA", "PA", "RGBa", "La"} or (
        mode in {"P", "L", "RGB"} and "transparency" in im.info
    )
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
        kind = {"P": "palette+alpha", "PA": "palette+alpha", "LA": "gray+alpha", "La": "gray+alpha"}
        return _composite_on_white(rgba, notes), kind.get(mode, "RGBA"), 8
    if mode in {"1", "L"}:
        gray = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
        return gray[:, :, None], ("bilevel" if mode == "1" else "gray"), (1 if mode == "1" else 8)
    if mode == "P":
        return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0, "palette", 8
    if mode != "RGB":
        notes.append(f"{mode} converted to RGB")
    return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0, "RGB", 8


def _exif_fields(im: Image.Image) -> tuple[int | None, str | None]:
    try:
        exif = im.getexif()
    except Exception:  # malformed EXIF must not cost the image
        return None, None
    orientation = exif.get(_TAG_ORIENTATION)
    when = None
    try:
        when = exif.get_ifd(_EXIF_IFD).get(_TAG_DATETIME_ORIGINAL)
    except Exception:
        when = None
    when = when or exif.get(_TAG_DATETIME)
    if isinstance(when, bytes):
        when = when.decode("ascii", "replace")
    when = str(when).strip("\x00 ") if when else None
    orient = int(orientation) if isinstance(orientation, int) and 1 <= orientation <= 8 else None
    return orient, when or None


def decode_image(
    data: bytes, *, name: str, max_pixels: int, min_side: int, max_side: int | None
) -> DecodedImage:
    """Decode file bytes to RGB float32 in [0, 1].

    Parameters
    ----------
    data : bytes
        The file's content.
    name : str
        File name or id used in error messages.
    max_pixels : int
        Largest declared width x height accepted (decompression-bomb guard).
    min_side : int
        Smallest accepted shorter side, in pixels.
    max_side : int or None
        Longer side above which the decoded image is downsampled.

    Returns
    -------
    DecodedImage
        Pixels ``(M, N, 3) float32`` and what was learned about the file.

    Raises
    ------
    ImageLoadError
        Empty, not an image, unsupported format, too large, too small,
        truncated or corrupt; the message says which.
    """
    with _strict_pillow(max_pixels):
        decoded = _decode(data, name=name, max_pixels=max_pixels, min_side=min_side)
    # outside the lock that Pillow's global settings need: another thread decodes meanwhile
    arr = _fit_side(decoded.pixels, max_side, decoded.notes)
    arr = np.clip(np.ascontiguousarray(arr, dtype=np.float32), 0.0, 1.0)
    if not np.isfinite(arr).all():
        raise ImageLoadError(name, "image data contains non-finite values")
    if arr.ndim == 2 or arr.shape[2] == 1:  # gray, kept one channel until here
        arr = np.repeat(arr.reshape(*arr.shape[:2], 1), 3, axis=2)
    return replace(decoded, pixels=arr)


def _fit_side(arr: np.ndarray, max_side: int | None, notes: list[str]) -> np.ndarray:
    """Downsample (area interpolation) so that the longer side is at most ``max_side``."""
    height, width = arr.shape[:2]
    if max_side is None or max(height, width) <= max_side:
        return arr
    scale = max_side / max(height, width)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    notes.append(f"downsampled from {width}x{height} to {new_size[0]}x{new_size[1]} px")
    return cv2.resize(arr, new_size, interpolation=cv2.INTER_AREA)


def _draft(im: Image.Image, draft: int, max_pixels: int, name: str) -> str:
    """Have the JPEG decoder reduce the image by ``draft``; the note saying so and why.

    Raises
    ------
    ImageLoadError
        When the decoder cannot reduce it within the limit (still a bomb).
    """
    cols, rows = im.size
    im.draft("RGB", (-(-cols // draft), -(-rows // draft)))
    if im.size[0] * im.size[1] > max_pixels:
        raise ImageLoadError(
            name,
            f"decompression bomb guard: declared size {cols}x{rows} = {cols * rows} pixels "
            f"exceeds the limit of {max_pixels} and the decoder cannot reduce it enough",
        )
    return (
        f"decoded at 1/{draft} size ({im.size[0]}x{im.size[1]} px, JPEG draft mode): its "
        f"{cols}x{rows} px exceed load.max_pixels = {max_pixels}"
    )


def _decode(data: bytes, *, name: str, max_pixels: int, min_side: int) -> DecodedImage:
    """The pixels as decoded and oriented (not yet fitted to ``max_side`` nor clipped;
    a gray image as one channel) and what was learned about the file; call inside
    :func:`_strict_pillow`."""
    if not data:
        raise ImageLoadError(name, "empty file (0 bytes)")
    im = _open(data, name, max_pixels)
    fmt = im.format or "unknown"
    if fmt not in SUPPORTED_FORMATS:
        raise ImageLoadError(
            name,
            f"unsupported image format {fmt}; supported: "
            + ", ".join(sorted(SUPPORTED_FORMATS - {"MPO"})),
        )
    cols, rows = im.size
    draft = 1
    if fmt in ("JPEG", "MPO"):
        draft = _draft_scale(cols, rows, max_pixels)
    if (cols // draft) * (rows // draft) > max_pixels:
        raise ImageLoadError(
            name,
            f"decompression bomb guard: declared size {cols}x{rows} = {cols * rows} pixels "
            f"exceeds the limit of {max_pixels}",
        )
    if min(cols, rows) < min_side:
        raise ImageLoadError(
            name, f"image too small: {cols}x{rows} px, the minimum side is {min_side} px"
        )
    notes: list[str] = []
    try:
        frames = int(getattr(im, "n_frames", 1) or 1)  # walks every page: may meet corruption
        if frames > 1:
            unit = "page" if fmt == "TIFF" else "frame"
            notes.append(f"{unit} 1 of {frames} used")
        orientation, when = _exif_fields(im)
        im.seek(0)
        if draft > 1:
            notes.append(_draft(im, draft, max_pixels, name))
        im.load()
        if _is_16bit_colour(im, data):
            arr = _orient_array(_decode_16bit_colour(data, name), orientation)
            if arr.shape[2] == 4:
                arr = _composite_on_white(arr, notes)
            pixel_format, depth = "RGB", 16
        else:
            oriented = ImageOps.exif_transpose(im) if orientation not in (None, 1) else im
            arr, pixel_format, depth = _to_float_rgb(oriented, notes, name)
    except ImageLoadError:
        raise
    except MemoryError:
        raise
    except Exception as err:  # noqa: BLE001 - decoders raise many types on corrupt data
        raise ImageLoadError(
            name, f"truncated or corrupt image data ({type(err).__name__}: {err})"
        ) from err
    if orientation not in (None, 1):
        notes.append(f"EXIF orientation {orientation} applied")
    height, width = arr.shape[:2]
    if draft > 1:  # the record keeps the original's size (evidence is scaled to it)
        width, height = (rows, cols) if orientation in (5, 6, 7, 8) else (cols, rows)
    return DecodedImage(
        pixels=arr,
        format="JPEG" if fmt == "MPO" else fmt,
        mode=im.mode,
        pixel_format=pixel_format,
        bit_depth=depth,
        width=width,
        height=height,
        frames=frames,
        exif_orientation=orientation,
        exif_datetime=when,
        notes=notes,
    )
