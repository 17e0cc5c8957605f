"""metrics.jsonl: what a line holds, and reading and writing it one whole line at a time.

A training run appends one JSON object per logged step (:class:`StepMetrics`, keys
``RECORD_KEYS``) with a single ``write`` on an ``O_APPEND`` descriptor (:class:`MetricsWriter`),
so a reader sees whole lines or none of a line. Readers take only whole lines (ending in a
newline): a line being written is left for the next read, and a torn last line (a crash) is
never read. Reads are bounded: at most ``READ_LIMIT`` bytes per call, and a line over
``MAX_LINE`` bytes is not a record (a metrics line is about 300 bytes), so a huge or hostile
file costs neither unbounded memory nor a long parse.

``COLUMNS`` are the numbers the charts and the watcher keep of a record, in this order
(``record_row``); every other number of a record (``lr``, or ``accuracy`` from
``RunWriter.log(step, accuracy=...)``) is a named series (``record_named``, ``runs.named``),
except the ones worked out from the columns (bits, perplexity). ``SUMMARY_KEYS`` are those of
the metrics summary in a checkpoint's config.json.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, BinaryIO

from .files import open_append, open_regular, replacing
from .named import NameTable

# config.json["metrics"] of a checkpoint: where training stood when it was saved.
SUMMARY_KEYS = ("step", "train_loss", "val_loss", "best_val_loss", "bits_per_token",
                "tokens_per_s", "wall_time_s")
# The numeric columns of a run's curves: a row of a watched run, the training screen's columns.
# "wall" is the wall-clock time of the line (not in the record: the reader dates it).
COLUMNS = ("step", "epoch", "loss", "grad", "tps", "time", "wall", "val")
N_COLS = len(COLUMNS)
READ_LIMIT = 8 << 20  # bytes read_metrics takes per call
MAX_LINE = 64 << 10  # a longer line is not a record


@dataclass(frozen=True)
class StepMetrics:
    """One logged step: one line of metrics.jsonl."""

    step: int
    epoch: float
    loss: float  # nats per token
    bits: float  # loss / ln 2
    ppl: float
    grad_norm: float  # global norm before clipping
    clipped: bool
    lr: float
    tokens_per_s: float  # since the previous logged step, validation time excluded
    wall_time: float  # seconds of training so far (pauses excluded)
    val_loss: float | None = None
    val_bits: float | None = None
    val_ppl: float | None = None

    def to_dict(self) -> dict:
        # Hand-built rather than dataclasses.asdict: this runs every logged step.
        return {"step": self.step, "epoch": self.epoch, "loss": self.loss, "bits": self.bits,
                "ppl": self.ppl, "grad_norm": self.grad_norm, "clipped": self.clipped, "lr": self.lr,
                "tokens_per_s": self.tokens_per_s, "wall_time": self.wall_time,
                "val_loss": self.val_loss, "val_bits": self.val_bits, "val_ppl": self.val_ppl}

    def to_json(self) -> str:
        """The line (without its newline); JSON has no NaN or inf: they are written as null."""
        return json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                           for k, v in self.to_dict().items()})


# The keys of a metrics record, in the order they are written.
RECORD_KEYS = tuple(f.name for f in fields(StepMetrics))


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    try:
        return float(value)
    except OverflowError:  # an integer past float's range (JSON allows 4,000 digits)
        return math.nan


def record_row(rec: Any) -> tuple[float, ...] | None:
    """One metrics record -> a row of COLUMNS (wall left nan); None if it has no step."""
    if not isinstance(rec, dict):
        return None
    step = _num(rec.get("step"))
    if not math.isfinite(step):
        return None
    return (step, _num(rec.get("epoch")), _num(rec.get("loss")), _num(rec.get("grad_norm")),
            _num(rec.get("tokens_per_s")), _num(rec.get("wall_time")), math.nan,
            _num(rec.get("val_loss")))


# The record keys that are no named series: read into COLUMNS, worked out from them, not numbers.
NOT_NAMED = frozenset(("step", "epoch", "loss", "grad_norm", "tokens_per_s", "wall_time", "val_loss",
                       "bits", "ppl", "val_bits", "val_ppl", "clipped"))


def record_named(rec: dict, names: NameTable) -> list[tuple[str, float]]:
    """The named series' values of one record: (name, value) for each finite number under a key
    that is no column, in the record's order, for the names `names` keeps."""
    out = []
    for key, value in rec.items():
        if key in NOT_NAMED:
            continue
        value = _num(value)
        if not math.isfinite(value):
            continue
        name = names.admit(key)
        if name is not None:
            out.append((name, value))
    return out


# ------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class MetricsCursor:
    """Where `read_metrics` stopped: which file (device, inode) and the byte offset in it."""

    file_id: tuple[int, int] | None = None
    offset: int = 0
    more: bool = False  # the read stopped at its byte limit: more lines may follow at once
    skip: bool = False  # the offset is inside a line too long to be a record: drop to its end


def _whole_lines(data: bytes, skip: bool) -> tuple[list[bytes], int, bool]:
    """The whole lines of a chunk read from a line start (or from inside an over-long line, when
    `skip`): (the lines without their newline, bytes used, whether the next chunk starts inside an
    over-long line). A partial line at the end is left unused, unless it is already too long."""
    start = 0
    if skip:
        newline = data.find(b"\n")
        if newline < 0:
            return [], len(data), True
        start = newline + 1
    end = max(start, data.rfind(b"\n") + 1)
    lines = data[start:end].split(b"\n")[:-1]
    if len(data) - end > MAX_LINE:  # the partial line can never become a record
        return lines, len(data), True
    return lines, end, False


def _read_lines(fh: BinaryIO, offset: int, skip: bool, limit: int) -> tuple[list[bytes], int, bool, bool]:
    """(whole lines, bytes used, skip, more) of the chunk at `offset`."""
    size = max(limit, 2 * MAX_LINE)  # room for a whole line: every chunk gets somewhere
    fh.seek(offset)
    data = fh.read(size)
    lines, used, skip = _whole_lines(data, skip)
    return lines, used, skip, len(data) == size


def _record(line: bytes) -> dict | None:
    if len(line) > MAX_LINE:
        return None
    try:
        rec = json.loads(line)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        return None
    return rec if isinstance(rec, dict) else None


def read_metrics(path, cursor: MetricsCursor | None = None,
                 limit: int = READ_LIMIT) -> tuple[list[dict], MetricsCursor, bool]:
    """New records of a metrics.jsonl since `cursor`: (records, next cursor, restarted).

    Only whole lines (ending in a newline) are read, so a line being written is left for the
    next call; a watcher polls `records, cursor, restarted = read_metrics(path, cursor)`. At
    most `limit` bytes are read per call: `cursor.more` says the call stopped there, and the
    next one goes on. Lines that are not JSON objects are skipped. `restarted` is True when the
    file is not the one the cursor was in (a resume rewrote it without the lines past its
    checkpoint): the records then start from the top, and what the caller had read before
    should be dropped.
    """
    cursor = cursor or MetricsCursor()
    try:
        with open_regular(path) as fh:  # never a FIFO or a device (/dev/zero would never end)
            st = os.fstat(fh.fileno())
            file_id = (st.st_dev, st.st_ino)
            offset, skip = cursor.offset, cursor.skip
            restarted = cursor.file_id is not None and (file_id != cursor.file_id or st.st_size < offset)
            if restarted or cursor.file_id is None:
                offset, skip = 0, False
            lines, used, skip, more = _read_lines(fh, offset, skip, limit)
    except FileNotFoundError:
        return [], cursor, False
    records = [r for r in map(_record, lines) if r is not None]
    return records, MetricsCursor(file_id, offset + used, more, skip), restarted


# ------------------------------------------------------------------------- writing
class MetricsWriter:
    """metrics.jsonl opened for appending, one whole line per write.

    ``O_APPEND`` and one ``write()`` per line: a reader sees whole lines or none of a line, and
    two writers never interleave inside a line. Never through a symbolic link (a dangling one
    would create its target outside the run directory): ``files.UnsafePath``. A write that
    fails (the disk is full) takes back the part of the line it wrote, so no torn line is
    left, and raises the OSError.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    def open(self) -> None:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = open_append(self.path)

    def append(self, line: str) -> None:
        """Append one line (its newline is added here)."""
        data = (line + "\n").encode("utf-8")
        start = os.fstat(self._fd).st_size
        written = 0
        try:
            while written < len(data):  # a regular file takes it whole, unless the disk fills
                written += os.write(self._fd, data[written:])
        except OSError:
            if written:
                try:  # a torn last line would stay in the file for good: take it back
                    os.ftruncate(self._fd, start)
                except OSError:
                    pass
            raise

    def sync(self) -> None:
        """fsync the file: the lines written so far survive a power loss (called at each checkpoint,
        so the curve never ends before the checkpoint's step)."""
        if self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        """fsync (best effort: a checkpoint saved after training ends finds the curve durable)
        and close."""
        if self._fd is not None:
            try:
                try:
                    os.fsync(self._fd)
                except OSError:
                    pass
                os.close(self._fd)
            finally:
                self._fd = None


class _Unchanged(Exception):
    pass


def _step_at_most(line: bytes, last_step: int) -> bool:
    try:
        return len(line) <= MAX_LINE and int(json.loads(line)["step"]) <= last_step
    except (ValueError, KeyError, TypeError, RecursionError):
        return False


def trim_metrics(path: str | os.PathLike, last_step: int) -> bool:
    """Drop the lines past `last_step` from a metrics.jsonl (and a torn last line, and lines that
    are not records), atomically; True when the file changed. Read and written in bounded chunks.

    A resumed run calls it: the lines a run logged after its last checkpoint (it went on, then
    died) would otherwise come twice. Raises OSError when the file cannot be read or replaced.
    """
    path = Path(path)
    try:
        src = open_regular(path)  # a FIFO or /dev/zero would never end
    except FileNotFoundError:
        return False
    with src:
        size = os.fstat(src.fileno()).st_size
        try:
            with replacing(path) as out:
                offset, skip, more, written = 0, False, size > 0, 0
                while more and offset < size:  # the file as it was when opened: bounded
                    lines, used, skip, more = _read_lines(src, offset, skip, READ_LIMIT)
                    offset += used
                    for line in lines:
                        if _step_at_most(line, last_step):
                            out.write(line + b"\n")
                            written += len(line) + 1
                if written == size:  # every line kept, nothing torn: leave the file alone
                    raise _Unchanged
        except _Unchanged:
            return False
    return True
