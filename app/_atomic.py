"""Atomic file writes: write to a temporary name beside the target, then rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from preprocessing.spill import process_alive

__all__ = ["atomic_write_bytes", "atomic_write_text", "clear_stale_parts"]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the new, never half.

    The temporary file lives in the target's folder (same file system, so
    ``os.replace`` is atomic) and is removed if anything fails.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.{os.getpid()}.", suffix=".part", dir=target.parent
    )
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def clear_stale_parts(folder: str | os.PathLike[str]) -> int:
    """Remove temporary files left in ``folder`` by writers that no longer run.

    A writer killed outright (SIGKILL, power loss) cannot remove its
    ``.<name>.<pid>.<random>.part`` file; one whose process is gone is stale.
    Files of a writer still running are left alone. Returns how many were removed.
    """
    removed = 0
    root = Path(folder)
    if not root.is_dir():
        return 0
    for part in root.glob(".*.part"):
        fields = part.name[: -len(".part")].rsplit(".", 2)
        if len(fields) == 3 and not process_alive(fields[1]):
            part.unlink(missing_ok=True)
            removed += 1
    return removed
