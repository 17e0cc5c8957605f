"""The runs the training screen draws: one interface for a run trained here and a watched one.

Everything that shows runs (the chart, the legend, the runs list, the status line) reads a
`Run`: its index, name and colour, the config it trains with, its metric `Columns`, its named
series (`named`: the metrics that have no column, each `Columns` of step, time, wall and
value: a RunWriter run's `accuracy`, a TensorBoard tag, the learning rate), its state, the
pinned / hidden flags of the runs list, and its smoothed series (the EMA is extended as points
arrive, never recomputed over the whole run). Two sources fill one:

* `TrainingRun`: a run this app trains. The training thread queues each StepMetrics with
  `push` (under a lock, never touching a widget); `drain` moves them into the columns.
* `WatchedRun`: a run another process trains (`rnn-tui watch`), followed through its
  `runs.RunWatch`: `drain` takes the rows the watcher read, and starts the series over when
  the metrics file was rewritten (a resume); `follow` takes the watcher's state.

`drain` is called by the UI thread only, and returns how many points changed. Nothing here
imports torch or textual.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...render.colors import SERIES_RGB
from ...render.series import ema
from ...runs import COLUMNS
from ...runs.named import NAMED_COLUMNS

ACTIVE_STATES = ("starting", "running", "paused", "stopping")  # a run trained here, not over yet
TRAINING_STATES = ("running", "live")  # steps are being taken: an ETA makes sense


def run_color(index: int) -> tuple[int, int, int]:
    """Run #index's colour (the series colours, in order, round again after the last)."""
    return SERIES_RGB[(index - 1) % len(SERIES_RGB)]


class Columns:
    """Growing numpy columns of a run's metrics, named as `runs.COLUMNS` (or as `names`: a
    named series' `runs.named.NAMED_COLUMNS`)."""

    NAMES = COLUMNS

    def __init__(self, names: tuple[str, ...] | None = None, capacity: int = 256) -> None:
        if names is not None:
            self.NAMES = names
        self._cap = capacity
        self._n = 0
        self._data = {n: np.empty(self._cap) for n in self.NAMES}

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, name: str) -> np.ndarray:
        return self._data[name][: self._n]

    def append(self, row: dict[str, float]) -> None:
        self._reserve(self._n + 1)
        for name in self.NAMES:
            self._data[name][self._n] = row[name]
        self._n += 1

    def extend(self, rows: np.ndarray) -> None:
        """Append an (n, len(NAMES)) block of rows, columns in NAMES order (a watched run's lines)."""
        n = len(rows)
        if not n:
            return
        need = self._n + n
        self._reserve(need)
        for i, name in enumerate(self.NAMES):
            self._data[name][self._n:need] = rows[:, i]
        self._n = need

    def keep_before(self, step: float) -> None:
        """Drop the rows at `step` and later (a TensorBoard log's restart purges them)."""
        keep = self["step"] < step
        n = int(np.count_nonzero(keep))
        if n < self._n:
            for name in self.NAMES:
                self._data[name][:n] = self._data[name][: self._n][keep]
            self._n = n

    def _reserve(self, need: int) -> None:
        if need <= self._cap:
            return
        while self._cap < need:
            self._cap *= 2
        for name in self.NAMES:
            grown = np.empty(self._cap)
            grown[: self._n] = self._data[name][: self._n]
            self._data[name] = grown


class Run:
    """What the screen knows of one run, wherever it is trained."""

    watch: Any = None  # runs.RunWatch of a watched run (None: trained here)
    trainer: Any = None  # the engine's Trainer of a run trained here, once built
    saved_to = ""  # where this app last saved its weights

    def __init__(self, index: int, config: Any, color: tuple[int, int, int] | None = None,
                 state: str = "starting") -> None:
        self.index = index
        self.config = config  # TrainConfig, or a watched run's WatchedConfig
        self.color = color if color is not None else run_color(index)
        self.state = state
        self.cols = Columns()
        self.named: dict[str, Columns] = {}  # name -> its points (NAMED_COLUMNS), in the order seen
        self.pinned = False  # kept visible whatever the filter, drawn on top, first in the legend
        self.hidden = False  # left off the charts (still listed)
        self._smooth: dict[tuple, tuple] = {}  # (column or ("named", name), weight) -> EMA state

    # -- what it is called
    @property
    def name(self) -> str:
        """How the status line names it: '#2', or a watched run's directory name."""
        return f"#{self.index}"

    @property
    def label(self) -> str:
        """How the legend and the runs list name it."""
        return self.name

    @property
    def short_label(self) -> str:
        """How the header and the list under the form name it: '#2 lstm', or the directory name."""
        return self.name

    # -- where it stands
    @property
    def active(self) -> bool:
        """Trained here and not over yet (it can be paused, stopped, saved)."""
        return False

    @property
    def last_step(self) -> int | None:
        if len(self.cols):
            return int(self.cols["step"][-1])
        steps = [s["step"][-1] for s in self.named.values() if len(s)]  # a log of named metrics only
        return int(max(steps)) if steps else None

    def eta(self) -> float | None:
        """Seconds left, from the pace of the last ~20 s of training."""
        cols = self.cols
        n = len(cols)
        if n < 2 or self.state not in TRAINING_STATES or not self.config.steps:
            return None
        t, s = cols["time"], cols["step"]
        lo = min(int(np.searchsorted(t, t[-1] - 20.0)), n - 2)
        dt, ds = t[-1] - t[lo], s[-1] - s[lo]
        if dt <= 0 or ds <= 0:
            return None
        return (self.config.steps - s[-1]) * dt / ds

    # -- its points
    def drain(self) -> int:
        """UI thread: take the points that arrived since the last call. Returns how many changed."""
        return 0

    def add_named(self, name: str, points: np.ndarray) -> None:
        """Append (n, 4) points (NAMED_COLUMNS order) to a named series."""
        series = self.named.get(name)
        if series is None:
            series = self.named[name] = Columns(NAMED_COLUMNS, capacity=16)
        series.extend(points)

    def smoothed(self, name: str, weight: float) -> np.ndarray:
        """EMA of a column over every point, extended incrementally as points arrive."""
        return self._smoothed(name, self.cols[name], weight)

    def named_smoothed(self, name: str, weight: float) -> np.ndarray:
        """EMA of a named series' values, as `smoothed`."""
        return self._smoothed(("named", name), self.named[name]["value"], weight)

    def _smoothed(self, name, raw: np.ndarray, weight: float) -> np.ndarray:
        if weight <= 0:
            return raw
        key = (name, weight)
        cached = self._smooth.get(key)
        n = len(raw)
        if cached is None or cached[0] > n:
            out = ema(raw, weight)
            acc, count = _ema_state(raw, weight)
            self._smooth[key] = (n, out, acc, count)
            return out
        done, out, acc, count = cached
        if done == n:
            return out
        tail = np.empty(n - done)
        for i, v in enumerate(raw[done:]):
            if math.isfinite(v):
                acc = weight * acc + (1 - weight) * v
                count += 1
                tail[i] = acc / (1 - weight**count)
            else:
                tail[i] = math.nan
        out = np.concatenate([out, tail])
        self._smooth[key] = (n, out, acc, count)
        return out

    def _restart(self) -> None:
        self.cols = Columns()
        self.named = {}
        self._smooth.clear()


def _ema_state(raw: np.ndarray, weight: float) -> tuple[float, int]:
    """The un-debiased accumulator and count of finite values after the whole series."""
    finite = raw[np.isfinite(raw)]
    count = int(finite.size)
    if not count:
        return 0.0, 0
    # acc_n = (1 - w) * sum_j w**(n-1-j) v_j, summed in reverse so the powers stay small.
    powers = weight ** np.arange(count)[::-1]
    return float((1 - weight) * np.sum(powers * finite)), count


class TrainingRun(Run):
    """A run this app trains: a thread worker runs its Trainer and queues its metrics here.

    States: starting, running, paused, stopping, then done, stopped, diverged or failed."""

    def __init__(self, index: int, config: Any, color: tuple[int, int, int] | None = None,
                 state: str = "starting") -> None:
        super().__init__(index, config, color, state)
        self.trainer = None
        self.stop = threading.Event()  # set to stop the training thread within a step
        self.finished = threading.Event()  # set when the training thread is done
        self.message = ""  # why it ended, when it did not just finish
        self.saved_to = ""  # where its weights were last saved
        self.saved_step: int | None = None  # ... at which step
        self.save_dir = None  # the directory its saves go to: set by the save worker, under its lock
        self._pending: list = []
        self._pending_named: list = []  # (name, (step, seconds, wall, value)) from the training thread
        self._lock = threading.Lock()

    @property
    def label(self) -> str:
        c = self.config
        layers = f"x{c.layers}" if c.layers > 1 else ""
        return f"#{self.index} {c.cell} H{c.hidden}{layers} lr {c.lr:g}"

    @property
    def short_label(self) -> str:
        return f"#{self.index} {self.config.cell}"

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def unsaved(self) -> bool:
        """It has trained weights that moved on since they were last saved (or never were)."""
        trainer = self.trainer
        return trainer is not None and trainer.step > 0 and (self.active or self.saved_step != trainer.step)

    def finish(self, result, error: str = "") -> None:
        """The training thread ended with this TrainResult (None: it never started) or error."""
        self.message = error or (result.stopped_reason or "" if result is not None else "")
        if error:
            self.state = "failed"
        elif result is None:
            self.state = "stopped"
        elif result.diverged:
            self.state, self.message = "diverged", self.message or "training diverged"
        elif result.out_of_memory:
            self.state, self.message = "failed", self.message or "out of memory"
        else:
            self.state = "stopped" if result.stopped_reason else "done"

    def push(self, metrics, wall: float) -> None:
        """Training thread: queue one StepMetrics (``wall``: when it was logged)."""
        with self._lock:
            self._pending.append((metrics, wall))

    def push_named(self, name: str, step: int, seconds: float, wall: float, value: float) -> None:
        """Training thread: queue one point of a named series (e.g. the saturated gates)."""
        with self._lock:
            self._pending_named.append((name, (step, seconds, wall, value)))

    def drain(self) -> int:
        with self._lock:
            items, self._pending = self._pending, []
            named, self._pending_named = self._pending_named, []
        for name, point in named:
            self.add_named(name, np.array([point], dtype=float))
        for m, wall in items:
            val = m.val_loss if m.val_loss is not None else math.nan
            self.cols.append({
                "step": m.step, "epoch": m.epoch, "loss": m.loss, "grad": m.grad_norm,
                "tps": m.tokens_per_s, "time": m.wall_time, "wall": wall, "val": val,
            })
        if items:  # the learning rate is a named series, as in a watched run's metrics.jsonl
            self.add_named("lr", np.array([(m.step, m.wall_time, wall, m.lr) for m, wall in items
                                           if math.isfinite(m.lr)], dtype=float).reshape(-1, 4))
        return len(items)


@dataclass
class WatchedConfig:
    """What the charts and status need of a watched run's TrainConfig (from its config.json;
    unknown until the run's first checkpoint)."""

    cell: str = "?"
    hidden: int = 0
    layers: int = 1
    lr: float = 0.0
    steps: int = 0
    clip: float | None = None

    @classmethod
    def from_train(cls, train: dict) -> WatchedConfig:
        def get(key, kind, default):
            value = train.get(key)
            return value if isinstance(value, kind) and not isinstance(value, bool) else default

        return cls(cell=get("cell", str, "?"), hidden=get("hidden", int, 0), layers=get("layers", int, 1),
                   lr=float(get("lr", (int, float), 0.0)), steps=get("steps", int, 0),
                   clip=get("clip", (int, float), None) or None)


class WatchedRun(Run):
    """A run another process trains, followed through its `runs.RunWatch`.

    States (the watcher's): waiting (no directory yet), new (no metrics yet), live, stale, done."""

    def __init__(self, index: int, watch: Any, color: tuple[int, int, int] | None = None) -> None:
        super().__init__(index, WatchedConfig(), color, state="waiting")
        self.watch = watch
        self._generation = -1  # the RunWatch generation the columns hold
        self._train_version = -1  # the RunWatch train_version the config was made from

    @property
    def name(self) -> str:
        return self.watch.name

    def follow(self, now: float) -> bool:
        """Take the watcher's state of the run; True when it changed."""
        state = self.watch.state(now)
        changed, self.state = state != self.state, state
        return changed

    def drain(self) -> int:
        watch = self.watch
        if watch.train_version != self._train_version:
            self._train_version = watch.train_version
            self.config = WatchedConfig.from_train(watch.train)
        generation, rows, named, purge = watch.take_all()
        changed = 0
        if generation != self._generation:  # the metrics file was rewritten: start over
            if self._generation != -1 or len(self.cols):
                changed = 1
            self._generation = generation
            self._restart()
        if purge is not None:  # a TensorBoard log restarted at this step: what came after is stale
            for series in (self.cols, *self.named.values()):
                series.keep_before(purge)
            self._smooth.clear()
            changed += 1
        self.cols.extend(rows)
        for name, points in named.items():
            self.add_named(name, points)
            changed += len(points)
        return changed + len(rows)
