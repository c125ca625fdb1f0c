"""Photographs of real paintings, fetched from the package index on the user's request.

The ``unraphael`` distribution (0.2.1) ships 11 photographs of copies of one
Raphael composition (the London, Naples, Edinburgh, Nostell Priory, Oxford,
Zurich ... pictures). They are what that tool's users analyse, and the one
set of real paintings Atelier can be tried on without committing images.

Nothing here runs unless asked: :func:`fetch_paintings` downloads the wheel
once (``pip download``, with the package index pip is configured for), checks
every image against its SHA-256 below, and keeps the images in the cache
folder; later calls read them from there and need no network.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from preprocessing.errors import AtelierError

__all__ = ["PAINTINGS", "PaintingsUnavailable", "fetch_paintings", "paintings_dir"]

DISTRIBUTION = "unraphael==0.2.1"

#: file name -> SHA-256 of the photographs in the unraphael 0.2.1 wheel.
PAINTINGS: dict[str, str] = {  # fmt: skip
    "0_edinburgh_nat_gallery.jpg": "0ea46e9b6da597df22d4b9488d76846840e29a1e0a5456e6009a8e4b2adfa9ec",  # noqa: E501
    "1_london_nat_gallery.jpg": "6c1214a54243cf6a2cec4b7fbddb1ea86c0fc34255b1296e1b4b11f61449dd04",  # noqa: E501
    "2_naples_museo_capodimonte.jpg": "61c22c071f72971764cf97cdb9a809b6315fef3d8508cc3f6c47203afa5f9bf1",  # noqa: E501
    "3_milan_private.jpg": "929bcee42cc64efcfbc6ee5956740e028260f082e6f3bd3521948a1270eae3a1",  # noqa: E501
    "4_oxford_ashmolean.jpg": "98d9aa10ab491347be8901e2c90f18f547f597cc302816f747a0e5d47b3d8483",  # noqa: E501
    "5_uk_nostrell_priory.jpg": "9fa8273867d1ec427d09b8061bb12c2a0b48ddc53882ed345dc6e01363b0f6d5",  # noqa: E501
    "6_oxford_christ_church.jpg": "f6169a5b363152cadac6e2055542952b9f5b2d27dc866996401c42a31e971a89",  # noqa: E501
    "7_uk_warrington_museum.jpg": "4cc105d2cd70e5d2a9155006244454eb3357c907fd54efc1036fd10d1be629b8",  # noqa: E501
    "8_london_order_st-john.jpg": "2d11f1c853f1f938ddbb0ff2bd112781fdd7c1e9252925040735df3677b66bcf",  # noqa: E501
    "9_zurich_kuny_collection.jpg": "c1b6a22e37a35630a920e9b9fa7700aa6450b29fb3f7d8d05675ebafc291a43f",  # noqa: E501
    "10_nolay_maison_retraite.jpg": "e4ff3b2c809d236b3088c780d69045ffbb7adb2ece8589de11ed1ada6c9969f3",  # noqa: E501
}


class PaintingsUnavailable(AtelierError, RuntimeError):
    """The real paintings are not in the cache and could not be downloaded."""


def paintings_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the photographs are kept: ``<cache>/paintings/unraphael-0.2.1``."""
    from similarity.cache import default_cache_dir

    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return base / "paintings" / DISTRIBUTION.replace("==", "-")


def _complete(folder: Path) -> bool:
    for name, digest in PAINTINGS.items():
        path = folder / name
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            return False
    return True


def fetch_paintings(
    cache_dir: str | os.PathLike[str] | None = None, *, download: bool = True, timeout: float = 120
) -> Path:
    """The folder holding the 11 photographs, downloading them once if asked to.

    Parameters
    ----------
    cache_dir : path, optional
        Atelier's cache folder (default: ``similarity.default_cache_dir()``).
    download : bool
        Whether the wheel may be downloaded when the photographs are not cached.
    timeout : float
        Seconds the download may take.

    Returns
    -------
    Path
        A folder with exactly the 11 photographs, each checked by SHA-256.

    Raises
    ------
    PaintingsUnavailable
        Not cached and ``download`` is False, or the download failed (offline,
        no package index), or a file did not match its SHA-256.
    """
    folder = paintings_dir(cache_dir)
    if _complete(folder):
        return folder
    if not download:
        raise PaintingsUnavailable(
            f"the real paintings are not in {folder}; they are downloaded on request "
            f"(the {DISTRIBUTION} wheel from the package index)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "--quiet", "-d", tmp, DISTRIBUTION,
        ]  # fmt: skip
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise PaintingsUnavailable(f"could not download {DISTRIBUTION}: {err}") from err
        wheels = sorted(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no wheel"]
            raise PaintingsUnavailable(
                f"could not download {DISTRIBUTION} (offline, or no package index?): {last[0]}"
            )
        with zipfile.ZipFile(wheels[0]) as wheel:
            for name, digest in PAINTINGS.items():
                try:
                    blob = wheel.read(f"unraphael/data/images/{name}")
                except KeyError as err:
                    raise PaintingsUnavailable(f"{wheels[0].name} has no {name}") from err
                if hashlib.sha256(blob).hexdigest() != digest:
                    raise PaintingsUnavailable(f"{name} in {wheels[0].name} fails its SHA-256")
                part = folder / f".{name}.{os.getpid()}.part"
                part.write_bytes(blob)
                part.replace(folder / name)
    return folder
