"""Atelier's exception classes.

Every error Atelier raises on purpose derives from :class:`AtelierError` and
from the built-in exception a caller would naturally catch (``ValueError``,
``OSError``), so ``except ValueError`` keeps working for code that does not
know about Atelier. The classes live here, in the lowest layer, so that every
package can raise them without importing a higher one.
"""

from __future__ import annotations

__all__ = [
    "AtelierError",
    "ConfigError",
    "ImageLoadError",
    "AlignmentError",
    "MatrixError",
    "ClusteringError",
    "NoUsableImageError",
]


class AtelierError(Exception):
    """Base class of every error raised by Atelier on purpose."""


class ConfigError(AtelierError, ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


class ImageLoadError(AtelierError, ValueError):
    """An image file cannot be used; ``path`` and ``reason`` say which and why.

    Parameters
    ----------
    path : str
        The file (or upload name) that failed.
    reason : str
        A short, specific explanation, e.g. ``"empty file (0 bytes)"``.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class NoUsableImageError(AtelierError, ValueError):
    """An analysis was asked for, but no input image could be used."""


class AlignmentError(AtelierError, ValueError):
    """An alignment option or combination cannot be carried out."""


class MatrixError(AtelierError, ValueError):
    """A similarity or distance matrix breaks its contract."""


class ClusteringError(AtelierError, ValueError):
    """A clustering request cannot be carried out on the given input."""
