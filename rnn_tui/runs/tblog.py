"""TensorBoard runs: the scalars of a directory of event files, read as they grow.

Any tool's event files (torch.utils.tensorboard, tensorboardX, Lightning, Keras, rnn-tui's own
``RUN_DIR/tb``) are read with TensorBoard's own record reader
(``tensorboard.backend.event_processing.event_file_loader``), imported only when a TensorBoard
run is polled: tensorboard is an optional dependency (``pip install "rnn-tui[tensorboard]"``)
and ``runs/`` imports it nowhere else.

:class:`EventLog` follows one run directory: a loader per event file keeps its offset, so each
poll reads only what was appended since the last one (a record being written is left for the
next poll, as the loader does), a file whose size and mtime did not change is not opened, and
one poll reads at most ``POLL_EVENTS`` events (a long log comes in over several polls). A
restart logged as TensorBoard does (``SummaryWriter(purge_step=N)``, as ``rnn-tui train
--resume`` writes it: a SessionLog START at step N) purges the points at step N and later,
as TensorBoard's own accumulator does (``Read.purge``). What it
keeps per tag is bounded too: the known columns, ``MAX_NAMED`` named series (``runs.named``),
and the kind of at most ``MAX_TAG_KINDS`` tensor tags.

Tags map onto the columns where they are plainly the same thing (``column_for_tag``: ``loss``,
``train/loss``, ``Loss/train`` -> loss; ``val_loss``, ``loss/val``, ``val/loss`` -> val;
``grad_norm`` -> grad; ``epoch``; tokens/s), the learning rate's usual names (``lr``,
``learning_rate``, ``lr-Adam``) are the named series ``lr``, and every other scalar tag is a
named series under its own name. Scalars logged for one step make one row of ``COLUMNS``:
"time" is the wall-clock time since the run's first event, "wall" the event's own time.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from .layout import event_files
from .metrics import COLUMNS
from .named import NamedBuffer, NameTable

INSTALL = 'pip install "rnn-tui[tensorboard]"'
MISSING = f"TensorBoard logs need the tensorboard package: {INSTALL}"
POLL_EVENTS = 20_000  # events one poll reads of one run
MAX_FILES = 256  # event files followed per run (the newest, by name)
MAX_TAG_KINDS = 4_096  # tensor tags whose kind (scalar or not) is remembered

_COL = {name: i for i, name in enumerate(COLUMNS)}


def _tags(*names: str) -> frozenset[str]:
    return frozenset(n.lower() for n in names)


# Lower-cased tag -> column. Only names that cannot mean anything else.
KNOWN_TAGS = {
    **dict.fromkeys(_tags("loss", "train/loss", "loss/train", "train_loss", "training_loss", "loss/training",
                          "training/loss", "train/loss_step", "train_loss_step", "epoch_loss", "train/epoch_loss"),
                    "loss"),
    **dict.fromkeys(_tags("val_loss", "loss/val", "val/loss", "valid_loss", "valid/loss", "loss/valid",
                          "validation_loss", "validation/loss", "loss/validation", "eval/loss", "eval_loss",
                          "loss/eval", "epoch_val_loss"), "val"),
    **dict.fromkeys(_tags("grad_norm", "train/grad_norm", "grad/norm", "gradient_norm", "grad_norm/total",
                          "train/gradient_norm"), "grad"),
    **dict.fromkeys(_tags("tokens_per_s", "tokens_per_sec", "tokens/s", "train/tokens_per_s",
                          "train/tokens_per_sec"), "tps"),
    **dict.fromkeys(_tags("epoch", "train/epoch"), "epoch"),
}
LR_TAGS = _tags("lr", "learning_rate", "train/lr", "train/learning_rate", "epoch_learning_rate",
                "lr/train", "optim/lr", "learning-rate")
LR_PREFIXES = ("lr-", "lr_")  # Lightning's LearningRateMonitor: lr-Adam, lr-SGD/pg1


def column_for_tag(tag: str) -> str | None:
    """The column a tag's scalars are (loss, val, grad, tps, epoch), or None."""
    return KNOWN_TAGS.get(tag.lower())


def series_name(tag: str) -> str:
    """The named series a tag that is no column goes to: 'lr' for the learning rate's usual
    names, else the tag itself."""
    low = tag.lower()
    if low in LR_TAGS or (low.startswith(LR_PREFIXES) and "/" not in low[3:]):
        return "lr"
    return tag


def tensorboard_available() -> bool:
    """tensorboard can be imported (looked up without importing it)."""
    try:
        return importlib.util.find_spec("tensorboard") is not None
    except (ImportError, ValueError):
        return False


@dataclass
class Read:
    """What one poll of an EventLog read."""

    rows: list[list[float]] = field(default_factory=list)  # rows of COLUMNS, in order
    named: NamedBuffer = field(default_factory=NamedBuffer)
    events: int = 0  # records read
    more: bool = False  # it stopped at POLL_EVENTS: more may be there at once
    purge: float | None = None  # a restart: points read before, at this step or later, are stale

    def drop_from(self, step: float) -> None:
        self.rows = [r for r in self.rows if r[0] < step]
        self.named.drop_from(step)
        self.purge = step if self.purge is None else min(self.purge, step)


class _File:
    def __init__(self, path: Path, loader) -> None:
        self.path = path
        self.loader = loader
        self.sig: tuple | None = None
        self.more = False
        self.broken = ""  # why it is no longer read


class EventLog:
    """The event files of one TensorBoard run directory, followed with TensorBoard's loader."""

    def __init__(self, path: str | os.PathLike, names: NameTable | None = None) -> None:
        self.path = Path(path)
        self.names = names if names is not None else NameTable()
        self.files: dict[Path, _File] = {}
        self.error = ""  # the last file that could not be read, and why
        self.updated: float | None = None  # newest mtime of its event files
        self._t0: float | None = None  # wall time of the run's first event
        self._open: list[float] | None = None  # the row being filled (the newest step's)
        self._claimed: dict[str, str] = {}  # column -> the tag that fills it
        self._scalar_tags: dict[str, bool] = {}  # tensor tag -> its values are scalars
        self._modules = None

    # ------------------------------------------------------------------ reading
    def _loader(self, path: Path):
        if self._modules is None:
            # Imported here, on the watcher's thread: tensorboard is optional, and heavy.
            from tensorboard.backend.event_processing import event_file_loader
            from tensorboard.util import tensor_util

            self._modules = (event_file_loader, tensor_util)
        return self._modules[0].LegacyEventFileLoader(str(path))

    def poll(self, budget: int = POLL_EVENTS) -> Read:
        """Read what the event files gained since the last poll (at most `budget` events).
        Raises ImportError without tensorboard."""
        read = Read()
        paths = event_files(self.path)[-MAX_FILES:]
        if any(p not in self.files for p in paths):
            self.files = {p: self.files.get(p) or _File(p, self._loader(p)) for p in paths}
        for path in paths:
            f = self.files[path]
            if f.broken:
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue
            self.updated = max(self.updated or 0.0, st.st_mtime)
            sig = (st.st_ino, st.st_size, st.st_mtime_ns)
            if sig == f.sig and not f.more:
                continue
            left = budget - read.events
            if left <= 0:
                read.more = True
                break
            try:
                n = self._read_file(f, read, left)
            except Exception as exc:  # a record TensorBoard's reader chokes on: leave the file
                f.broken = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                self.error = f"{path.name}: the rest is left out, a record could not be read ({f.broken})"
                continue
            f.more = n >= left
            f.sig = None if f.more else sig
            read.more = read.more or f.more
        if not read.events and self._open is not None:  # the writer is quiet: the last row is whole
            read.rows.append(self._open)
            self._open = None
        return read

    def _read_file(self, f: _File, read: Read, budget: int) -> int:
        n = 0
        for event in f.loader.Load():
            n += 1
            self._event(event, read)
            if n >= budget:
                break
        read.events += n
        return n

    def _event(self, event, read: Read) -> None:
        wall = float(event.wall_time)
        if self._t0 is None and math.isfinite(wall):
            self._t0 = wall
        if event.HasField("session_log") and event.session_log.status == 1:  # SessionLog.START
            step = float(event.step)
            read.drop_from(step)
            if self._open is not None and self._open[0] >= step:
                self._open = None
            return
        if not event.HasField("summary"):
            return
        step = float(event.step)
        time = wall - self._t0 if self._t0 is not None else math.nan
        for value in event.summary.value:
            x = self._scalar(value)
            if x is None:
                continue
            tag = value.tag
            col = column_for_tag(tag)
            if col is not None and self._claimed.setdefault(col, tag) == tag:
                self._put(read, col, step, time, wall, x)
                continue
            name = self.names.admit(series_name(tag))
            if name is not None:
                read.named.add(name, step, time, wall, x)

    def _put(self, read: Read, col: str, step: float, time: float, wall: float, x: float) -> None:
        """A known column's value: into the open row if it is this step's and has no value for
        it yet, else into a new row (and the open one is done)."""
        i = _COL[col]
        row = self._open
        if row is None or row[0] != step or not math.isnan(row[i]):
            if row is not None:
                read.rows.append(row)
            row = self._open = [math.nan] * len(COLUMNS)
            row[0] = step
        row[i] = x
        row[_COL["time"]] = time
        row[_COL["wall"]] = wall

    def _scalar(self, value) -> float | None:
        """The number a summary value holds, when it is a scalar: a simple_value
        (torch.utils.tensorboard, tensorboardX, TF1) or a one-element tensor of the scalars
        plugin (TF2 / Keras, which names the plugin on a tag's first value only)."""
        kind = value.WhichOneof("value")
        if kind == "simple_value":
            x = float(value.simple_value)
        elif kind == "tensor":
            tag = value.tag
            scalar = self._scalar_tags.get(tag)
            if scalar is None:
                if not value.HasField("metadata"):
                    return None
                scalar = value.metadata.plugin_data.plugin_name == "scalars"
                if len(self._scalar_tags) < MAX_TAG_KINDS:
                    self._scalar_tags[tag] = scalar
            if not scalar or value.tensor.dtype == 7:  # DT_STRING
                return None
            try:
                arr = self._modules[1].make_ndarray(value.tensor)
                if arr.size != 1:
                    return None
                x = float(arr.reshape(-1)[0])
            except (ValueError, TypeError, OverflowError):
                return None
        else:
            return None
        return x if math.isfinite(x) else None
