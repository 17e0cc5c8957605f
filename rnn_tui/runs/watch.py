"""Follow runs that another process is training (`rnn-tui watch RUN_DIR [RUN_DIR...]`).

A :class:`Watcher` is given run directories (and folders of runs, where a run started later
joins within a few polls), a ``report`` callback and, to load checkpoints, a ``load``
function. ``start()`` polls them from a daemon thread of its own every ``poll_s`` seconds
until ``stop()``; ``poll()`` is one pass, for a caller with a loop of its own (and tests):

* ``RUN/metrics.jsonl``: when its size, mtime or inode changed, the new *whole* lines are
  read (``runs.metrics.read_metrics``: a half-written last line is left for the next poll,
  and each poll reads a bounded number of bytes). A file that was rewritten (``--resume``
  drops lines past its checkpoint) or whose steps go backwards is read again from the top
  and the run's series starts over (``RunWatch.generation`` counts the restarts).
* a directory of TensorBoard event files (and no metrics.jsonl) is a TensorBoard run
  (``RunWatch.kind``): its files are read with TensorBoard's own loader (``runs.tblog``), a
  bounded number of events per poll, each file from where the last poll stopped. It has no
  checkpoint.
* every number of a metrics line that has no column (``RunWriter.log(step, accuracy=...)``),
  and every TensorBoard tag that is none of them, is a named series (``runs.named``), at most
  ``MAX_NAMED`` names per run.
* the newest checkpoint, ``RUN/config.json`` or ``RUN/best/config.json`` (whichever was
  written last): config.json is the commit point of an atomic save, so it is only parsed
  when its stat changes, and ``load`` is only called when its ``tensors_sha256`` differs
  from the one shown, and only for the run whose model is shown
  (:meth:`Watcher.select_model_run`). A load that fails keeps the old model and is retried
  at the next polls (backing off to ``MAX_RETRY_S``).

What changed is reported as events (``runs.events``) through ``report``, on the watcher's
thread. Each run's new rows are also kept under its lock until a UI timer takes them
(``RunWatch.take``), so a screen mounted late still gets every row.

Nothing here imports torch or textual: loading a checkpoint is the ``load`` function's
business (the app passes the engine's ``load_model``). ``clock`` (wall-clock seconds) is
what ages are measured with, so tests can freeze it.
"""

from __future__ import annotations

import math
import os
import threading
import time
from array import array
from pathlib import Path
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Callable, NamedTuple

import numpy as np

from .events import CheckpointFound, LoadFailed, ModelLoaded, RowsRead, RunAdded, StateChanged, WatchEvent
from .files import open_regular
from .layout import (CONFIG_NAME, METRICS_NAME, checkpoint_dirs, has_event_files, is_run, read_config, run_names,
                     runs_in)
from .metrics import N_COLS, MetricsCursor, read_metrics, record_named, record_row
from .named import NamedBuffer, NameTable

POLL_S = 0.5  # how often the files are looked at
DISCOVER_EVERY = 4  # polls between looks for new runs in a watched folder of runs
STALE_AFTER_S = 60.0  # no new metric line for this long (and not finished): "stale" ...
STALE_GAPS = 3.0  # ... or for 3x the longest gap between its recent lines, if that is longer
MAX_RETRY_S = 30.0  # a checkpoint that fails to load is retried at most this far apart
POLL_CHUNKS = 8  # read_metrics calls per run and poll (8 x 8 MiB); a longer backlog takes more polls


def clock() -> float:
    """Wall-clock seconds (time.time); tests replace it to freeze the "updated … ago" text."""
    return time.time()


def fmt_age(seconds: float | None) -> str:
    """'just now', '42 s', '3 min', '2 h', '3 d'."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = max(0.0, seconds)
    if s < 1.5:
        return "just now"
    if s < 90:
        return f"{s:.0f} s"
    if s < 90 * 60:
        return f"{s / 60:.0f} min"
    if s < 36 * 3600:
        return f"{s / 3600:.0f} h"
    return f"{s / 86400:.0f} d"


def _tail(path: Path, offset: int, size: int = 64) -> bytes:
    """The `size` bytes of a file before `offset` (b"" when unreadable)."""
    start = max(0, offset - size)
    try:
        with open_regular(path) as fh:  # a FIFO put in its place must not block the watcher
            fh.seek(start)
            return fh.read(offset - start)
    except OSError:
        return b""


def _no_rows() -> np.ndarray:
    return np.empty((0, N_COLS))


class Polled(NamedTuple):
    """What one poll of a run read: rows of COLUMNS ((n, 8), read-only), whether its series
    started over (a rewritten metrics file), the named series' new points (name -> (m, 4)),
    and the step of a TensorBoard restart (points at it and later were purged), if any."""

    rows: np.ndarray
    restarted: bool = False
    named: Mapping[str, np.ndarray] = MappingProxyType({})
    purge: float | None = None


class RunWatch:
    """What the watcher knows about one run directory.

    Written by the watcher thread; readers use the plain attributes (single assignments)
    and take metric rows with :meth:`take` (under the lock).
    """

    def __init__(self, path: str | os.PathLike, name: str | None = None) -> None:
        self.path = Path(path)
        self.name = name or self.path.name or str(path)
        self.kind = "rnn-tui"  # or "tensorboard": event files, no metrics.jsonl (then for good)
        self.lock = threading.Lock()
        self._pending = array("d")
        self._named = NamedBuffer()  # named series' points not taken yet
        self._purge: float | None = None  # a TensorBoard restart since the last take: the step
        self.names = NameTable()  # the named series this run keeps (names.left_out: the others)
        self._tb = None  # runs.tblog.EventLog of a TensorBoard run
        self.generation = 0  # +1 each time the metrics file was rewritten (series restarts)
        self.rows = 0  # metric rows read in this generation
        # metrics.jsonl
        self.cursor: MetricsCursor | None = None
        self._metrics_sig: tuple | None = None
        self._tail = b""  # the last bytes read: a file rewritten in place no longer has them
        self.last_step: float | None = None
        self.exists = False  # the directory exists
        self.has_metrics = False
        self.updated: float | None = None  # wall-clock time of the newest metric line (file mtime)
        self.line_gap = 0.0  # longest training time between two of the last 20 lines (s)
        self._times: list[float] = []
        # checkpoints
        self._ckpt_sig: tuple | None = None
        self.ckpt_dir: Path | None = None
        self.ckpt_sha: str | None = None
        self.ckpt_step: int | None = None
        self.train: dict = {}  # config.json["train"] of the newest checkpoint
        self.train_version = 0  # +1 when `train` changed
        self.error = ""  # why the newest checkpoint could not be loaded ('' when fine)
        self._retry_at = 0.0
        self._backoff = POLL_S

    # ------------------------------------------------------------------ reader side
    def take(self) -> tuple[int, np.ndarray]:
        """(generation, the rows read since the last take as an (n, 8) array); the named
        series' points stay for :meth:`take_all`."""
        with self.lock:
            data, self._pending = self._pending, array("d")
            gen = self.generation
        rows = np.frombuffer(data, dtype=np.float64).reshape(-1, N_COLS) if len(data) else _no_rows()
        return gen, rows

    def take_all(self) -> tuple[int, np.ndarray, dict[str, np.ndarray], float | None]:
        """(generation, rows, {name: (n, 4) points in NAMED_COLUMNS order}, purge) read since the
        last take. ``purge``: a TensorBoard log restarted at that step since the last take: drop
        the points taken before at that step and later, then add these (None: no restart)."""
        with self.lock:
            data, self._pending = self._pending, array("d")
            named, self._named = self._named, NamedBuffer()
            purge, self._purge = self._purge, None
            gen = self.generation
        rows = np.frombuffer(data, dtype=np.float64).reshape(-1, N_COLS) if len(data) else _no_rows()
        return gen, rows, named.arrays(), purge

    @property
    def has_checkpoints(self) -> bool:
        """An rnn-tui run can have checkpoints; a TensorBoard log has none."""
        return self.kind != "tensorboard"

    @property
    def steps(self) -> int | None:
        """Total steps of the run (from its checkpoint's training config), when known."""
        steps = self.train.get("steps") if isinstance(self.train, dict) else None
        return steps if isinstance(steps, int) and not isinstance(steps, bool) else None

    @property
    def finished(self) -> bool:
        steps = self.steps
        return bool(steps) and self.last_step is not None and self.last_step >= steps \
            and self.ckpt_step is not None and self.ckpt_step >= steps

    def age(self, now: float | None = None) -> float | None:
        """Seconds since the newest metric line was written; None before the first."""
        if self.updated is None:
            return None
        return max(0.0, (clock() if now is None else now) - self.updated)

    def state(self, now: float | None = None, stale_after: float = STALE_AFTER_S) -> str:
        """waiting (no directory yet), new (no metrics yet), live, stale or done."""
        if not self.exists:
            return "waiting"
        if not self.has_metrics:
            return "new"
        if self.finished:
            return "done"
        age = self.age(now)
        if age is not None and age > max(stale_after, STALE_GAPS * self.line_gap):
            return "stale"
        return "live"

    # ------------------------------------------------------------------ watcher side
    def poll_metrics(self) -> int:
        """Read new whole lines of metrics.jsonl; returns how many rows were added."""
        return len(self.poll_rows()[0])

    def poll_rows(self) -> Polled:
        """Read new whole lines of metrics.jsonl (or new events of a TensorBoard run), as a
        `Polled`; what was read is kept for :meth:`take_all` too."""
        if self.kind == "tensorboard":
            return self._poll_events()
        path = self.path / METRICS_NAME
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self.exists = self.path.is_dir()
            if self.exists and has_event_files(self.path):
                self.kind = "tensorboard"
                return self._poll_events()
            return Polled(_no_rows())
        except OSError:
            return Polled(_no_rows())
        self.exists = True
        self.has_metrics = True
        sig = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if sig == self._metrics_sig:
            return Polled(_no_rows())
        cursor_in = self.cursor
        if cursor_in is not None and cursor_in.offset and _tail(path, cursor_in.offset) != self._tail:
            cursor_in = None  # rewritten in place: what we read last is not there any more
        records, cursor, restarted = _read(path, cursor_in)
        restarted = restarted or (cursor_in is None and self.cursor is not None)
        rows = _rows(records)
        if rows and not restarted and self.last_step is not None and rows[0][0][0] <= self.last_step:
            # Rewritten in place with earlier steps: start over from the top.
            records, cursor, _ = _read(path, None)
            rows = _rows(records)
            restarted = True
        self._metrics_sig = None if cursor.more else sig  # a backlog: go on at the next poll
        self.cursor = cursor
        self._tail = _tail(path, cursor.offset)
        if not rows and not restarted:
            return Polled(_no_rows())
        anchor = min(st.st_mtime, clock())  # when the newest line was written (about)
        last_t = rows[-1][0][5] if rows else math.nan
        flat = array("d")
        named = NamedBuffer()
        for r, rec in rows:
            wall = anchor - (last_t - r[5]) if math.isfinite(last_t) and math.isfinite(r[5]) else anchor
            flat.extend(r[:6])
            flat.append(wall)
            flat.append(r[7])
            for name, value in record_named(rec, self.names):
                named.add(name, r[0], r[5], wall, value)
        points = named.arrays()  # before _keep hands the buffers on
        self._keep(flat, named, restarted)
        if rows:
            self.updated = st.st_mtime
            self._note_times(rows[-1][0][0], [r[5] for r, _ in rows[-21:]])
        return Polled(self._out(flat), restarted, points)

    def _keep(self, flat: array, named: NamedBuffer, restarted: bool = False) -> None:
        """New rows and points, for take(); a restart drops what was not taken."""
        with self.lock:
            if restarted:
                self._pending = array("d")
                self._named = NamedBuffer()
                self.generation += 1
                self.rows = 0
            self._pending.extend(flat)
            self._named.merge(named)
            self.rows += len(flat) // N_COLS
        if restarted:
            self._times = []
            self.last_step = None

    def _drop_from(self, step: float) -> None:
        """A TensorBoard restart at `step`: the points not taken yet at that step and later go,
        and the taker is told to drop those it has (take_all's purge)."""
        with self.lock:
            rows = np.frombuffer(self._pending, dtype=np.float64).reshape(-1, N_COLS)
            keep = rows[rows[:, 0] < step]
            if len(keep) < len(rows):
                self._pending = array("d")
                self._pending.frombytes(keep.tobytes())
            self._named.drop_from(step)
            self._purge = step if self._purge is None else min(self._purge, step)
        if self.last_step is not None and self.last_step >= step:
            self.last_step = None
        self._times = []

    def _note_times(self, step: float, times: list[float]) -> None:
        """The newest step, and the longest recent gap between lines: a run that logs rarely
        (--log-every 100 on a big model) is not stale between lines."""
        self.last_step = step if self.last_step is None else max(self.last_step, step)
        times = (self._times + [t for t in times[-21:] if math.isfinite(t)])[-21:]
        self._times = times
        gaps = [b - a for a, b in zip(times, times[1:]) if b >= a]
        self.line_gap = max(gaps) if gaps else 0.0

    @staticmethod
    def _out(flat: array) -> np.ndarray:
        out = np.array(flat, dtype=np.float64).reshape(-1, N_COLS)
        out.flags.writeable = False
        return out

    def _poll_events(self) -> Polled:
        """A TensorBoard run: the events its files gained (runs.tblog)."""
        self.exists = self.path.is_dir()
        if self._tb is None:
            from .tblog import MISSING, EventLog, tensorboard_available

            if not tensorboard_available():
                self.has_metrics = self.exists
                self.error = MISSING
                return Polled(_no_rows())
            self._tb = EventLog(self.path, self.names)
        read = self._tb.poll()
        self.has_metrics = bool(self._tb.files)
        self.error = self._tb.error
        if read.purge is not None:
            self._drop_from(read.purge)
        if not read.rows and not read.named:
            return Polled(_no_rows(), purge=read.purge)
        flat = array("d")
        for row in read.rows:
            flat.extend(row)
        named = read.named.arrays()  # before _keep hands the buffers on
        self._keep(flat, read.named)
        self.updated = self._tb.updated
        if read.rows:
            self._note_times(max(r[0] for r in read.rows), [r[5] for r in read.rows])
        else:
            points = next(iter(named.values()))
            self._note_times(float(points[:, 0].max()), points[-21:, 1].tolist())
        return Polled(self._out(flat), False, named, read.purge)

    def newest_checkpoint(self) -> tuple[Path, os.stat_result] | None:
        """The checkpoint directory (RUN or RUN/best) whose config.json was written last."""
        best = None
        for d in checkpoint_dirs(self.path):
            try:
                st = os.stat(d / CONFIG_NAME)
            except OSError:
                continue
            if best is None or st.st_mtime_ns > best[1].st_mtime_ns:
                best = (d, st)
        return best

    def poll_checkpoint(self) -> bool:
        """Re-read the newest config.json when it changed; True when it did."""
        found = self.newest_checkpoint()
        if found is None:
            return False
        d, st = found
        sig = (str(d), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if sig == self._ckpt_sig:
            return False
        config = read_config(d)
        if config is None:
            return False  # replaced while we read it: the next poll sees the new one
        self._ckpt_sig = sig
        self.ckpt_dir = d
        sha = config.get("tensors_sha256")
        self.ckpt_sha = sha if isinstance(sha, str) else f"mtime:{st.st_mtime_ns}"
        metrics = config.get("metrics") if isinstance(config.get("metrics"), dict) else {}
        step = metrics.get("step")
        self.ckpt_step = step if isinstance(step, int) and not isinstance(step, bool) else None
        train = config.get("train")
        if isinstance(train, dict) and train != self.train:
            self.train = train
            self.train_version += 1
        self._retry_at = 0.0
        self._backoff = POLL_S
        return True


def _rows(records: list[dict]) -> list[tuple[tuple[float, ...], dict]]:
    """(row of COLUMNS, the record) of each record that is a row."""
    out = []
    for rec in records:
        row = record_row(rec)
        if row is not None:
            out.append((row, rec))
    return out


def _read(path: Path, cursor: MetricsCursor | None) -> tuple[list[dict], MetricsCursor, bool]:
    """read_metrics, up to POLL_CHUNKS calls while it has more to give."""
    records, cursor, restarted = read_metrics(path, cursor)
    for _ in range(POLL_CHUNKS - 1):
        if not cursor.more:
            break
        more, cursor, again = read_metrics(path, cursor)
        if again:  # replaced between two reads: what was read belongs to the old file
            records, restarted = more, True
        else:
            records += more
    return records, cursor, restarted


class Watcher:
    """Polls run directories and reports what changed; see the module docstring.

    ``report(event)`` is called on the polling thread with each ``runs.events`` event.
    ``load(directory)`` loads the checkpoint in a directory (raising on a bad one); without it
    new checkpoints are only reported (``CheckpointFound``), never loaded.
    """

    def __init__(self, dirs: list[str | os.PathLike] = (), *, roots: list[str | os.PathLike] = (),
                 report: Callable[[WatchEvent], None] | None = None,
                 load: Callable[[Path], Any] | None = None, poll_s: float = POLL_S) -> None:
        paths = [Path(d) for d in dirs]
        # Appended to by the watcher thread when a run appears under a root; readers only
        # iterate it (list appends are atomic).
        self.runs = [RunWatch(p, n) for p, n in zip(paths, run_names(paths))]
        self.roots = [Path(r) for r in roots]
        self.report = report
        self.load = load
        self.poll_s = poll_s
        self.model_run: RunWatch | None = self.runs[0] if self.runs else None
        self.shown: tuple[RunWatch, str] | None = None  # (run, sha) of the model shown
        self.loads = 0  # models loaded and reported
        self.polls = 0
        self.error = ""  # the last exception of a poll on the thread (a failing report callback)
        self._told: dict[RunWatch, str] = {}  # runs reported added -> the state last reported
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ control (any thread)
    def start(self) -> "Watcher":
        """Poll every ``poll_s`` seconds in a daemon thread of its own, until stop(); returns self."""
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._loop, name="rnn-tui watch", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling; waits (up to `timeout` s) for a poll under way to finish."""
        self._stopping.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def select_model_run(self, run: RunWatch | None) -> None:
        """Load this run's newest checkpoint from now on (at the next poll, which comes at once)."""
        if run is not self.model_run:
            self.model_run = run
            self._wake.set()

    def assume_shown(self, source: str | None, sha: str | None) -> None:
        """This checkpoint is shown already (loaded at startup): do not load it again."""
        if not source or not sha:
            return
        try:
            src = os.path.realpath(source)
        except OSError:
            return
        for run in self.runs:
            if src in (os.path.realpath(d) for d in checkpoint_dirs(run.path)):
                self.shown = (run, sha)
                return

    # ------------------------------------------------------------------ polling
    def discover(self) -> list[RunWatch]:
        """Add the runs that appeared in a watched folder of runs since the last look."""
        known = {os.path.abspath(r.path) for r in self.runs}
        fresh = []
        for root in self.roots:
            # `mkdir runs/a; rnn-tui watch runs/a; rnn-tui train ... --out runs/a`: the folder
            # itself became the run (and its best/ is a checkpoint, not another run).
            found = [root] if is_run(root) else runs_in(root)
            fresh += [p for p in found if os.path.abspath(p) not in known and p not in fresh]
        if not fresh:
            return []
        paths = [r.path for r in self.runs] + fresh
        names = run_names(paths)[len(self.runs):]  # old runs keep the names they were shown with
        taken = {r.name for r in self.runs}
        added = []
        for p, name in zip(fresh, names):
            added.append(RunWatch(p, name if name not in taken else str(p)))
            taken.add(added[-1].name)
        self.runs.extend(added)
        if self.model_run is None:
            self.model_run = added[0]
        return added

    def poll(self) -> None:
        """Look at every run once, then report what changed (in the order it happened)."""
        events: list[WatchEvent] = []
        if self.roots and self.polls % DISCOVER_EVERY == 0:
            try:
                self.discover()
            except OSError:
                pass
        for run in list(self.runs):
            if run not in self._told:
                self._told[run] = ""
                events.append(RunAdded(run))
            try:
                got = run.poll_rows()
                if len(got.rows) or got.named or got.restarted or got.purge is not None:
                    events.append(RowsRead(run, got.rows, run.generation, got.restarted, got.named, got.purge))
                if run.has_checkpoints and run.poll_checkpoint():
                    events.append(CheckpointFound(run, run.ckpt_dir, run.ckpt_sha, run.ckpt_step))
            except Exception as exc:  # never let one odd file stop the watching
                run.error = f"{type(exc).__name__}: {exc}"
            state = run.state()
            if state != self._told[run]:
                events.append(StateChanged(run, state, self._told[run] or None))
                self._told[run] = state
        self._maybe_load(events)
        self.polls += 1
        if self.report is not None:
            for event in events:
                self.report(event)

    def _maybe_load(self, events: list[WatchEvent]) -> None:
        run = self.model_run
        if self.load is None or run is None or run.ckpt_dir is None or run.ckpt_sha is None:
            return
        if self.shown is not None and self.shown[0] is run and self.shown[1] == run.ckpt_sha:
            return
        now = time.monotonic()
        if now < run._retry_at:
            return
        try:
            model = self.load(run.ckpt_dir)
        except Exception as exc:  # CheckpointError, or whatever a torn file raises: keep the old
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            run.error = text
            run._retry_at = now + run._backoff
            run._backoff = min(MAX_RETRY_S, run._backoff * 2)
            events.append(LoadFailed(run, text))
            return
        run.error = ""
        run._backoff = POLL_S
        sha = run.ckpt_sha
        meta = getattr(model, "meta", None)
        if isinstance(meta, dict):  # a copy of the checkpoint's config.json: say which run it is
            metrics = meta.get("metrics")
            step = metrics.get("step") if isinstance(metrics, dict) else None
            meta["watch"] = {"run": run.name, "dir": str(run.ckpt_dir), "step": step}
            sha = meta.get("tensors_sha256") or sha
        self.shown = (run, sha)
        self.loads += 1
        events.append(ModelLoaded(run, model))

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll()
            except Exception as exc:  # a report callback that raised: keep watching, keep why
                self.error = f"{type(exc).__name__}: {exc}"
            self._wake.wait(self.poll_s)
            self._wake.clear()
