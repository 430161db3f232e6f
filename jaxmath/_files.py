"""File helpers shared by the modules that write or verify files (checkpoints, saved models, downloads)."""

from __future__ import annotations

import hashlib
import os


def sha256_file(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks (MNIST's training images are 47 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_directory(directory: str | os.PathLike) -> None:
    """Flush a directory's entries, so a rename into it survives a crash.

    Some filesystems refuse to open or fsync a directory; the rename is then as durable as they make it.
    """
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
