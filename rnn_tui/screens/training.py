"""Mode 2, Training: train a model live, watch its curves, compare runs.

A thread worker runs ``Trainer.run`` for the newest run. The training thread never touches a
widget: its ``on_metrics`` callback appends to a lock-protected list on the run, and a 0.3 s
UI timer drains every run's list, updates the status line and redraws the chart (only the
chart that is on screen, and only when something changed). Series are smoothed over every
point and then downsampled to about two points per chart column, so a 100,000-step run
redraws as fast as a 100-step one.

Every few seconds (and at the end) the training thread takes ``trainer.snapshot()`` and
posts it as a message; the screen hands it to ``app.set_model`` so the other modes read the
newest weights. The worker stops within one training step when the user stops the run, the
screen goes away or the app quits (its stop event also reads the worker's cancel flag).

Torch is imported only inside the worker and inside form validation once the engine is up,
so this module is cheap to import before the first frame.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, Select, Static
from textual.worker import get_current_worker
from textual_plotext import PlotextPlot

from ..engine.config import form_options
from ..render.fmt import LN2, convert_loss, fmt_duration, fmt_loss, fmt_rate, fmt_steps  # noqa: F401
from ..render.ticks import fmt_tick, nice_ticks  # noqa: F401
from ..engine.errors import RnnTuiError
from ..render.series import downsample, ema, log_safe, plot_width_points
from ..runs import COLUMNS, METRICS_NAME


# ------------------------------------------------------------------------ constants
SMOOTHING_LEVELS = (0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
DEFAULT_SMOOTHING = 0.6  # TensorBoard's default
CHARTS = ("loss", "grad", "speed", "all")
CHART_TITLES = {"loss": "loss", "grad": "grad norm (pre-clip)", "speed": "tokens/s"}


def _fit_title(title: str, width: int) -> str:
    """plotext leaves out a title wider than the chart: drop trailing " · " parts until it fits."""
    parts = title.split(" · ")
    while len(parts) > 1 and cell_len(" · ".join(parts)) > width:
        parts.pop()
    text = " · ".join(parts)
    return text if cell_len(text) <= width else text[: max(0, width - 1)] + "…"
UNITS = ("nats", "bits", "ppl")
UNIT_TITLES = {"nats": "loss (nats/tok)", "bits": "loss (bits/tok)", "ppl": "perplexity"}
XAXES = ("step", "time", "wall")
XAXIS_TITLES = {"step": "step", "time": "training time (s)", "wall": "wall clock"}
# One colour per run, in order; they read on dark and light backgrounds.
RUN_COLORS = (
    (86, 156, 255),  # blue
    (255, 145, 60),  # orange
    (96, 206, 120),  # green
    (232, 96, 210),  # magenta
    (240, 214, 70),  # yellow
    (80, 220, 226),  # cyan
    (250, 100, 100),  # red
    (180, 150, 255),  # violet
)
CANVAS_RGB = (30, 30, 36)

SNAPSHOT_EVERY_S = 3.0  # how often training hands fresh weights to the other modes
DRAIN_EVERY_S = 0.3

# The form's fields, generated from TrainConfig's options: name -> (label, kind); kind "int",
# "float", "str", or a tuple of choices. Defaults are TrainConfig's own.
FORM_FIELDS: dict[str, tuple[str, Any]] = {
    o.name: (o.form, o.choices if o.kind == "choice" else o.kind) for o in form_options()
}
FORM_DEFAULTS: dict[str, Any] = {o.name: o.default for o in form_options()}


# ------------------------------------------------------------------------ helpers
def _mix(rgb: tuple[int, int, int], other: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return tuple(int(round(a * (1 - t) + b * t)) for a, b in zip(rgb, other))  # type: ignore[return-value]


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def parse_form(values: dict[str, str], extras: dict[str, Any] | None = None) -> dict[str, Any]:
    """Form text -> TrainConfig keyword arguments. Raises ConfigError naming the bad field."""
    out: dict[str, Any] = dict(extras or {})
    for opt in form_options():
        out[opt.name] = opt.parse(values.get(opt.name, ""))
    return out


class _Columns:
    """Growing numpy columns of a run's metrics (written only by the UI thread)."""

    NAMES = COLUMNS  # runs.metrics: a watched run's rows come in this order

    def __init__(self) -> None:
        self._cap = 256
        self._n = 0
        self._data = {n: np.empty(self._cap) for n in self.NAMES}

    def __len__(self) -> int:
        return self._n

    def append(self, row: dict[str, float]) -> None:
        if self._n == self._cap:
            self._cap *= 2
            for n in self.NAMES:
                grown = np.empty(self._cap)
                grown[: self._n] = self._data[n][: self._n]
                self._data[n] = grown
        for n in self.NAMES:
            self._data[n][self._n] = row[n]
        self._n += 1

    def __getitem__(self, name: str) -> np.ndarray:
        return self._data[name][: self._n]

    def extend(self, rows: np.ndarray) -> None:
        """Append an (n, 8) block of rows, columns in NAMES order (a watched run's lines)."""
        n = len(rows)
        if not n:
            return
        need = self._n + n
        if need > self._cap:
            while self._cap < need:
                self._cap *= 2
            for name in self.NAMES:
                grown = np.empty(self._cap)
                grown[: self._n] = self._data[name][: self._n]
                self._data[name] = grown
        for i, name in enumerate(self.NAMES):
            self._data[name][self._n:need] = rows[:, i]
        self._n = need


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
    def from_train(cls, train: dict) -> "WatchedConfig":
        def get(key, kind, default):
            value = train.get(key)
            return value if isinstance(value, kind) and not isinstance(value, bool) else default

        return cls(cell=get("cell", str, "?"), hidden=get("hidden", int, 0), layers=get("layers", int, 1),
                   lr=float(get("lr", (int, float), 0.0)), steps=get("steps", int, 0),
                   clip=get("clip", (int, float), None) or None)


@dataclass
class RunRecord:
    """One training run: its config, its metrics, its trainer while it lives."""

    index: int
    config: Any  # TrainConfig
    color: tuple[int, int, int]
    started: float = field(default_factory=time.time)
    state: str = "starting"  # starting, running, paused, stopping, done, stopped, diverged, failed
    trainer: Any = None
    stop: threading.Event | None = None
    cols: _Columns = field(default_factory=_Columns)
    pending: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    finished: threading.Event = field(default_factory=threading.Event)  # set when the thread is done
    message: str = ""  # why it ended, when it did not just finish
    saved_to: str = ""
    _smooth_cache: dict = field(default_factory=dict)
    watch: Any = None  # rnn_tui.runs.RunWatch: a run another process trains (rnn-tui watch)
    name: str = ""  # a watched run's name (its directory)
    pinned: bool = False  # kept visible whatever the filter, drawn on top, first in the legend
    hidden: bool = False  # left off the charts (still listed)
    watch_gen: int = -1  # the RunWatch generation the columns hold
    watch_train: int = -1  # the RunWatch train_version the config was made from

    @property
    def label(self) -> str:
        if self.watch is not None:
            return self.name
        c = self.config
        layers = f"x{c.layers}" if c.layers > 1 else ""
        return f"#{self.index} {c.cell} H{c.hidden}{layers} lr {c.lr:g}"

    @property
    def active(self) -> bool:
        return self.state in ("starting", "running", "paused", "stopping")

    def push(self, metrics, wall: float) -> None:
        """Training thread: queue one StepMetrics."""
        with self.lock:
            self.pending.append((metrics, wall))

    def drain(self) -> int:
        """UI thread: move queued metrics into the columns. Returns how many."""
        if self.watch is not None:
            return self._drain_watch()
        with self.lock:
            items, self.pending = self.pending, []
        for m, wall in items:
            val = m.val_loss if m.val_loss is not None else math.nan
            self.cols.append({
                "step": m.step, "epoch": m.epoch, "loss": m.loss, "grad": m.grad_norm,
                "tps": m.tokens_per_s, "time": m.wall_time, "wall": wall, "val": val,
            })
        return len(items)

    def _drain_watch(self) -> int:
        """UI thread: take a watched run's new rows (starting over when its file was rewritten)."""
        watch = self.watch
        if watch.train_version != self.watch_train:
            self.watch_train = watch.train_version
            self.config = WatchedConfig.from_train(watch.train)
        gen, rows = watch.take()
        changed = 0
        if gen != self.watch_gen:
            if self.watch_gen != -1 or len(self.cols):
                changed = 1
            self.watch_gen = gen
            self.cols = _Columns()
            self._smooth_cache.clear()
        self.cols.extend(rows)
        return changed + len(rows)

    def smoothed(self, name: str, weight: float) -> np.ndarray:
        """EMA of a column over every point, extended incrementally as points arrive."""
        raw = self.cols[name]
        if weight <= 0:
            return raw
        key = (name, weight)
        cached = self._smooth_cache.get(key)
        n = len(raw)
        if cached is None or cached[0] > n:
            out = ema(raw, weight)
            acc, count = _ema_state(raw, weight)
            self._smooth_cache[key] = (n, out, acc, count)
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
        self._smooth_cache[key] = (n, out, acc, count)
        return out


def _ema_state(raw: np.ndarray, weight: float) -> tuple[float, int]:
    """The un-debiased accumulator and count of finite values after the whole series."""
    finite = raw[np.isfinite(raw)]
    count = int(finite.size)
    if not count:
        return 0.0, 0
    # acc_n = (1 - w) * sum_j w**(n-1-j) v_j, summed in reverse so the powers stay small.
    powers = weight ** np.arange(count)[::-1]
    return float((1 - weight) * np.sum(powers * finite)), count


# ------------------------------------------------------------------------ messages
@dataclass
class TrainingStarted(Message):
    run_index: int
    trainer: Any


@dataclass
class ModelSnapshot(Message):
    """Fresh weights from a training run, for the other modes. A newer one supersedes it."""

    run_index: int
    lm: Any
    final: bool = False

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ModelSnapshot) and not message.final


@dataclass
class TrainingEnded(Message):
    run_index: int
    result: Any = None  # TrainResult, or None when it never started
    error: str = ""  # a RnnTuiError's message (bad corpus, device...), shown to the user


@dataclass
class CheckpointSaved(Message):
    run_index: int
    path: str = ""
    error: str = ""


# ------------------------------------------------------------------------ widgets
class TrainingChart(PlotextPlot):
    """One plotext chart; the screen tells it what to draw through :meth:`draw`."""

    DEFAULT_CSS = """
    TrainingChart {
        width: 1fr;
        height: 1fr;
        min-height: 6;
    }
    """

    def __init__(self, kind: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.kind = kind
        self.points_drawn = 0  # for tests: how many points the last draw plotted
        self.x_drawn_to = 0.0  # ... and how far along x it reached
        self._last: tuple | None = None
        self.render_seconds = 0.0  # what the last plotext build cost on the UI thread

    def render(self):
        # Plot from the stored runs at every render: plotext's build() applies the log scale
        # to its data in place, so building the same data twice would take log(log(y)).
        start = time.perf_counter()
        try:
            if self._last is not None and self.size.width:
                self._replot(*self._last)
            return super().render()
        except Exception as exc:  # plotext has corner cases; never a traceback on screen
            self.plt.clear_data()
            return Text(f"(this chart could not be drawn: {type(exc).__name__}: {exc})", style="dim")
        finally:
            self.render_seconds = time.perf_counter() - start

    def draw(self, runs: list[RunRecord], view: "ChartView") -> None:
        """Show these runs this way (plotted at the next render)."""
        self._last = (runs, view)
        self.refresh()

    def _replot(self, runs: list[RunRecord], view: "ChartView") -> None:
        plt = self.plt
        plt.clear_data()
        kind = self.kind
        unit = view.unit
        title = UNIT_TITLES[unit] if kind == "loss" else CHART_TITLES[kind]
        if view.smoothing:
            title += f" · smooth {view.smoothing:g}"
        plt.xlabel(XAXIS_TITLES[view.xaxis])
        plt.yscale("log" if view.log_y else "linear")
        plt.xscale("log" if view.log_x else "linear")
        n_points = plot_width_points(self.size.width)
        drawn = 0
        bounds: list[float] = []  # [min x, max x] over everything drawn
        self._y_bounds = (math.inf, -math.inf)
        grad_max = 0.0
        for run in runs:
            if not len(run.cols):
                continue
            x = run.cols[XAXIS_COLUMN[view.xaxis]]
            if view.log_x:
                x = log_safe(x)
            col = {"loss": "loss", "grad": "grad", "speed": "tps"}[kind]
            raw = run.cols[col]
            smooth = run.smoothed(col, view.smoothing)
            if kind == "loss":
                raw, smooth = convert_loss(raw, unit), convert_loss(smooth, unit)
            faint = _mix(run.color, CANVAS_RGB, 0.62)
            if view.smoothing > 0:  # the raw curve, faint, behind the smoothed one
                drawn += self._line(x, raw, faint, max(16, n_points // 2), view, bounds)
            drawn += self._line(x, smooth, run.color, n_points, view, bounds)
            if kind == "loss":
                val = run.cols["val"]
                ok = np.isfinite(val)
                if ok.any():
                    light = _mix(run.color, (255, 255, 255), 0.5)
                    vx, vy = x[ok], convert_loss(val[ok], unit)
                    drawn += self._line(vx, vy, light, max(16, n_points // 2), view, bounds)
                    if vx.size <= 60:  # mark the measured points themselves
                        drawn += self._line(vx, vy, light, n_points, view, bounds, marker="•", scatter=True)
            if kind == "grad" and run.config.clip:
                grad_max = max(grad_max, float(np.nanmax(raw)) if np.isfinite(raw).any() else 0.0)
        if kind == "grad":
            clips = sorted({r.config.clip for r in runs if len(r.cols) and r.config.clip})
            if clips:
                title += " · clip " + ",".join(f"{c:g}" for c in clips)
            for clip in clips:  # only when the curve gets near it, or it squashes the curve
                if grad_max >= 0.5 * clip and not (view.log_y and clip <= 0):
                    plt.horizontal_line(clip, color=(150, 150, 150))
        plt.title(_fit_title(title, self.size.width - 2))
        if bounds and not view.log_x:
            lo, hi = bounds[0], bounds[1]
            ticks = nice_ticks(lo, hi, max(3, min(6, self.size.width // 10)),
                               min_step=1.0 if view.xaxis == "step" else 0.0)
            if view.xaxis == "wall":
                labels = [time.strftime("%H:%M:%S", time.localtime(t)) for t in ticks]
                if len(labels) > 3:
                    ticks, labels = ticks[::2], labels[::2]
            else:
                labels = [fmt_tick(t) for t in ticks]
            plt.xticks(ticks, labels)
        else:
            _reset_xticks(plt)
        if kind == "speed" and drawn and not view.log_y:  # 50k, not 50000.0
            y_lo, y_hi = self._y_bounds
            if y_hi - y_lo < 1e-9 * max(1.0, abs(y_hi)):
                y_lo, y_hi = y_lo * 0.9, y_hi * 1.1 + 1
            ticks = nice_ticks(y_lo, y_hi, max(2, min(5, self.size.height // 3)))
            plt.yticks(ticks, [fmt_tick(t) for t in ticks])
        else:
            _reset_yticks(plt)
        if not drawn:  # plotext cannot build an empty chart on log axes
            plt.yscale("linear")
            plt.xscale("linear")
        self.points_drawn = drawn
        self.x_drawn_to = float(bounds[1]) if bounds else 0.0

    def _line(self, x, y, colour, n_points: int, view: "ChartView", bounds: list[float],
              marker: str = "braille", scatter: bool = False) -> int:
        if view.log_y:
            y = log_safe(y)
        xs, ys = downsample(x, y, n_points)
        if not xs.size:
            return 0
        if scatter:
            self.plt.scatter(xs.tolist(), ys.tolist(), color=colour, marker=marker)
        else:
            self.plt.plot(xs.tolist(), ys.tolist(), color=colour, marker=marker)
        y_lo, y_hi = float(np.min(ys)), float(np.max(ys))
        self._y_bounds = (min(self._y_bounds[0], y_lo), max(self._y_bounds[1], y_hi))
        lo, hi = float(xs[0]), float(xs[-1])
        if bounds:
            bounds[0], bounds[1] = min(bounds[0], lo), max(bounds[1], hi)
        else:
            bounds.extend([lo, hi])
        return int(xs.size)


XAXIS_COLUMN = {"step": "step", "time": "time", "wall": "wall"}


def _reset_yticks(plt) -> None:
    monitor = plt.monitor
    monitor.yticks = [None, None]
    monitor.ylabels = [None, None]
    monitor.yfrequency = [7, 7]


def _reset_xticks(plt) -> None:
    """Back to automatic x ticks (plotext's xticks(None) fails once ticks were set)."""
    monitor = plt.monitor
    monitor.xticks = [None, None]
    monitor.xlabels = [None, None]
    monitor.xfrequency = [5, 5]


@dataclass
class ChartView:
    """What the charts show; changed by keys."""

    chart: str = "loss"
    smoothing: float = DEFAULT_SMOOTHING
    unit: str = "nats"
    xaxis: str = "step"
    log_y: bool = False
    log_x: bool = False

    def describe(self) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        items = [
            ("c", "chart", self.chart),
            (",.", "smooth", f"{self.smoothing:g}"),
            ("u", "units", self.unit),
            ("w", "x", self.xaxis),
            ("y", "log-y", "on" if self.log_y else "off"),
            ("x", "log-x", "on" if self.log_x else "off"),
        ]
        for i, (key, name, value) in enumerate(items):
            if i:
                t.append(" │ ", style="dim")
            t.append(f"{name} ", style="dim")
            t.append(value, style="bold")
            t.append(f" {key}", style="dim italic")
        return t


# ------------------------------------------------------------------------ the screen
class TrainingScreen(Screen):
    """Train a model, watch the loss, gradient norm and speed, compare runs."""

    MODE, KEY, LABEL, SHORT = "training", "2", "Training", "Train"
    TOOLTIP = "Train the model and watch loss, gradients and weights live"
    PANEL_HELP = {
        "curves": "Loss (raw faint, smoothed bright, validation dotted), gradient norm before clipping,\n"
                  "tokens/s; one colour per run. , . smoothing · u nats/bits/ppl · y x log axes · w step/time/clock",
        "form": "The next run's settings (tab in; enter or space starts; f hides it). Errors show under it.\n"
                "While it trains the other modes follow the newest weights; ctrl+s saves runs/<time>-<cell>/.",
        "status": "Step, epoch, loss in nats and bits per token, validation loss, tokens/s and ETA.\n"
                  "A red banner says when a run diverged (the last good weights are kept).",
        "runs": "rnn-tui watch RUN_DIR...: runs another process trains, followed as metrics.jsonl grows\n"
                "(r shows the list). ↑↓ select · p pin (on top; its checkpoints feed the other modes) · h hide · / filter",
    }
    snapshot_every_s = SNAPSHOT_EVERY_S  # how often the other modes get fresh weights
    AUTO_FOCUS = ""  # keys go to the screen's bindings until the user tabs into the form

    BINDINGS = [
        Binding("space", "toggle_run", "Start/pause", id="training.toggle",
                tooltip="Start a run with the form's settings; pause or resume the current run"),
        Binding("s", "stop", "Stop", id="training.stop", tooltip="Stop the current run (it stays on the chart)"),
        Binding("ctrl+s", "save", "Save", id="training.save",
                tooltip="Save the newest run's weights to runs/<time>-<cell>/"),
        Binding("c", "cycle_chart", "Chart", id="training.chart",
                tooltip="Show loss, gradient norm, tokens/s, or all three"),
        Binding("u", "cycle_units", "Units", id="training.units",
                tooltip="Loss in nats, bits per token or perplexity"),
        Binding("f", "toggle_form", "Form", id="training.form", tooltip="Show or hide the settings form"),
        Binding("comma,minus", "smoothing(-1)", "Smooth-", show=False, id="training.smooth_less",
                tooltip="Less smoothing of the curves"),
        Binding("full_stop,plus,equals_sign", "smoothing(1)", "Smooth+", show=False, id="training.smooth_more",
                tooltip="More smoothing of the curves (up to 0.999)"),
        Binding("y", "toggle_log_y", "Log y", show=False, id="training.log_y", tooltip="Logarithmic y axis"),
        Binding("x", "toggle_log_x", "Log x", show=False, id="training.log_x", tooltip="Logarithmic x axis"),
        Binding("w", "cycle_xaxis", "X axis", show=False, id="training.xaxis",
                tooltip="x axis by step, training time or wall-clock time"),
        Binding("delete", "clear_runs", "Clear runs", show=False, id="training.clear",
                tooltip="Remove finished runs from the chart"),
        Binding("escape", "leave_form", "Leave field", key_display="esc", id="training.leave_form",
                tooltip="Move the keyboard focus out of the form (in the runs filter: clear it)"),
        Binding("r", "toggle_runlist", "Runs", show=False, id="training.runlist",
                tooltip="Show or hide the runs list (watched runs and this session's)"),
        Binding("up", "select_run(-1)", "Prev run", show=False, id="training.run_up",
                tooltip="Runs list: select the run above (the status line describes it)"),
        Binding("down", "select_run(1)", "Next run", show=False, id="training.run_down",
                tooltip="Runs list: select the run below"),
        Binding("p", "pin_run", "Pin", id="training.pin",
                tooltip="Pin the selected run: always shown, drawn on top, first in the legend; "
                        "the other modes show a pinned watched run's newest checkpoint"),
        Binding("h", "hide_run", "Hide", id="training.hide", tooltip="Hide or show the selected run's curves"),
        Binding("slash", "filter_runs", "Filter", id="training.filter", key_display="/",
                tooltip="Show only runs whose name contains some text (enter keeps it, escape clears it)"),
    ]

    DEFAULT_CSS = """
    TrainingScreen #tr-banner {
        display: none;
        height: auto;
        background: $error;
        color: $text;
        text-style: bold;
        padding: 0 1;
    }
    TrainingScreen #tr-banner.-shown { display: block; }
    TrainingScreen #tr-body { height: 1fr; }
    TrainingScreen #tr-form {
        width: 30;
        height: 1fr;
        padding: 0 1 0 0;
        border-right: vkey $panel-lighten-2;
        scrollbar-size-vertical: 1;
    }
    TrainingScreen #tr-form.-hidden { display: none; }
    TrainingScreen .tr-row { height: 1; }
    TrainingScreen .tr-row Label { width: 8; color: $text-muted; }
    TrainingScreen .tr-row Input { width: 1fr; height: 1; }
    TrainingScreen .tr-row Select { width: 1fr; }
    /* An open list gets a frame: bare, its options sat on the rows below like field values. */
    TrainingScreen .tr-row Select > SelectOverlay { border: round $accent !important; background: $panel; }
    TrainingScreen #tr-form-title { color: $text-muted; text-style: bold; }
    TrainingScreen #tr-form-error { color: $error; height: auto; }
    TrainingScreen #tr-runs { height: auto; color: $text-muted; }
    TrainingScreen #tr-charts { width: 1fr; height: 1fr; }
    TrainingScreen #tr-lower { height: 1fr; }
    TrainingScreen #tr-legend { height: auto; max-height: 3; }
    TrainingScreen #tr-status { height: auto; max-height: 2; padding: 0 1; background: $boost; }
    TrainingScreen #tr-view { height: 1; padding: 0 1; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    TrainingScreen .tr-hidden { display: none; }
    TrainingScreen #tr-runlist {
        width: 24;
        height: 1fr;
        border-right: vkey $panel-lighten-2;
    }
    TrainingScreen #tr-runlist.-hidden { display: none; }
    TrainingScreen #tr-runlist-title { height: 1; color: $text-muted; text-style: bold; }
    TrainingScreen #tr-filter { height: 1; width: 1fr; }
    TrainingScreen #tr-runlist-body { height: 1fr; }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.runs: list[RunRecord] = []
        self.view = ChartView()
        self._dirty = True  # the chart needs a redraw
        self._last_draw = 0.0
        self.selected_index: int | None = None  # the run the runs list's cursor is on
        self.run_filter = ""  # runs list: show runs whose name contains this (pinned always)
        self._status_plain = ""

    # ---------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        from . import ModeBar

        defaults = self._defaults()
        yield Header()
        yield ModeBar("training")
        yield Static("", id="tr-banner", markup=False)
        with Horizontal(id="tr-body"):
            with VerticalScroll(id="tr-form", can_focus=False):
                yield Static("next run · space starts", id="tr-form-title")
                for name, (label, kind) in FORM_FIELDS.items():
                    with Horizontal(classes="tr-row"):
                        yield Label(label)
                        value = defaults[name]
                        if isinstance(kind, tuple):
                            yield Select([(c, c) for c in kind], value=value if value in kind else kind[0],
                                         allow_blank=False, compact=True, id=f"tr-{name}")
                        else:
                            yield Input(f"{value:g}" if isinstance(value, float) else str(value),
                                        compact=True, id=f"tr-{name}", select_on_focus=True)
                yield Static("", id="tr-form-error", markup=False)
                yield Static("", id="tr-runs")
            with Vertical(id="tr-runlist", classes="-hidden"):
                yield Static("runs", id="tr-runlist-title")
                yield Input(placeholder="filter: part of a name", compact=True, id="tr-filter",
                            classes="tr-hidden")
                yield Static("", id="tr-runlist-body")
            with Vertical(id="tr-charts"):
                yield TrainingChart("loss", id="tr-chart-loss")
                with Horizontal(id="tr-lower"):
                    yield TrainingChart("grad", id="tr-chart-grad")
                    yield TrainingChart("speed", id="tr-chart-speed")
                yield Static("", id="tr-legend")
        yield Static("", id="tr-status")
        yield Static("", id="tr-view")
        yield Footer()

    def _defaults(self) -> dict[str, Any]:
        values = dict(FORM_DEFAULTS)
        app_defaults = dict(self.app.settings.train_defaults)
        values.update({k: v for k, v in app_defaults.items() if k in FORM_FIELDS})
        corpus = self.app.settings.corpus  # --corpus on the command line
        if isinstance(corpus, str) and corpus and "corpus" not in app_defaults:
            values["corpus"] = corpus
        return values

    def _extras(self) -> dict[str, Any]:
        extras: dict[str, Any] = {}
        app_defaults = dict(self.app.settings.train_defaults)
        extras.update({k: v for k, v in app_defaults.items() if k not in FORM_FIELDS})
        device = self.app.settings.device  # --device on the command line
        if isinstance(device, str) and device and "device" not in extras:
            extras["device"] = device
        return extras

    def on_mount(self) -> None:
        size = self.app.size
        if size.width >= 120 and size.height >= 36:
            self.view.chart = "all"
        if self.watching:  # `rnn-tui watch`: the runs list instead of the form
            self.query_one("#tr-form").add_class("-hidden")
            self.query_one("#tr-runlist").remove_class("-hidden")
            self._footer_for_watching()
        self._sync_form_to_model()
        self._apply_chart_layout()
        self._sync_watch()
        self._update_view_line()
        self._update_status()
        self._update_runs()
        self.set_interval(DRAIN_EVERY_S, self._tick, name="training-drain")

    def on_screen_resume(self) -> None:
        self._sync_form_to_model()
        self._dirty = True
        self._redraw()

    def _sync_form_to_model(self) -> None:
        """Start the form from the model on screen (cell, sizes, init, corpus), so space trains
        the kind of model the user loaded, not the built-in defaults. Only when the model
        changed since the last look, and never under a run in progress or the user's edits
        for the same model."""
        lm = getattr(self.app, "lm", None)
        version = getattr(self.app, "model_version", 0)
        if lm is None or version == getattr(self, "_form_version", None) or self.watching:
            return
        if any(r.state in ("running", "paused") for r in self.runs):
            return
        self._form_version = version
        c = lm.config
        values = {"cell": c.cell, "hidden": c.hidden, "layers": c.layers, "init": c.init,
                  "level": lm.meta.get("level") or lm.vocab.level}
        corpus = lm.meta.get("corpus")
        if isinstance(corpus, str) and corpus:
            values["corpus"] = corpus
        for name, value in values.items():
            try:
                widget = self.query_one(f"#tr-{name}")
            except Exception:  # noqa: BLE001 - a field this layout does not have
                continue
            if isinstance(widget, Select):
                if value in FORM_FIELDS[name][1]:
                    widget.value = value
            else:
                widget.value = str(value)

    def on_resize(self) -> None:
        self._dirty = True

    def _apply_chart_layout(self) -> None:
        chart = self.view.chart
        loss = self.query_one("#tr-chart-loss", TrainingChart)
        grad = self.query_one("#tr-chart-grad", TrainingChart)
        speed = self.query_one("#tr-chart-speed", TrainingChart)
        lower = self.query_one("#tr-lower")
        loss.display = chart in ("loss", "all")
        lower.display = chart != "loss"
        grad.display = chart in ("grad", "all")
        speed.display = chart in ("speed", "all")
        self._dirty = True

    # ---------------------------------------------------------------- form
    def form_values(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for name, (_label, kind) in FORM_FIELDS.items():
            widget = self.query_one(f"#tr-{name}")
            values[name] = str(widget.value)
        return values

    def set_form(self, **values: Any) -> None:
        """Fill form fields (tests and the command palette use this)."""
        for name, value in values.items():
            widget = self.query_one(f"#tr-{name}")
            if isinstance(widget, Select):
                widget.value = value
            else:
                widget.value = f"{value:g}" if isinstance(value, float) else str(value)

    def build_config(self):
        """The form as a TrainConfig; raises ConfigError (shown next to the form by callers)."""
        kwargs = parse_form(self.form_values(), self._extras())
        from ..engine.train import TrainConfig

        return TrainConfig(**kwargs)

    def _show_form_error(self, message: str) -> None:
        self.query_one("#tr-form-error", Static).update(message)
        if message and self.query_one("#tr-form").has_class("-hidden"):
            self.query_one("#tr-form").remove_class("-hidden")

    def _engine_loaded(self) -> bool:
        import sys

        return "torch" in sys.modules and bool(getattr(self.app, "engine_ready", True))

    @on(Input.Changed)
    @on(Select.Changed)
    def _form_changed(self, event) -> None:
        if getattr(event, "input", None) is not None and event.input.id == "tr-filter":
            return
        if not self._engine_loaded():
            return
        try:
            self.build_config()
        except RnnTuiError as exc:
            self._show_form_error(str(exc))
        else:
            self._show_form_error("")

    @on(Input.Submitted)
    def _form_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "tr-filter":
            self.set_focus(None)
            self._update_runlist()
            return
        if self._current_active() is None:
            self.action_toggle_run()

    def action_leave_form(self) -> None:
        focused = self.focused
        if focused is not None and focused.id == "tr-filter":
            focused.value = ""  # escape in the filter clears it
            self._set_filter("")
        self.set_focus(None)
        self._update_runlist()

    def action_toggle_form(self) -> None:
        form = self.query_one("#tr-form")
        form.toggle_class("-hidden")
        if form.has_class("-hidden") and self.focused is not None and form in self.focused.ancestors:
            self.set_focus(None)
        self._dirty = True

    # ---------------------------------------------------------------- running
    def _current_active(self) -> RunRecord | None:
        for run in reversed(self.runs):
            if run.active:
                return run
        return None

    def action_toggle_run(self) -> None:
        run = self._current_active()
        if run is None:
            self.start_run()
        elif run.state == "running":
            if run.trainer is not None:
                run.trainer.pause()
                run.state = "paused"
        elif run.state == "paused":
            if run.trainer is not None:
                run.trainer.resume()
                run.state = "running"
        self._update_status()
        self._update_runs()

    def action_toggle_training(self) -> None:
        """The palette's "train" command (app.action_train) lands here."""
        self.action_toggle_run()

    def start_run(self) -> RunRecord | None:
        """Validate the form and start a new run; returns it, or None with the error shown."""
        if not getattr(self.app, "engine_ready", True):
            self.notify("the engine is still loading; try again in a moment", severity="warning")
            return None
        try:
            config = self.build_config()
        except RnnTuiError as exc:
            self._show_form_error(str(exc))
            self.notify(str(exc), title="cannot start training", severity="error", markup=False)
            return None
        problem = _corpus_problem(config.corpus)
        if problem:
            self._show_form_error(problem)
            self.notify(problem, title="cannot start training", severity="error", markup=False)
            return None
        self._show_form_error("")
        index = self._next_index()
        run = RunRecord(index=index, config=config, color=RUN_COLORS[(index - 1) % len(RUN_COLORS)])
        run.stop = threading.Event()
        self.runs.append(run)
        self.selected_index = run.index  # the status line follows the new run
        self.refresh_bindings()
        self.banner("")
        self._train(run)
        if self.size.width < 110:  # give the chart the width while training
            form = self.query_one("#tr-form")
            if self.focused is not None and form in self.focused.ancestors:
                self.set_focus(None)
            form.add_class("-hidden")
        self._update_status()
        self._update_runs()
        self._dirty = True
        return run

    def action_stop(self) -> None:
        run = self._current_active()
        if run is None:
            self.notify("nothing is training", severity="information")
            return
        run.state = "stopping"
        if run.stop is not None:
            run.stop.set()
        if run.trainer is not None:
            run.trainer.request_stop()
        self._update_status()
        self._update_runs()

    @work(thread=True, exclusive=True, exit_on_error=False, group="training")
    def _train(self, run: RunRecord) -> None:
        """Thread worker: build the trainer and run it; the stop event also reads cancellation."""
        worker = get_current_worker()
        stop = _CancelAwareEvent(run.stop, worker)
        try:
            from ..engine.train import Trainer

            last_snap = [time.monotonic()]
            holder: dict[str, Any] = {}

            def on_metrics(m) -> None:  # training thread, between steps (no lock held)
                run.push(m, time.time())
                now = time.monotonic()
                if now - last_snap[0] >= self.snapshot_every_s and "trainer" in holder:
                    last_snap[0] = now
                    self.post_message(ModelSnapshot(run.index, holder["trainer"].snapshot()))

            trainer = Trainer(run.config, on_metrics=on_metrics)
            holder["trainer"] = trainer
            if stop.is_set():
                self.post_message(TrainingEnded(run.index, None, ""))
                return
            self.post_message(TrainingStarted(run.index, trainer))
            result = trainer.run(stop)
            if trainer.step > 0 and not worker.is_cancelled:
                self.post_message(ModelSnapshot(run.index, trainer.snapshot(), final=True))
            self.post_message(TrainingEnded(run.index, result, ""))
        except RnnTuiError as exc:
            self.post_message(TrainingEnded(run.index, None, str(exc)))
        except Exception as exc:  # a bug or an unexpected torch error: report, never a traceback
            from ..engine.device import is_oom

            if is_oom(exc):
                text = "the device ran out of memory: try a smaller model, batch or sequence length"
            else:
                text = f"{type(exc).__name__}: {exc}"
            self.post_message(TrainingEnded(run.index, None, text))
        finally:
            run.finished.set()

    def _run(self, index: int) -> RunRecord | None:
        for run in self.runs:
            if run.index == index:
                return run
        return None

    def on_training_started(self, message: TrainingStarted) -> None:
        run = self._run(message.run_index)
        if run is None:
            return
        run.trainer = message.trainer
        if run.state == "starting":
            run.state = "running"
        elif run.state == "stopping":
            message.trainer.request_stop()
        try:
            self.app.trainer = message.trainer
        except Exception:
            pass
        self._update_status()
        self._update_runs()

    def on_model_snapshot(self, message: ModelSnapshot) -> None:
        set_model = getattr(self.app, "set_model", None)
        if set_model is None or message.lm is None:
            return
        try:
            try:  # the periodic hand-over is silent; the app announces the final weights
                set_model(message.lm, announce=message.final)
            except TypeError:
                set_model(message.lm)
        except RnnTuiError as exc:
            self.notify(str(exc), severity="error", markup=False)

    def on_training_ended(self, message: TrainingEnded) -> None:
        run = self._run(message.run_index)
        if run is None:
            return
        run.drain()
        result = message.result
        if message.error:
            run.state = "failed"
            run.message = message.error
            self._show_form_error(message.error)
            self.notify(message.error, title="training failed", severity="error", markup=False, timeout=10)
            if not len(run.cols):  # nothing to show: do not keep an empty run around
                self.runs.remove(run)
        elif result is None:
            run.state = "stopped"
        elif result.diverged:
            run.state = "diverged"
            run.message = result.stopped_reason or "training diverged"
            self.banner(f"⚠ DIVERGED: {run.message}")
            self.notify(run.message, title=f"run #{run.index} diverged", severity="error", markup=False)
        elif result.out_of_memory:
            run.state = "failed"
            run.message = result.stopped_reason or "out of memory"
            self.banner(f"⚠ {run.message}")
            self.notify(run.message, severity="error", markup=False)
        elif result.stopped_reason:
            run.state = "stopped"
            run.message = result.stopped_reason
        else:
            run.state = "done"
        self._dirty = True
        self._update_status()
        self._update_runs()
        self._redraw()

    # ---------------------------------------------------------------- saving
    def action_save(self) -> None:
        run = next((r for r in reversed(self.runs) if r.trainer is not None), None)
        if run is None:
            self.notify("nothing to save yet: start a run with space", severity="warning")
            return
        runs_dir = self.app.settings.runs_dir
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        target = runs_dir / f"{stamp}-{run.config.cell}"
        n = 2
        while target.exists():
            target = runs_dir / f"{stamp}-{run.config.cell}-{n}"
            n += 1
        self._save(run, target)

    @work(thread=True, exclusive=False, exit_on_error=False, group="training-save")
    def _save(self, run: RunRecord, target: Path) -> None:
        try:
            path = run.trainer.save(target)
        except RnnTuiError as exc:
            self.post_message(CheckpointSaved(run.index, "", str(exc)))
        except OSError as exc:
            self.post_message(CheckpointSaved(run.index, "", f"cannot write {target}: {exc.strerror or exc}"))
        else:
            self.post_message(CheckpointSaved(run.index, str(path), ""))

    def on_checkpoint_saved(self, message: CheckpointSaved) -> None:
        if message.error:
            self.notify(message.error, title="save failed", severity="error", markup=False)
            return
        run = self._run(message.run_index)
        if run is not None:
            run.saved_to = message.path
        self.notify(f"saved run #{message.run_index} to {message.path}", title="checkpoint saved", markup=False)
        self._update_runs()

    # ---------------------------------------------------------------- view keys
    def action_smoothing(self, direction: int) -> None:
        levels = SMOOTHING_LEVELS
        current = self.view.smoothing
        if direction > 0:
            bigger = [v for v in levels if v > current + 1e-12]
            self.view.smoothing = bigger[0] if bigger else levels[-1]
        else:
            smaller = [v for v in levels if v < current - 1e-12]
            self.view.smoothing = smaller[-1] if smaller else levels[0]
        self._view_changed()

    def action_toggle_log_y(self) -> None:
        self.view.log_y = not self.view.log_y
        self._view_changed()

    def action_toggle_log_x(self) -> None:
        self.view.log_x = not self.view.log_x
        self._view_changed()

    def action_cycle_xaxis(self) -> None:
        self.view.xaxis = XAXES[(XAXES.index(self.view.xaxis) + 1) % len(XAXES)]
        self._view_changed()

    def action_cycle_units(self) -> None:
        self.view.unit = UNITS[(UNITS.index(self.view.unit) + 1) % len(UNITS)]
        self._view_changed()
        self._update_status()

    def action_cycle_chart(self) -> None:
        self.view.chart = CHARTS[(CHARTS.index(self.view.chart) + 1) % len(CHARTS)]
        self._apply_chart_layout()
        self._view_changed()

    def action_clear_runs(self) -> None:
        before = len(self.runs)
        self.runs = [r for r in self.runs if r.active or r.watch is not None]
        if len(self.runs) == before:
            self.notify("no finished runs to clear")
        self._dirty = True
        self._update_runs()
        self._redraw()

    def refresh_runs(self) -> None:
        """Redraw everything that shows the runs (after runs were added or removed)."""
        for run in self.runs:
            run.drain()
        self._dirty = True
        self._update_status()
        self._update_runs()
        self._redraw()

    def _view_changed(self) -> None:
        self._update_view_line()
        self._dirty = True
        self._redraw()

    # ---------------------------------------------------------------- drawing
    def _tick(self) -> None:
        listed = self._sync_watch()
        got = 0
        for run in self.runs:
            got += run.drain()
        if listed:
            self._update_runs()
        elif got:
            self._update_runlist()  # the steps in the list
        if got or listed:
            self._dirty = True
            self._update_status()
        elif self._status_run() is not None and self._status_run().watch is not None:
            self._update_status()  # "updated 3 s ago" moves on
        if self._dirty:
            # Plotext builds on the UI thread; with many long runs on a big chart keep that
            # under a quarter of the time so keys stay responsive.
            cost = sum(c.render_seconds for c in self.query(TrainingChart) if c.display)
            if time.monotonic() - self._last_draw >= max(DRAIN_EVERY_S * 0.9, 4 * cost):
                self._redraw()

    def _redraw(self) -> None:
        if not self.is_current and self.app.is_running:
            return  # drawn on resume
        if not self._dirty:
            return
        self._dirty = False
        self._last_draw = time.monotonic()
        for chart in self.query(TrainingChart):
            if chart.display and chart.parent is not None and (chart.parent.display or chart.parent is self):
                chart.draw(self._visible_runs(), self.view)
        self._update_legend()

    def _update_view_line(self) -> None:
        self.query_one("#tr-view", Static).update(self.view.describe())

    def _update_legend(self) -> None:
        text = Text(no_wrap=False, overflow="fold")
        visible = self._visible_runs()
        visible = [r for r in visible if r.pinned] + [r for r in visible if not r.pinned]
        shown = [r for r in visible if len(r.cols) or r.active or r.watch is not None]
        if not shown:
            if self.runs:
                text.append("every run is hidden or filtered out · h shows one again, / filters",
                            style="dim")
            else:
                text.append("no runs yet · space starts one with the form's settings", style="dim")
        for i, run in enumerate(shown):
            if i:
                text.append("  ")
            text.append("━━ ", style=_hex(run.color))
            if run.pinned:
                text.append("* ", style=f"bold {_hex(run.color)}")
            text.append(run.label, style=_hex(run.color))
            text.append(f" {run.state}", style="dim")
        if any(np.isfinite(r.cols["val"]).any() for r in shown if len(r.cols)) and self.view.chart in ("loss", "all"):
            text.append("  ·· validation", style="dim")
        self.query_one("#tr-legend", Static).update(text)

    def _update_runs(self) -> None:
        lines = Text()
        for run in self.runs[-4:]:
            if lines:
                lines.append("\n")
            lines.append("■ ", style=_hex(run.color))
            lines.append(f"{run.name} {run.state}" if run.watch is not None
                         else f"#{run.index} {run.config.cell} {run.state}")
            if run.saved_to:
                lines.append(" (saved)", style="dim")
        self.query_one("#tr-runs", Static).update(lines)
        self._update_runlist()
        self._update_legend()

    def eta(self, run: RunRecord) -> float | None:
        """Seconds left, from the pace of the last ~20 s of training."""
        cols = run.cols
        n = len(cols)
        if n < 2 or run.state not in ("running", "live") or not run.config.steps:
            return None
        t, s = cols["time"], cols["step"]
        lo = int(np.searchsorted(t, t[-1] - 20.0))
        lo = min(lo, n - 2)
        dt, ds = t[-1] - t[lo], s[-1] - s[lo]
        if dt <= 0 or ds <= 0:
            return None
        return (run.config.steps - s[-1]) * dt / ds

    def _status_run(self) -> RunRecord | None:
        selected = self._selected_run()
        if selected is not None:
            return selected
        return self.runs[-1] if self.runs else None

    def status_text(self, run: RunRecord | None = None) -> Text:
        run = run or self._status_run()
        if run is not None and run.watch is not None:
            return self.watch_status_text(run)
        t = Text(no_wrap=False, overflow="fold")
        if run is None:
            roots = list(self.app.settings.watch_roots)
            if roots:  # `rnn-tui watch runs/` on a folder with no run in it yet
                t.append("watching ", style="bold")
                t.append(", ".join(roots), style="bold")
                t.append(" · no run there yet: `rnn-tui train ... --out "
                         f"{roots[0].rstrip('/')}/NAME` (or --out the folder itself) appears here", style="dim")
                return t
            t.append("idle", style="bold")
            t.append(" · space: start training with the form's settings · f: show/hide the form", style="dim")
            return t
        icon = {"running": "▶", "paused": "⏸", "starting": "…", "stopping": "■", "done": "✓",
                "stopped": "■", "diverged": "⚠", "failed": "✗"}.get(run.state, "")
        t.append(f"{icon} #{run.index} {run.state}", style=f"bold {_hex(run.color)}")
        cols = run.cols
        if not len(cols):
            t.append(" · building the model…" if run.state == "starting" else "", style="dim")
            return t
        step = int(cols["step"][-1])
        loss = float(cols["loss"][-1])
        t.append(f" · step {step}/{run.config.steps}")
        t.append(f" · epoch {cols['epoch'][-1]:.2f}")
        t.append(f" · loss {loss:.3f} nats" if math.isfinite(loss) else " · loss nan")
        t.append(f" · {loss / LN2:.3f} bits/tok" if math.isfinite(loss) else "")
        if self.view.unit == "ppl" and math.isfinite(loss):
            t.append(f" · ppl {math.exp(min(loss, 700)):.2f}")
        val = cols["val"][np.isfinite(cols["val"])]
        if val.size:
            t.append(f" · val {fmt_loss(float(val[-1]), self.view.unit)}")
        tps = cols["tps"][-20:]
        tps = tps[np.isfinite(tps)]
        if tps.size:  # one step's rate is noisy: the median of the last 20
            t.append(f" · {fmt_rate(float(np.median(tps)))} tok/s")
        if run.state == "running":
            t.append(f" · ETA {fmt_duration(self.eta(run))}")
        return t

    def _update_status(self) -> None:
        text = self.status_text()
        if text.plain != self._status_plain or not self._status_plain:
            self._status_plain = text.plain
            self.query_one("#tr-status", Static).update(text)

    def banner(self, text: str) -> None:
        banner = self.query_one("#tr-banner", Static)
        banner.update(text)
        banner.set_class(bool(text), "-shown")

    # ---------------------------------------------------------------- watched runs
    @property
    def watching(self) -> bool:
        """The app follows run directories another process trains (`rnn-tui watch`)."""
        return bool(self.app.settings.watch)

    def _footer_for_watching(self) -> None:
        """Make room in the footer for the runs keys: training here is still a key away
        (space, f; in the help), just not listed. Edits this screen's own copy of its bindings."""
        import dataclasses

        table = self._bindings.key_to_bindings
        for key, bindings in list(table.items()):
            table[key] = [dataclasses.replace(b, show=False) if b.action in ("toggle_run", "toggle_form") else b
                          for b in bindings]

    def _next_index(self) -> int:
        return max((r.index for r in self.runs), default=0) + 1

    def _sync_watch(self) -> bool:
        """Add a run for each watched directory and refresh their states; True if the list changed."""
        watcher = getattr(self.app, "watcher", None)
        changed = False
        if watcher is not None:
            known = {id(r.watch) for r in self.runs if r.watch is not None}
            for watch in watcher.runs:
                if id(watch) in known:
                    continue
                index = self._next_index()
                run = RunRecord(index=index, config=WatchedConfig(), state="waiting",
                                color=RUN_COLORS[(index - 1) % len(RUN_COLORS)], watch=watch, name=watch.name)
                self.runs.append(run)
                if self.selected_index is None and watch is watcher.model_run:
                    self.selected_index = run.index
                changed = True
        now = _watch_clock()
        for run in self.runs:
            if run.watch is not None:
                state = run.watch.state(now)
                if state != run.state:
                    run.state = state
                    changed = True
        return changed

    def _selected_run(self) -> RunRecord | None:
        if self.selected_index is None:
            return None
        return next((r for r in self.runs if r.index == self.selected_index), None)

    def _listed_runs(self) -> list[RunRecord]:
        """The runs list: runs whose name has the filter text, and pinned runs."""
        needle = self.run_filter.lower()
        return [r for r in self.runs if r.pinned or not needle or needle in r.label.lower()]

    def _visible_runs(self) -> list[RunRecord]:
        """What the charts draw, in drawing order: pinned runs last, so on top."""
        listed = [r for r in self._listed_runs() if not r.hidden]
        return [r for r in listed if not r.pinned] + [r for r in listed if r.pinned]

    def _runlist_shown(self) -> bool:
        try:
            return not self.query_one("#tr-runlist").has_class("-hidden")
        except Exception:
            return False

    def check_action(self, action: str, parameters) -> bool | None:
        if action in ("select_run", "pin_run", "hide_run", "filter_runs"):
            return self._runlist_shown()
        if action in ("stop", "save") and self.watching:
            return any(r.watch is None for r in self.runs)  # only this session's runs train here
        if action == "leave_form":
            return self.focused is not None  # in the footer only while a field has the keys
        return True

    def action_toggle_runlist(self) -> None:
        panel = self.query_one("#tr-runlist")
        panel.toggle_class("-hidden")
        if panel.has_class("-hidden") and self.focused is not None and panel in self.focused.ancestors:
            self.set_focus(None)
        self._update_runlist()
        self.refresh_bindings()
        self._dirty = True

    def action_select_run(self, delta: int) -> None:
        listed = self._listed_runs()
        if not listed:
            return
        current = self._selected_run()
        if current in listed:
            pos = max(0, min(len(listed) - 1, listed.index(current) + delta))
        else:
            pos = 0 if delta > 0 else len(listed) - 1
        self.selected_index = listed[pos].index
        self._selection_changed()

    def action_pin_run(self) -> None:
        run = self._selected_run()
        if run is None:
            self.notify("select a run first (up/down)", severity="warning")
            return
        run.pinned = not run.pinned
        if run.pinned:
            run.hidden = False
            for other in self.runs:  # one pinned watched run feeds the other modes
                if other is not run and other.pinned and other.watch is not None and run.watch is not None:
                    other.pinned = False
        self._selection_changed(redraw=True)

    def action_hide_run(self) -> None:
        run = self._selected_run()
        if run is None:
            self.notify("select a run first (up/down)", severity="warning")
            return
        run.hidden = not run.hidden
        self._selection_changed(redraw=True)

    def action_filter_runs(self) -> None:
        box = self.query_one("#tr-filter", Input)
        box.remove_class("tr-hidden")
        box.focus()

    @on(Input.Changed, "#tr-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._set_filter(event.value)

    def _set_filter(self, text: str) -> None:
        text = text.strip()
        if text == self.run_filter:
            return
        self.run_filter = text
        listed = self._listed_runs()
        if listed and self._selected_run() not in listed:
            self.selected_index = listed[0].index
        self._selection_changed(redraw=True)

    def _selection_changed(self, redraw: bool = False) -> None:
        self._update_model_source()
        self._update_runlist()
        self._update_status()
        if redraw:
            self._dirty = True
            self._redraw()
            self._update_legend()

    def _model_source(self) -> RunRecord | None:
        """The watched run whose checkpoints the other modes show: pinned, else selected."""
        pinned = next((r for r in self.runs if r.pinned and r.watch is not None), None)
        if pinned is not None:
            return pinned
        selected = self._selected_run()
        return selected if selected is not None and selected.watch is not None else None

    def _update_model_source(self) -> None:
        watcher = getattr(self.app, "watcher", None)
        source = self._model_source()
        if watcher is not None and source is not None:
            watcher.select_model_run(source.watch)

    def _update_runlist(self) -> None:
        try:
            body = self.query_one("#tr-runlist-body", Static)
            title = self.query_one("#tr-runlist-title", Static)
            box = self.query_one("#tr-filter", Input)
        except Exception:
            return
        if not self._runlist_shown():
            return
        editing = self.focused is box
        box.set_class(not editing, "tr-hidden")
        head = Text("runs", style="bold")
        if self.run_filter and not editing:
            head.append(f" · /{self.run_filter}", style="italic")
        else:
            head.append(" ↑↓ p h /", style="dim")
        title.update(head)
        width = max(12, (body.size.width or 23))
        listed = self._listed_runs()
        selected = self._selected_run()
        out = Text(no_wrap=True, overflow="ellipsis")
        if not listed:
            out.append("no runs" if not self.runs else "no run matches", style="dim")
        for i, run in enumerate(listed):
            if i:
                out.append("\n")
            line = Text(no_wrap=True)
            line.append("›" if run is selected else " ", style="bold")
            line.append("□" if run.hidden else "■", style=_hex(run.color))
            line.append("*" if run.pinned else " ", style="bold")
            tail = _SHORT_STATE.get(run.state, run.state)
            if len(run.cols):
                tail = f"{fmt_steps(int(run.cols['step'][-1]))} {tail}"
            room = max(3, width - 4 - len(tail))
            name = run.label if len(run.label) <= room else run.label[: room - 1] + "…"
            line.append(f"{name:<{room}} ", style="dim" if run.hidden else "")
            line.append(tail, style="dim" if run.state in ("waiting", "new", "done", "stopped") or run.hidden
                        else ("bold yellow" if run.state == "stale" else ""))
            if run is selected:
                line.stylize("reverse")
            out.append_text(line)
        body.update(out)

    def watch_status_text(self, run: RunRecord) -> Text:
        """The status line for a watched run: step, loss, age of the last line, stale, checkpoint."""
        watch = run.watch
        t = Text(no_wrap=False, overflow="fold")
        icon = {"live": "◉", "stale": "⚠", "done": "✓", "waiting": "…", "new": "…"}.get(run.state, "")
        t.append(f"{icon} {run.label} {run.state}", style=f"bold {_hex(run.color)}")
        if run.state == "waiting":
            t.append(f" · waiting for {watch.path} to appear (start it: rnn-tui train CORPUS --out "
                     f"{watch.path})", style="dim")
            return t
        cols = run.cols
        if not len(cols):
            t.append(f" · no metrics yet in {watch.path / METRICS_NAME}", style="dim")
            return t
        step = int(cols["step"][-1])
        steps = run.config.steps
        t.append(f" · step {step}/{steps}" if steps else f" · step {step}")
        loss = float(cols["loss"][-1])
        if math.isfinite(loss):
            t.append(f" · loss {fmt_loss(loss, self.view.unit)}")
            if self.view.unit == "nats":
                t.append(f" · {loss / LN2:.3f} bits/tok")
        else:
            t.append(" · loss nan")
        val = cols["val"][np.isfinite(cols["val"])]
        if val.size:
            t.append(f" · val {fmt_loss(float(val[-1]), self.view.unit)}")
        tps = cols["tps"][-20:]
        tps = tps[np.isfinite(tps)]
        if tps.size:
            t.append(f" · {fmt_rate(float(np.median(tps)))} tok/s")
        age = watch.age(_watch_clock())
        if run.state == "stale":
            t.append(f" · stale: no new line for {_fmt_age(age)}", style="bold yellow")
        elif age is not None:
            t.append(f" · updated {_fmt_age(age)}{'' if age < 1.5 else ' ago'}", style="dim")
        if run.state == "live":
            eta = self.eta(run)
            if eta is not None:
                t.append(f" · ETA {fmt_duration(eta)}")
        watcher = getattr(self.app, "watcher", None)
        shown = getattr(watcher, "shown", None)
        if shown is not None and shown[0] is watch and watch.error == "":
            ckpt = watch.ckpt_step
            t.append(f" · model: ckpt {ckpt}" if ckpt is not None else " · model: its checkpoint", style="dim")
        if watch.error:
            t.append(f" · checkpoint not loaded (kept the last one): {watch.error}", style="bold red")
        return t

    # ---------------------------------------------------------------- teardown
    def on_unmount(self) -> None:
        for run in self.runs:
            if run.stop is not None:
                run.stop.set()
            if run.trainer is not None:
                run.trainer.request_stop()

    def on_worker_state_changed(self, event) -> None:
        from . import report_worker_error

        report_worker_error(self, event)


_SHORT_STATE = {"waiting": "wait", "starting": "start", "running": "run", "paused": "pause",
                "stopping": "stop", "stopped": "stop", "diverged": "div!", "failed": "fail"}


def _watch_clock() -> float:
    from ..runs import watch

    return watch.clock()  # looked up at each call: tests freeze runs.watch.clock


def _fmt_age(seconds: float | None) -> str:
    from ..runs import fmt_age

    return fmt_age(seconds)


class _CancelAwareEvent(threading.Event):
    """A stop event that also reads as set once the worker is cancelled (app quitting)."""

    def __init__(self, base: threading.Event | None, worker) -> None:
        super().__init__()
        self._base = base
        self._worker = worker

    def is_set(self) -> bool:  # type: ignore[override]
        return (super().is_set() or (self._base is not None and self._base.is_set())
                or self._worker.is_cancelled)


def _corpus_problem(spec: str) -> str:
    """A message when the corpus is neither bundled nor a readable file; '' when it looks fine."""
    from ..engine.corpus import BUNDLED_CORPORA

    if spec.strip().lower() in BUNDLED_CORPORA:
        return ""
    path = Path(spec).expanduser()
    if not path.exists():
        return (f"corpus {spec!r} is not a bundled corpus ({', '.join(BUNDLED_CORPORA)}) "
                f"and no such file exists")
    if path.is_dir():
        return f"corpus {spec!r} is a directory, not a text file"
    return ""
