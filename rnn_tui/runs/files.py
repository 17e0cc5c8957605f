"""How the files of a run directory are read and written: bounded reads, atomic writes, and
nothing but regular files inside the directory.

A run directory may come from anywhere (a copy from another machine, a colleague's folder,
a process writing it right now), so nothing here trusts what a name points to:

* a read opens only a **regular file** (never a FIFO, which would block, or a device such as
  ``/dev/zero``, which never ends) and takes at most a stated number of bytes, refusing a
  file that is larger (:func:`open_regular`, :func:`read_bounded`);
* a write never goes **through a symbolic link**: files are created with ``O_EXCL`` (or
  ``O_NOFOLLOW`` for the one file appended to, metrics.jsonl) and the directories a save
  writes into (``best/``, ``tb/``) are refused when they are links (:func:`real_dir`), so
  every write stays inside the run directory;
* a write goes to a temp file in the same directory, is fsynced and then ``os.replace``'d
  into place, so a reader sees either the old file or the whole new one, never a part (the
  commit protocol of a checkpoint is built on this; see ``engine/checkpoint.py``). A temp
  file is named after the host and process that writes it, so one left behind by a process
  that was killed can be told from one being written right now and removed
  (:func:`remove_dead_temps`).

A path that breaks these rules raises :class:`UnsafePath`, an ``OSError`` whose ``strerror``
says what is wrong in words (callers put it in their one-line messages).
"""

from __future__ import annotations

import errno
import os
import re
import socket
import stat
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

_BINARY = getattr(os, "O_BINARY", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


class TooLarge(ValueError):
    """A file was larger than the bytes a bounded read allows."""


class UnsafePath(OSError):
    """A symbolic link where a run directory is written, or something other than a regular
    file (a FIFO, a device, a directory) where a file is read."""

    def __init__(self, path: str | os.PathLike, what: str, code: int = errno.EINVAL) -> None:
        super().__init__(code, what, str(path))  # strerror: what is wrong, in words


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _link_text(path: Path) -> str:
    name = Path(path).name
    try:
        return (f"{name} is a symbolic link (to {os.readlink(path)}): rnn-tui does not write through "
                f"links in a run directory")
    except OSError:
        return f"{name} is a symbolic link: rnn-tui does not write through links in a run directory"


# ------------------------------------------------------------------------- reading
def open_regular(path: str | os.PathLike) -> BinaryIO:
    """Open a regular file for reading; UnsafePath for a FIFO, a device, a socket or a directory.

    The open itself cannot block (``O_NONBLOCK``: a FIFO with no writer would otherwise hang
    here). A link to a regular file is read like the file: reading through it writes nothing.
    """
    fd = os.open(path, os.O_RDONLY | _NONBLOCK | _BINARY)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnsafePath(path, f"{Path(path).name} is {_kind(mode)}, not a regular file: refusing to read it")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded(path: str | os.PathLike, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; TooLarge for a longer one
    (UnsafePath for a file that is not regular, OSError as usual)."""
    with open_regular(path) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"{path} is larger than {limit:,} bytes")
    return data


# ------------------------------------------------------------------------- directories
def real_dir(path: Path, create: bool = True) -> Path:
    """`path` as a directory that is not a symbolic link (made when `create` and missing).

    For the directories a save writes into inside a run directory (``best/``, ``tb/``): a link
    there would send the writes elsewhere (a ``best/`` link made a save replace the config.json
    of the directory it pointed to). UnsafePath for a link or a file.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if not create:
            return path
        try:
            os.mkdir(path)
        except FileExistsError:
            pass  # made meanwhile: looked at again below
        st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePath(path, _link_text(path), errno.ELOOP)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePath(path, f"{Path(path).name} is {_kind(st.st_mode)}, not a directory", errno.ENOTDIR)
    return path


def refuse_link(path: Path) -> None:
    """UnsafePath when `path` is a symbolic link (nothing when it is missing or anything else)."""
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            raise UnsafePath(path, _link_text(path), errno.ELOOP)
    except FileNotFoundError:
        pass


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


# ------------------------------------------------------------------------- temp files
def _host_tag() -> str:
    host = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:24]
    return host or "host"


_HOST = _host_tag()
# .<name>.<host>-<pid>.<12 hex>.tmp: who writes it. Older versions wrote .<name>.<12 hex>.tmp.
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<host>[A-Za-z0-9]+)-(?P<pid>\d+)\.[0-9a-f]{12}\.tmp$")
_OLD_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{12}\.tmp$")
OLD_TEMP_AGE_S = 3600.0  # an unattributed temp file this old belongs to no save still running
_live: set[str] = set()  # names of the temp files this process is writing now (unique: a uuid)
_live_lock = threading.Lock()


def temp_name(path: Path) -> Path:
    """A fresh temp-file name beside `path`, saying which host and process writes it."""
    return path.parent / f".{path.name}.{_HOST}-{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there: never guess
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, someone else's
        return True
    return True


def _is_dead_temp(entry: os.DirEntry, now: float) -> bool:
    match = _TEMP_RE.match(entry.name)
    if match is not None:
        if match["host"] != _HOST:
            return False  # another machine's save (a shared file system): not ours to judge
        pid = int(match["pid"])
        if pid == os.getpid():  # this process: dead unless one of its threads is writing it
            with _live_lock:
                return entry.name not in _live
        return not _pid_alive(pid)
    if _OLD_TEMP_RE.match(entry.name):
        try:
            return now - entry.stat(follow_symlinks=False).st_mtime > OLD_TEMP_AGE_S
        except OSError:
            return False
    return False


def remove_dead_temps(directory: Path) -> list[str]:
    """Remove the temp files a killed save (or metrics rewrite) left in `directory`: those of a
    process of this host that is no longer running (and unattributed ones over an hour old).
    Best effort (a read-only directory keeps them); returns the names removed."""
    removed = []
    now = time.time()
    try:
        with os.scandir(directory) as entries:
            dead = [e for e in entries if e.name.startswith(".") and e.name.endswith(".tmp")
                    and _is_dead_temp(e, now)]
    except OSError:
        return removed
    for entry in dead:
        try:
            os.unlink(entry.path)
            removed.append(entry.name)
        except OSError:
            pass
    return removed


@contextmanager
def replacing(path: Path) -> Iterator[BinaryIO]:
    """A file to write whose bytes replace `path` atomically when the block ends without error
    (on an error `path` is left as it was and the temp file is removed).

    The temp file is created with ``O_EXCL`` (so never through a link) in `path`'s directory;
    ``os.replace`` then replaces the name `path` itself, a link there included, never a file
    it points to."""
    # Not tempfile.mkstemp: its files are 0600. Mode 0666 lets the kernel apply the umask, so a
    # checkpoint gets the permissions of any other file the user writes.
    tmp = temp_name(path)
    key = tmp.name
    with _live_lock:
        _live.add(key)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _BINARY, 0o666)
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            unlink_quietly(tmp)
            raise
    finally:
        with _live_lock:
            _live.discard(key)
    fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes) -> None:
    """Write bytes to `path` so a reader sees either the old file or the whole new one."""
    with replacing(path) as fh:
        fh.write(data)


def open_append(path: Path) -> int:
    """A descriptor appending to the regular file `path` (created when missing), never through
    a symbolic link: UnsafePath for a link (a dangling one would create its target) or for
    anything that is not a regular file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _NONBLOCK | _BINARY, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(path):
            raise UnsafePath(path, _link_text(path), errno.ELOOP) from None
        if exc.errno == errno.ENXIO:  # a FIFO nobody reads
            raise UnsafePath(path, f"{Path(path).name} is a FIFO (named pipe), not a regular file: refusing to write to it") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnsafePath(path, f"{Path(path).name} is {_kind(mode)}, not a regular file: refusing to write to it")
    except BaseException:
        os.close(fd)
        raise
    return fd


def unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
