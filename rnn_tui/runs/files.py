"""How the files of a run directory are read and written: bounded reads, atomic writes.

A run directory may come from anywhere (a copy from another machine, a colleague's folder,
a process writing it right now), so nothing here trusts a file's size: a read takes at most
a stated number of bytes and refuses a file that is larger. Writes go to a temp file in the
same directory, are fsynced and then ``os.replace``'d into place, so a reader sees either
the old file or the whole new one, never a part (the commit protocol of a checkpoint is
built on this; see ``engine/checkpoint.py``).
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator


class TooLarge(ValueError):
    """A file was larger than the bytes a bounded read allows."""


def read_bounded(path: str | os.PathLike, limit: int) -> bytes:
    """The bytes of a file of at most `limit` bytes; TooLarge for a longer one (OSError as usual)."""
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"{path} is larger than {limit:,} bytes")
    return data


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable; not possible on every platform (Windows): best effort."""
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


@contextmanager
def replacing(path: Path) -> Iterator[BinaryIO]:
    """A file to write whose bytes replace `path` atomically when the block ends without error
    (on an error `path` is left as it was and the temp file is removed)."""
    # Not tempfile.mkstemp: its files are 0600. Mode 0666 lets the kernel apply the umask, so a
    # checkpoint gets the permissions of any other file the user writes.
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes) -> None:
    """Write bytes to `path` so a reader sees either the old file or the whole new one."""
    with replacing(path) as fh:
        fh.write(data)


def unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
