"""Atomic file writes, shared by checkpoints, tokenizers and the hub cache (lesson 06)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path, write) -> None:
    """Write ``path`` so that a crash leaves the old file or the new one, never half of one:
    temp file in the same directory -> ``write(f)`` (a binary file) -> flush -> fsync -> os.replace.
    The parent directory is created if needed; the temp file is removed if anything fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass  # a leftover temp file is swept by the next save (checkpoint.py) or harmless
        raise
