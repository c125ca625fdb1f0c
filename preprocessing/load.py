"""Image intake: folders, lists of paths and in-memory uploads.

Loading never modifies a file (files are only opened for reading) and never
stops at a bad one: every file that cannot be used is kept in
``ImageSet.skipped`` with the reason, every file that is not an image at all is
kept in ``ImageSet.ignored``, and everything else becomes an
:class:`ImageRecord`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from ._decode import IMAGE_EXTENSIONS, UNSUPPORTED_IMAGE_EXTENSIONS, decode_image
from .config import LoadConfig
from .errors import ImageLoadError
from .spill import PixelSpill, Spilled, unspilled

__all__ = [
    "ImageMeta",
    "ImageRecord",
    "SpilledRecord",
    "SkippedFile",
    "ImageSet",
    "load_folder",
    "load_paths",
    "load_uploads",
    "sanitize_upload_name",
]

logger = logging.getLogger(__name__)

#: Threads that load files: one decodes (Pillow's settings are global, so decoding holds
#: a lock) while another scales, clips and hashes the image before (they release the GIL).
LOAD_THREADS = 2

ProgressFn = Callable[[int, int], None]

#: Called with the number of files about to be loaded; returns the spill to keep their
#: pixels in, or None to keep them in memory.
SpillFn = Callable[[int], PixelSpill | None]


@dataclass(frozen=True)
class ImageMeta:
    """What is known about an input file besides its pixels.

    ``width`` and ``height`` are the size of the decoded image after the EXIF
    orientation was applied, before any downsampling (see ``notes``).
    """

    width: int
    height: int
    format: str
    pixel_format: str
    bit_depth: int
    file_size: int
    frames: int = 1
    exif_orientation: int | None = None
    exif_datetime: str | None = None
    notes: tuple[str, ...] = ()
    duplicate_of: str | None = None


@dataclass(frozen=True, eq=False)
class ImageRecord:
    """One usable input image.

    Attributes
    ----------
    id : str
        Path relative to the input folder with ``/`` separators, or the
        sanitised, de-duplicated upload name.
    path : Path or None
        The file on disk (``None`` for uploads).
    sha256 : str
        SHA-256 of the file's bytes, hex.
    pixels : (M, N, 3) ndarray of float32
        RGB in [0, 1], channels last.
    meta : ImageMeta
    """

    id: str
    path: Path | None
    sha256: str
    pixels: np.ndarray
    meta: ImageMeta


class SpilledRecord(ImageRecord):
    """An :class:`ImageRecord` whose pixels lie in a :class:`~preprocessing.spill.PixelSpill`
    and are read from it each time ``pixels`` is used (a fresh read-only array), so a
    large collection does not hold them all in memory. Sent to a worker process, it
    carries where the pixels lie, not the pixels.

    ``pixels`` may also be given as an array (``dataclasses.replace`` does so), which is
    then held like an :class:`ImageRecord`'s.
    """

    _pixels: np.ndarray | Spilled

    def __init__(  # noqa: PLR0913
        self,
        id: str,  # noqa: A002
        path: Path | None,
        sha256: str,
        pixels: np.ndarray | Spilled,
        meta: ImageMeta,
    ) -> None:
        for name, value in (("id", id), ("path", path), ("sha256", sha256), ("meta", meta)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_pixels", pixels)

    @property  # type: ignore[override]
    def pixels(self) -> np.ndarray:
        return unspilled(self._pixels)

    @property
    def spilled_to(self) -> PixelSpill | None:
        """The spill its pixels lie in (None when they are held as an array)."""
        return self._pixels.owner if isinstance(self._pixels, Spilled) else None

    @classmethod
    def spill(cls, record: ImageRecord, spill: PixelSpill) -> SpilledRecord:
        """``record`` with its pixels written to ``spill``."""
        return cls(record.id, record.path, record.sha256, spill.put(record.pixels), record.meta)


@dataclass(frozen=True)
class SkippedFile:
    """A file that was found but could not be analysed, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class ImageSet:
    """The result of loading: usable records, skipped files, ignored files."""

    records: tuple[ImageRecord, ...]
    skipped: tuple[SkippedFile, ...] = ()
    ignored: tuple[SkippedFile, ...] = ()
    root: Path | None = None
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {r.id: i for i, r in enumerate(self.records)})

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[ImageRecord]:
        return iter(self.records)

    def __getitem__(self, key: int | str) -> ImageRecord:
        if isinstance(key, str):
            return self.records[self._index[key]]
        return self.records[key]

    @functools.cached_property
    def ids(self) -> tuple[str, ...]:
        """The records' ids, in order (made once)."""
        return tuple(r.id for r in self.records)

    def duplicates(self) -> dict[str, str]:
        """Map each duplicate image's id to the id of its first identical file."""
        return {r.id: r.meta.duplicate_of for r in self.records if r.meta.duplicate_of}


def _record(data: bytes, image_id: str, path: Path | None, config: LoadConfig) -> ImageRecord:
    decoded = decode_image(
        data,
        name=image_id,
        max_pixels=config.max_pixels,
        min_side=config.min_side,
        max_side=config.max_side,
    )
    meta = ImageMeta(
        width=decoded.width,
        height=decoded.height,
        format=decoded.format,
        pixel_format=decoded.pixel_format,
        bit_depth=decoded.bit_depth,
        file_size=len(data),
        frames=decoded.frames,
        exif_orientation=decoded.exif_orientation,
        exif_datetime=decoded.exif_datetime,
        notes=tuple(decoded.notes),
    )
    return ImageRecord(image_id, path, hashlib.sha256(data).hexdigest(), decoded.pixels, meta)


def _flag_duplicates(records: list[ImageRecord]) -> list[ImageRecord]:
    first: dict[str, str] = {}
    out = []
    for rec in records:
        original = first.setdefault(rec.sha256, rec.id)
        if original != rec.id:
            meta = ImageMeta(**{**rec.meta.__dict__, "duplicate_of": original})
            if isinstance(rec, SpilledRecord):  # the pixels stay where they lie
                rec = SpilledRecord(rec.id, rec.path, rec.sha256, rec._pixels, meta)
            else:
                rec = ImageRecord(rec.id, rec.path, rec.sha256, rec.pixels, meta)
        out.append(rec)
    return out


def _read_bytes(path: Path, image_id: str) -> bytes:
    try:
        with open(path, "rb") as fh:  # read-only: originals are never written
            return fh.read()
    except PermissionError as err:
        raise ImageLoadError(image_id, "cannot read file: permission denied") from err
    except IsADirectoryError as err:
        raise ImageLoadError(image_id, "is a folder, not a file") from err
    except OSError as err:
        raise ImageLoadError(image_id, f"cannot read file: {err.strerror or err}") from err


def _load_files(
    items: Sequence[tuple[str, Path]],
    config: LoadConfig,
    progress: ProgressFn | None,
    spill: SpillFn | None = None,
) -> tuple[list[ImageRecord], list[SkippedFile]]:
    records: list[ImageRecord] = []
    skipped: list[SkippedFile] = []
    store = None if spill is None else spill(len(items))

    def one(item: tuple[str, Path]) -> ImageRecord | SkippedFile:
        image_id, path = item
        try:
            rec = _record(_read_bytes(path, image_id), image_id, path, config)
            # written here, in the loading thread, so no more than the threads' images
            # are ever held decoded
            return rec if store is None else SpilledRecord.spill(rec, store)
        except ImageLoadError as err:
            return SkippedFile(image_id, err.reason)
        except MemoryError:
            return SkippedFile(image_id, "out of memory while decoding")

    # Pillow's decoding holds a lock (its settings are global); scaling, clipping and
    # hashing do not, and release the GIL: a second thread does them meanwhile. In order.
    pool = ThreadPoolExecutor(min(LOAD_THREADS, max(1, len(items))))
    try:
        for done, got in enumerate(pool.map(one, items), start=1):
            if isinstance(got, SkippedFile):
                logger.info("skipped %s: %s", got.path, got.reason)
                skipped.append(got)
            else:
                records.append(got)
            if progress is not None:
                progress(done, len(items))
    finally:  # interrupted: the files not yet started are not read
        pool.shutdown(wait=True, cancel_futures=True)
    return _flag_duplicates(records), skipped


def _walk(
    root: Path, recursive: bool
) -> tuple[list[tuple[str, Path]], list[SkippedFile], list[SkippedFile]]:
    """List candidate image files under ``root`` in a stable, sorted order."""
    candidates: list[tuple[str, Path]] = []
    skipped: list[SkippedFile] = []
    ignored: list[SkippedFile] = []

    def on_error(err: OSError) -> None:
        rel = Path(err.filename).relative_to(root).as_posix() if err.filename else "?"
        skipped.append(SkippedFile(rel, f"cannot read folder: {err.strerror or err}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
        here = Path(dirpath)
        for d in list(dirnames):
            if (here / d).is_symlink():
                rel = (here / d).relative_to(root).as_posix()
                ignored.append(SkippedFile(rel, "symbolic link to a folder, not followed"))
            if d.startswith(".") or (here / d).is_symlink():
                dirnames.remove(d)
        dirnames.sort()
        if not recursive:
            dirnames.clear()
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(root).as_posix()
            suffix = path.suffix.lower()
            if name.startswith("."):
                ignored.append(SkippedFile(rel, "hidden file"))
            elif suffix in IMAGE_EXTENSIONS:
                if path.is_symlink() and not path.exists():
                    skipped.append(SkippedFile(rel, "broken or looping symbolic link"))
                else:
                    candidates.append((rel, path))
            elif suffix in UNSUPPORTED_IMAGE_EXTENSIONS:
                skipped.append(SkippedFile(rel, _unsupported_ending(suffix)))
            else:
                ignored.append(SkippedFile(rel, "not an image file ending"))
    candidates.sort(key=lambda item: item[0])
    ignored.sort(key=lambda s: s.path)
    return candidates, skipped, ignored


def load_folder(
    folder: str | os.PathLike[str],
    *,
    config: LoadConfig | None = None,
    progress: ProgressFn | None = None,
    spill: SpillFn | None = None,
) -> ImageSet:
    """Load every image in a folder (recursively by default).

    Parameters
    ----------
    folder : path-like
        The input folder.
    config : LoadConfig, optional
        Limits and options; defaults to ``LoadConfig()``.
    progress : callable, optional
        Called as ``progress(done, total)`` after each file.
    spill : callable, optional
        Called with the number of files to load; when it returns a
        :class:`~preprocessing.spill.PixelSpill`, each image's pixels are written to it
        as soon as decoded and the records are :class:`SpilledRecord` (for collections
        too large to hold in memory).

    Returns
    -------
    ImageSet
        Records sorted by id (the path relative to ``folder`` with ``/``
        separators); files with an image ending that cannot be used are in
        ``skipped`` with the reason; other files are in ``ignored``.

    Raises
    ------
    ImageLoadError
        If ``folder`` does not exist or is not a folder.
    """
    config = config or LoadConfig()
    root = Path(folder)
    if not root.exists():
        raise ImageLoadError(str(root), "no such folder")
    if not root.is_dir():
        raise ImageLoadError(str(root), "not a folder")
    candidates, skipped, ignored = _walk(root, config.recursive)
    records, bad = _load_files(candidates, config, progress, spill)
    skipped_all = sorted(skipped + bad, key=lambda s: s.path)
    return ImageSet(tuple(records), tuple(skipped_all), tuple(ignored), root=root.resolve())


def load_paths(
    paths: Iterable[str | os.PathLike[str]],
    *,
    config: LoadConfig | None = None,
    progress: ProgressFn | None = None,
    spill: SpillFn | None = None,
) -> ImageSet:
    """Load the given image files, in the given order.

    Ids are the files' paths relative to their deepest common folder, so they
    stay unique when two files share a name. ``spill`` is as for :func:`load_folder`.
    """
    config = config or LoadConfig()
    resolved = [Path(p) for p in paths]
    if not resolved:
        return ImageSet(())
    absolute = [p.absolute() for p in resolved]
    common = Path(os.path.commonpath([str(p.parent) for p in absolute]))
    items = [
        (p.relative_to(common).as_posix(), orig) for p, orig in zip(absolute, resolved, strict=True)
    ]
    records, skipped = _load_files(items, config, progress, spill)
    return ImageSet(tuple(records), tuple(skipped), root=common)


_UNSAFE = re.compile(r"[^\w.\- ()+,=@]+", flags=re.UNICODE)


def sanitize_upload_name(name: str) -> str:
    """Reduce an uploaded file name to a safe base name.

    Folder parts (``/`` or ``\\``), drive letters, control characters and
    leading dots are removed, so the result can never point outside the folder
    it is joined to.

    >>> sanitize_upload_name("../../etc/passwd")
    'passwd'
    >>> sanitize_upload_name("C:\\\\temp\\\\a b.png")
    'a b.png'
    """
    name = unicodedata.normalize("NFC", str(name))
    base = re.split(r"[\\/]", name)[-1]
    base = base.split(":")[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = _UNSAFE.sub("_", base).strip(" .")
    return base[:200] or "upload"


def _unsupported_ending(suffix: str) -> str:
    return f"unsupported image format ({suffix}); supported endings: " + ", ".join(
        sorted(IMAGE_EXTENSIONS)
    )


def load_uploads(
    uploads: Iterable[tuple[str, bytes]],
    *,
    config: LoadConfig | None = None,
    progress: ProgressFn | None = None,
) -> ImageSet:
    """Load in-memory uploads given as ``(file name, bytes)`` pairs.

    Ids are the sanitised file names, made unique by appending ``-2``, ``-3``
    ... before the ending when a name repeats.
    """
    config = config or LoadConfig()
    items = list(uploads)
    records: list[ImageRecord] = []
    skipped: list[SkippedFile] = []
    seen: set[str] = set()
    for done, (raw_name, data) in enumerate(items, start=1):
        base = sanitize_upload_name(raw_name)
        stem, suffix = PurePosixPath(base).stem, PurePosixPath(base).suffix
        image_id, n = base, 1
        while image_id in seen:
            n += 1
            image_id = f"{stem}-{n}{suffix}"
        seen.add(image_id)
        if suffix.lower() in UNSUPPORTED_IMAGE_EXTENSIONS:  # as a folder would say
            skipped.append(SkippedFile(image_id, _unsupported_ending(suffix.lower())))
        else:
            try:
                records.append(_record(bytes(data), image_id, None, config))
            except ImageLoadError as err:
                skipped.append(SkippedFile(image_id, err.reason))
        if progress is not None:
            progress(done, len(items))
    return ImageSet(tuple(_flag_duplicates(records)), tuple(skipped))
