"""Configuration of the loading and preprocessing stages."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError

__all__ = ["LoadConfig", "PreprocessConfig"]


def _positive_int(name: str, value: object, *, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class LoadConfig:
    """How input files are found, validated and decoded.

    Parameters
    ----------
    max_pixels : int
        Decompression-bomb guard: a file whose declared width x height exceeds
        this is skipped before its pixels are decoded. Default 100 megapixels.
    min_side : int
        Images whose shorter side is below this many pixels are skipped.
    max_side : int or None
        Decoded images whose longer side exceeds this are downsampled (area
        interpolation) right after decoding, to bound memory; the record keeps
        the original size. ``None`` keeps full resolution. The analysis works
        at ``PreprocessConfig.work_size``, far below this.
    recursive : bool
        Whether folders are searched recursively.
    """

    max_pixels: int = 100_000_000
    min_side: int = 16
    max_side: int | None = 2048
    recursive: bool = True

    def __post_init__(self) -> None:
        _positive_int("load.max_pixels", self.max_pixels)
        _positive_int("load.min_side", self.min_side)
        if self.max_side is not None:
            _positive_int("load.max_side", self.max_side, minimum=self.min_side)
        if not isinstance(self.recursive, bool):
            raise ConfigError(f"load.recursive must be true or false, got {self.recursive!r}")


@dataclass(frozen=True)
class PreprocessConfig:
    """How images become the aligned grayscale work images that metrics compare.

    Parameters
    ----------
    work_size : int
        Side of the square work canvas in pixels. Each image is scaled to fit
        inside it with its aspect ratio kept and padded (never stretched); the
        padding is marked invalid in the image's mask.
    equalize : tuple of str
        Any of ``brightness``, ``contrast``, ``sharpness``: matched across the
        set on CIELAB L* (colour kept), at the working size.
    equalize_reference : str or None
        Id of the image whose measures are the target; the set's median when
        ``None``.
    align : str
        ``none``, a pystackreg motion model (``translation``, ``rigid``,
        ``scaled-rotation``, ``affine``, ``bilinear``) or ``features``
        (SIFT + RANSAC, for large rotations, scale changes and perspective).
    reference : str
        ``auto`` (the iterated mean for motion models; the image with the
        most inliers for features), ``mean``, ``first``, ``previous`` or an
        image id.
    feature_model : str
        ``similarity``, ``affine`` or ``homography`` (feature path).
    align_rounds : int
        Most rounds of the iterated mean reference.
    align_tolerance : float
        The iterated mean stops when no pixel's source moves this many pixels.
    min_inliers : int
        Feature path: fewer RANSAC inliers leave an image unaligned.
    """

    work_size: int = 256
    equalize: tuple[str, ...] = ()
    equalize_reference: str | None = None
    align: str = "none"
    reference: str = "auto"
    feature_model: str = "affine"
    align_rounds: int = 5
    align_tolerance: float = 0.1
    min_inliers: int = 8

    def __post_init__(self) -> None:
        from .align import ALIGN_METHODS, FEATURE_MODELS
        from .equalize import MEASURES

        _positive_int("preprocess.work_size", self.work_size, minimum=32)
        if self.work_size > 4096:
            raise ConfigError(f"preprocess.work_size must be at most 4096, got {self.work_size}")
        equalize = (self.equalize,) if isinstance(self.equalize, str) else tuple(self.equalize)
        object.__setattr__(self, "equalize", equalize)
        unknown = [m for m in equalize if m not in MEASURES]
        if unknown:
            raise ConfigError(
                f"preprocess.equalize: unknown measure(s) {', '.join(map(repr, unknown))}; "
                f"valid: {', '.join(MEASURES)}"
            )
        if self.align not in ALIGN_METHODS:
            raise ConfigError(
                f"preprocess.align: unknown alignment {self.align!r}; "
                f"valid: {', '.join(ALIGN_METHODS)}"
            )
        if self.feature_model not in FEATURE_MODELS:
            raise ConfigError(
                f"preprocess.feature_model: unknown model {self.feature_model!r}; "
                f"valid: {', '.join(FEATURE_MODELS)}"
            )
        if not isinstance(self.reference, str) or not self.reference:
            raise ConfigError(f"preprocess.reference must be a name, got {self.reference!r}")
        if self.align == "bilinear" and self.reference == "previous":
            raise ConfigError(
                "preprocess: the bilinear model cannot align to the previous image "
                "(pystackreg does not support it); use reference auto, mean, first or an image id"
            )
        if self.align == "features" and self.reference in ("mean", "previous"):
            raise ConfigError(
                f"preprocess: the feature path aligns to one image, not to {self.reference!r}; "
                "use reference auto, first or an image id"
            )
        _positive_int("preprocess.align_rounds", self.align_rounds)
        _positive_int("preprocess.min_inliers", self.min_inliers, minimum=3)
        tol = self.align_tolerance
        if isinstance(tol, bool) or not isinstance(tol, int | float) or not tol > 0:
            raise ConfigError(f"preprocess.align_tolerance must be a positive number, got {tol!r}")
