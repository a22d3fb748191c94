"""Files that survive a crash or a power cut: written whole or not at all.

Used for everything jalsa keeps in its state dir between runs (revocations, audio settings,
recorded messages' metadata, the rundown journal, stored secrets).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Make a rename or link in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomically(path: Path, data: bytes) -> None:
    """Write ``path`` so that a reader (or a restart after a crash) sees the old file or the
    new one, never half: a temporary file of its own beside it (0600), fsync, rename over
    ``path``, fsync of the folder. Safe for concurrent writers (each has its own temporary
    file; the last rename wins)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    fsync_dir(path.parent)
