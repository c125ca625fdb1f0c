"""Versions of Atelier and of the libraries its results depend on."""

from __future__ import annotations

import functools
import platform
from importlib import metadata

__all__ = ["atelier_version", "library_versions"]

_LIBRARIES = (
    "numpy",
    "scipy",
    "pandas",
    "scikit-image",
    "scikit-learn",
    "opencv-contrib-python-headless",
    "opencv-python-headless",
    "pillow",
    "matplotlib",
    "jinja2",
    "pystackreg",
    "streamlit",
)


@functools.cache  # read once: 1 ms a call, and the figures' keys ask for it hundreds of times
def atelier_version() -> str:
    try:
        return metadata.version("atelier")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries results depend on, plus Python and cv2."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    import cv2

    out["cv2 (in use)"] = cv2.__version__
    return out
