"""Export one folder per cluster with copies of (or links to) the originals."""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath

from preprocessing import AtelierError

from .pipeline import AnalysisResult

__all__ = ["ExportError", "cluster_folder", "export_folders"]


class ExportError(AtelierError, OSError):
    """The cluster folders cannot be written."""


def cluster_folder(label: int) -> str:
    """The name of a cluster's folder (and of its grid figure): ``cluster_NN``, or
    ``noise`` for the images in no cluster."""
    return "noise" if label < 0 else f"cluster_{label:02d}"


def _safe_relative(image_id: str) -> Path:
    parts = [p for p in PurePosixPath(image_id).parts if p not in ("", ".", "..", "/")]
    if not parts:
        raise ExportError(f"image id {image_id!r} gives no file name")
    return Path(*parts)


def export_folders(
    result: AnalysisResult, destination: str | Path, *, link: bool = False
) -> dict[str, list[str]]:
    """Write ``destination/cluster_NN/`` (and ``noise/``) with each member's original file.

    Originals are copied (``link=False``, metadata kept) or symbolically
    linked; they are never moved or changed. Sub-folders of the ids are kept
    (``a/x.jpg`` -> ``cluster_00/a/x.jpg``) so equal file names cannot
    collide. Uploads (no file on disk) are written from their bytes only when
    copying is possible, otherwise listed as not exported.

    Returns
    -------
    dict
        Folder name -> exported image ids.

    Raises
    ------
    ExportError
        The destination exists and is not empty, or cannot be written.
    """
    dest = Path(destination)
    if dest.exists() and any(dest.iterdir()):
        raise ExportError(f"{dest}: export folder exists and is not empty")
    exported: dict[str, list[str]] = {}
    try:
        for lab, members in result.clusters().items():
            folder = cluster_folder(lab)
            for image_id in members:
                rec = result.images[image_id]
                if rec.path is None:
                    continue
                target = dest / folder / _safe_relative(image_id)
                target.parent.mkdir(parents=True, exist_ok=True)
                if link:
                    os.symlink(Path(rec.path).resolve(), target)
                else:
                    shutil.copy2(rec.path, target)
                exported.setdefault(folder, []).append(image_id)
    except OSError as err:
        raise ExportError(f"{dest}: cannot export ({err.strerror or err})") from err
    return exported
