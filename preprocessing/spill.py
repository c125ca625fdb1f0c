"""Pixels kept on disk instead of in memory, for collections too large to hold.

At 10,000 images the decoded pixels (about 0.7 MB an image at the 256 px work size)
and the work images (0.33 MB) held from the load to the end of a run came to 10 GB
of the main process. A :class:`PixelSpill` holds them in one file of its own folder
instead: every array is written once, as it is made, and read back with a plain
``read`` (not a memory map, so nothing read stays resident) each time it is used.
Reading 0.33 MB back from the page cache costs about 0.1 ms, against tens of
milliseconds of the metric that reads it.

The folder belongs to the process that made it and is removed when the spill is
garbage-collected (the last image that refers to it is gone) or the interpreter
exits; a folder left by a process that died is removed by the next spill made
beside it. A copy sent to a worker process reads the same file and removes
nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PixelSpill", "Spilled", "SPILL_PREFIX", "process_alive", "remove_stale", "unspilled"]

#: Name prefix of a spill's folder: ``atelier-pixels-<pid>-<random>``.
SPILL_PREFIX = "atelier-pixels-"


def process_alive(pid: str) -> bool:
    """Whether the process ``pid`` (a decimal string) still runs; False if not a pid."""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale(parent: Path, prefix: str) -> None:
    """Remove the folders ``<prefix><pid>-...`` under ``parent`` whose process no longer
    runs (what a process that died could not remove)."""
    for stale in parent.glob(f"{prefix}*"):
        if not process_alive(stale.name[len(prefix) :].split("-", 1)[0]):
            shutil.rmtree(stale, ignore_errors=True)


@dataclass(frozen=True)
class Spilled:
    """Where one array lies in a spill file; :meth:`read` returns a fresh read-only copy.

    ``owner`` keeps the spill (and so its folder) alive while the handle is.
    """

    file: str
    offset: int
    shape: tuple[int, ...]
    dtype: str
    owner: Any = field(default=None, compare=False, repr=False)

    def read(self) -> np.ndarray:
        count = int(np.prod(self.shape))
        try:
            arr = np.fromfile(self.file, np.dtype(self.dtype), count=count, offset=self.offset)
        except OSError as err:
            raise RuntimeError(
                f"the pixels kept on disk at {self.file} can no longer be read "
                f"({err.strerror or err}); load the images again"
            ) from err
        if arr.size != count:
            raise RuntimeError(
                f"the pixels kept on disk at {self.file} were cut short; load the images again"
            )
        arr = arr.reshape(self.shape)
        arr.flags.writeable = False
        return arr


class PixelSpill:
    """An append-only file of arrays in a folder of its own.

    Parameters
    ----------
    parent : path-like, optional
        Where the folder is made; the system's temporary folder by default. Give a
        folder on disk where ``/tmp`` is held in memory (``tmpfs``).

    Examples
    --------
    >>> spill = PixelSpill()
    >>> handle = spill.put(np.arange(6, dtype=np.float32).reshape(2, 3))
    >>> handle.read().tolist()
    [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    >>> spill.close()
    """

    def __init__(self, parent: str | os.PathLike[str] | None = None) -> None:
        base = Path(parent) if parent is not None else Path(tempfile.gettempdir())
        base.mkdir(parents=True, exist_ok=True)
        remove_stale(base, SPILL_PREFIX)
        self.directory = Path(tempfile.mkdtemp(prefix=f"{SPILL_PREFIX}{os.getpid()}-", dir=base))
        self._file = self.directory / "pixels.bin"
        self._file.touch()
        self._lock = threading.Lock()
        self._finalizer: weakref.finalize[Any, Any] | None = weakref.finalize(
            self, shutil.rmtree, str(self.directory), True
        )

    def put(self, array: np.ndarray) -> Spilled:
        """Append ``array`` (C order) and return where it lies."""
        arr = np.ascontiguousarray(array)
        with self._lock, open(self._file, "ab") as fh:
            offset = fh.tell()
            fh.write(arr.tobytes())
        return Spilled(str(self._file), offset, tuple(arr.shape), arr.dtype.str, self)

    @property
    def nbytes(self) -> int:
        """Bytes written so far."""
        return self._file.stat().st_size if self._file.exists() else 0

    def close(self) -> None:
        """Remove the folder now (images that refer to it can no longer be read); a
        worker's copy removes nothing."""
        if self._finalizer is not None:
            self._finalizer()

    def __reduce__(self) -> tuple[object, tuple[str]]:
        # a worker's copy reads the same file but owns nothing: it removes no folder
        return (_borrowed, (str(self.directory),))


def _borrowed(directory: str) -> PixelSpill:
    spill = PixelSpill.__new__(PixelSpill)
    spill.directory = Path(directory)
    spill._file = spill.directory / "pixels.bin"
    spill._lock = threading.Lock()
    spill._finalizer = None
    return spill


def unspilled(value: np.ndarray | Spilled) -> np.ndarray:
    """``value`` itself, or the array a :class:`Spilled` handle points to."""
    return value.read() if isinstance(value, Spilled) else value
