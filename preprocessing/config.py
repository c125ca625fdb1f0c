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
    """How images become the grayscale work images that metrics compare.

    Parameters
    ----------
    work_size : int
        Side of the square work canvas in pixels. Each image is scaled to fit
        inside it with its aspect ratio kept and padded (never stretched); the
        padding is marked invalid in the image's mask.
    """

    work_size: int = 256

    def __post_init__(self) -> None:
        _positive_int("preprocess.work_size", self.work_size, minimum=32)
        if self.work_size > 4096:
            raise ConfigError(f"preprocess.work_size must be at most 4096, got {self.work_size}")
