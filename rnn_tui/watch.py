"""Follow runs that another process is training: `rnn-tui watch RUN_DIR [RUN_DIR...]`.

A folder of runs (`rnn-tui watch runs/`) stands for the runs in it, and a run started in it
later joins the list within a few polls.

A :class:`Watcher` polls each run directory from one thread (a Textual thread worker, see
:func:`start_watcher`), every ``POLL_S`` seconds:

* ``RUN/metrics.jsonl``: when its size, mtime or inode changed, the new *whole* lines are
  read with ``engine.train.read_metrics`` (a half-written last line is left for the next
  poll). A file that was rewritten (``--resume`` drops lines past its checkpoint) or whose
  steps go backwards is read again from the top and the run's series starts over
  (``RunWatch.generation`` counts the restarts).
* the newest checkpoint, ``RUN/config.json`` or ``RUN/best/config.json`` (whichever was
  written last): config.json is the commit point of an atomic save, so it is only parsed
  when its stat changes, and the weights are loaded only when its ``tensors_sha256`` differs
  from the one on screen, and only for the run whose model the app shows
  (:meth:`Watcher.select_model_run`). A load that fails keeps the old model and is retried
  at the next polls (backing off to ``MAX_RETRY_S``).

The watcher thread never touches a widget. Metrics go into a flat float array per run under
its lock; the training screen takes them (``RunWatch.take``) on its 0.3 s timer. Models go
to the app through ``on_model`` (the app posts them to its event loop).

Nothing here imports torch at module import time; ``clock`` (wall-clock seconds) is what
ages are measured with, so tests can freeze it.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from array import array
from pathlib import Path
from typing import Any, Callable

import numpy as np

POLL_S = 0.5  # how often the files are looked at
DISCOVER_EVERY = 4  # polls between looks for new runs in a watched folder of runs
STALE_AFTER_S = 60.0  # no new metric line for this long (and not finished): "stale" ...
STALE_GAPS = 3.0  # ... or for 3x the longest gap between its recent lines, if that is longer
MAX_RETRY_S = 30.0  # a checkpoint that fails to load is retried at most this far apart
METRICS_NAME = "metrics.jsonl"
CONFIG_NAME = "config.json"
# The columns of a metrics row, in the order of the training screen's _Columns.
COLUMNS = ("step", "epoch", "loss", "grad", "tps", "time", "wall", "val")
N_COLS = len(COLUMNS)


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


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


def record_row(rec: Any) -> tuple[float, ...] | None:
    """One metrics.jsonl record -> a row of COLUMNS (wall left nan); None if it has no step."""
    if not isinstance(rec, dict):
        return None
    step = _num(rec.get("step"))
    if not math.isfinite(step):
        return None
    return (step, _num(rec.get("epoch")), _num(rec.get("loss")), _num(rec.get("grad_norm")),
            _num(rec.get("tokens_per_s")), _num(rec.get("wall_time")), math.nan,
            _num(rec.get("val_loss")))


def run_names(paths: list[Path]) -> list[str]:
    """Short unique names for run directories: the last path part, more parts when needed."""
    parts = [Path(os.path.normpath(str(p))).parts or (str(p),) for p in paths]
    depth = [1] * len(paths)
    for _ in range(8):
        names = ["/".join(ps[-d:]) for ps, d in zip(parts, depth)]
        dupes = {n for n in names if names.count(n) > 1}
        if not dupes:
            return names
        depth = [d + 1 if n in dupes else d for n, d in zip(names, depth)]
    return [str(p) for p in paths]


def expand_run_dirs(specs: list[str]) -> tuple[list[Path], list[Path], list[str]]:
    """Run directories to watch, folders of runs to keep looking in, and notes.

    A directory that holds no run itself (``runs/``) is a folder of runs: the runs inside
    it now are watched, and runs that appear in it later are added while watching. A path
    that does not exist yet is kept (the watcher waits for a run there); a file
    (``runs/big.log`` from ``rnn-tui watch runs/*``) is left out with a note.
    """
    out: list[Path] = []
    roots: list[Path] = []
    notes: list[str] = []
    for spec in specs:
        path = Path(spec).expanduser()
        if path.exists() and not path.is_dir():
            notes.append(f"{spec} is a file, not a run directory: left out")
            continue
        if path.is_dir() and not _is_run(path):
            roots.append(path)
            out.extend(runs_in(path))
            continue
        out.append(path)
    return _unique(out), _unique(roots), notes


def runs_in(folder: Path) -> list[Path]:
    """The run directories directly inside `folder`, sorted ([] when it cannot be listed)."""
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and _is_run(p))
    except OSError:
        return []


def _unique(paths: list[Path]) -> list[Path]:
    seen: set[str] = set()
    unique = []
    for p in paths:
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def _is_run(path: Path) -> bool:
    return (path / METRICS_NAME).exists() or (path / CONFIG_NAME).exists()


def _tail(path: Path, offset: int, size: int = 64) -> bytes:
    """The `size` bytes of a file before `offset` (b"" when unreadable)."""
    start = max(0, offset - size)
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            return fh.read(offset - start)
    except OSError:
        return b""


class RunWatch:
    """What the watcher knows about one run directory.

    Written by the watcher thread; the UI reads the plain attributes (single assignments)
    and takes metric rows with :meth:`take` (under the lock).
    """

    def __init__(self, path: str | os.PathLike, name: str | None = None) -> None:
        self.path = Path(path)
        self.name = name or self.path.name or str(path)
        self.lock = threading.Lock()
        self._pending = array("d")
        self.generation = 0  # +1 each time the metrics file was rewritten (series restarts)
        self.rows = 0  # metric rows read in this generation
        # metrics.jsonl
        self.cursor = None  # engine.train.MetricsCursor
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

    # ------------------------------------------------------------------ UI side
    def take(self) -> tuple[int, np.ndarray]:
        """(generation, the rows read since the last take as an (n, 8) array)."""
        with self.lock:
            data, self._pending = self._pending, array("d")
            gen = self.generation
        rows = np.frombuffer(data, dtype=np.float64).reshape(-1, N_COLS) if len(data) else np.empty((0, N_COLS))
        return gen, rows

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
        path = self.path / METRICS_NAME
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self.exists = self.path.is_dir()
            return 0
        except OSError:
            return 0
        self.exists = True
        self.has_metrics = True
        sig = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if sig == self._metrics_sig:
            return 0
        from .engine.train import read_metrics

        cursor_in = self.cursor
        if cursor_in is not None and cursor_in.offset and _tail(path, cursor_in.offset) != self._tail:
            cursor_in = None  # rewritten in place: what we read last is not there any more
        records, cursor, restarted = read_metrics(path, cursor_in)
        restarted = restarted or (cursor_in is None and self.cursor is not None)
        rows = [r for r in map(record_row, records) if r is not None]
        if rows and not restarted and self.last_step is not None and rows[0][0] <= self.last_step:
            # Rewritten in place with earlier steps: start over from the top.
            records, cursor, _ = read_metrics(path, None)
            rows = [r for r in map(record_row, records) if r is not None]
            restarted = True
        self._metrics_sig = sig
        self.cursor = cursor
        self._tail = _tail(path, cursor.offset)
        if not rows and not restarted:
            return 0
        anchor = min(st.st_mtime, clock())  # when the newest line was written (about)
        last_t = rows[-1][5] if rows else math.nan
        flat = array("d")
        for r in rows:
            wall = anchor - (last_t - r[5]) if math.isfinite(last_t) and math.isfinite(r[5]) else anchor
            flat.extend(r[:6])
            flat.append(wall)
            flat.append(r[7])
        with self.lock:
            if restarted:
                self._pending = array("d")
                self.generation += 1
                self.rows = 0
            self._pending.extend(flat)
            self.rows += len(rows)
        if restarted:
            self._times = []
        if rows:
            self.last_step = rows[-1][0]
            self.updated = st.st_mtime
            # A run that logs rarely (--log-every 100 on a big model) is not stale between lines.
            times = (self._times + [r[5] for r in rows[-21:] if math.isfinite(r[5])])[-21:]
            self._times = times
            gaps = [b - a for a, b in zip(times, times[1:]) if b >= a]
            self.line_gap = max(gaps) if gaps else 0.0
        elif restarted:
            self.last_step = None
        return len(rows)

    def newest_checkpoint(self) -> tuple[Path, os.stat_result] | None:
        """The checkpoint directory (RUN or RUN/best) whose config.json was written last."""
        best = None
        for d in (self.path, self.path / "best"):
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
        try:
            config = json.loads((d / CONFIG_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False  # replaced while we read it: the next poll sees the new one
        if not isinstance(config, dict):
            return False
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


class Watcher:
    """Polls run directories from one thread; see the module docstring."""

    def __init__(self, dirs: list[str | os.PathLike], device: Any = None,
                 on_model: Callable[[Any, RunWatch], None] | None = None,
                 poll_s: float = POLL_S, roots: list[str | os.PathLike] = ()) -> None:
        paths = [Path(d) for d in dirs]
        # Appended to by the watcher thread when a run appears under a root; the UI only
        # iterates it (list appends are atomic).
        self.runs = [RunWatch(p, n) for p, n in zip(paths, run_names(paths))]
        self.roots = [Path(r) for r in roots]
        self.device = device
        self.on_model = on_model
        self.poll_s = poll_s
        self.model_run: RunWatch | None = self.runs[0] if self.runs else None
        self.shown: tuple[RunWatch, str] | None = None  # (run, sha) of the model on screen
        self.loads = 0  # models handed to on_model
        self.polls = 0
        self._wake = threading.Event()

    def select_model_run(self, run: RunWatch | None) -> None:
        """Show this run's newest checkpoint in the other modes (loaded at the next poll)."""
        if run is not self.model_run:
            self.model_run = run
            self._wake.set()

    def assume_shown(self, source: str | None, sha: str | None) -> None:
        """The app already shows this checkpoint (loaded at startup): do not load it again."""
        if not source or not sha:
            return
        try:
            src = os.path.realpath(source)
        except OSError:
            return
        for run in self.runs:
            if src in (os.path.realpath(run.path), os.path.realpath(run.path / "best")):
                self.shown = (run, sha)
                return

    def discover(self) -> list[RunWatch]:
        """Add the runs that appeared in a watched folder of runs since the last look."""
        known = {os.path.abspath(r.path) for r in self.runs}
        fresh = []
        for root in self.roots:
            # `mkdir runs/a; rnn-tui watch runs/a; rnn-tui train ... --out runs/a`: the folder
            # itself became the run (and its best/ is a checkpoint, not another run).
            found = [root] if _is_run(root) else runs_in(root)
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
        """Look at every run once (watcher thread)."""
        if self.roots and self.polls % DISCOVER_EVERY == 0:
            try:
                self.discover()
            except OSError:
                pass
        for run in self.runs:
            try:
                run.poll_metrics()
                run.poll_checkpoint()
            except Exception as exc:  # never let one odd file stop the watching
                run.error = f"{type(exc).__name__}: {exc}"
        self._maybe_load()
        self.polls += 1

    def _maybe_load(self) -> None:
        run = self.model_run
        if run is None or run.ckpt_dir is None or run.ckpt_sha is None:
            return
        if self.shown is not None and self.shown[0] is run and self.shown[1] == run.ckpt_sha:
            return
        now = time.monotonic()
        if now < run._retry_at:
            return
        try:
            from .engine.checkpoint import load_model

            lm = load_model(run.ckpt_dir, self.device or "auto")
        except Exception as exc:  # CheckpointError, or whatever a torn file raises: keep the old
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            run.error = text
            run._retry_at = now + run._backoff
            run._backoff = min(MAX_RETRY_S, run._backoff * 2)
            return
        run.error = ""
        run._backoff = POLL_S
        meta_step = (lm.meta.get("metrics") or {}).get("step")
        lm.meta["watch"] = {"run": run.name, "dir": str(run.ckpt_dir), "step": meta_step}
        self.shown = (run, lm.meta.get("tensors_sha256") or run.ckpt_sha)
        self.loads += 1
        if self.on_model is not None:
            self.on_model(lm, run)

    def loop(self, cancelled: Callable[[], bool]) -> None:
        """Poll until ``cancelled()`` (the worker's cancel flag)."""
        while not cancelled():
            self.poll()
            self._wake.wait(self.poll_s)
            self._wake.clear()


def start_watcher(app) -> Watcher | None:
    """Start watching ``app.watch_dirs`` in a thread worker of the app (once the engine is up).

    Checkpoints go to ``app.set_model`` without a notification (``ModelReady(quiet=True)``).
    """
    dirs = list(app.settings.watch)
    roots = list(app.settings.watch_roots)
    if not (dirs or roots) or getattr(app, "watcher", None) is not None:
        return getattr(app, "watcher", None)
    from .app import ModelReady

    def on_model(lm, run: RunWatch) -> None:
        app.post_message(ModelReady(lm, quiet=True))

    watcher = Watcher(dirs, device=getattr(app, "device", None), on_model=on_model,
                      poll_s=app.settings.watch_poll_s, roots=roots)
    lm = getattr(app, "lm", None)
    if lm is not None:
        watcher.assume_shown(lm.meta.get("source"), lm.meta.get("tensors_sha256"))
    app.watcher = watcher

    def work() -> None:
        from textual.worker import get_current_worker

        worker = get_current_worker()
        watcher.loop(lambda: worker.is_cancelled)

    app.run_worker(work, thread=True, group="watch", name="watch", exit_on_error=False)
    return watcher
