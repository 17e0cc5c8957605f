"""The training charts: what they show (`ChartView`), how a chart is drawn, and its legend.

Each chart on the screen is a `widgets.Chart` whose draw function is :func:`draw_curves`
for its kind (loss, gradient norm, tokens/s, or one named metric: a RunWriter run's
`accuracy`, a TensorBoard tag, the learning rate; `ChartView.metric`, chosen with m / M
among `metric_names`, which the runs filter narrows). Series are smoothed over every point (each
run caches its EMA) and then downsampled to about two points per chart column, so a
100,000-step run redraws as fast as a 100-step one. The raw curve is drawn faint behind the
smoothed one, validation losses light (with their points marked while there are few), and
pinned runs last, so on top.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from rich.cells import cell_len
from rich.text import Text

from ...render.colors import CANVAS_RGB, hex_code, mix
from ...render.fmt import convert_loss
from ...render.series import downsample, log_safe, plot_width_points
from ...render.ticks import fmt_tick, nice_ticks
from .runs import Run

SMOOTHING_LEVELS = (0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
DEFAULT_SMOOTHING = 0.6  # TensorBoard's default
CHARTS = ("loss", "grad", "speed", "all")  # what c steps through; "metric" is m's
CHART_TITLES = {"loss": "loss", "grad": "grad norm (pre-clip)", "speed": "tokens/s"}
CHART_COLUMN = {"loss": "loss", "grad": "grad", "speed": "tps"}
UNITS = ("nats", "bits", "ppl")
UNIT_TITLES = {"nats": "loss (nats/tok)", "bits": "loss (bits/tok)", "ppl": "perplexity"}
XAXES = ("step", "time", "wall")
XAXIS_TITLES = {"step": "step", "time": "training time (s)", "wall": "wall clock"}
XAXIS_COLUMN = {"step": "step", "time": "time", "wall": "wall"}
CLIP_RGB = (150, 150, 150)
WHITE = (255, 255, 255)


@dataclass
class ChartView:
    """What the charts show; changed by keys."""

    chart: str = "loss"
    smoothing: float = DEFAULT_SMOOTHING
    unit: str = "nats"
    xaxis: str = "step"
    log_y: bool = False
    log_x: bool = False
    metric: str = ""  # the named metric the metric chart shows

    def describe(self) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        # Each key, then what it sets now: short enough for 80 columns (the footer leaves
        # these keys to this line).
        metric = [("m M", "metric ", self.metric or "none")] if self.chart == "metric" else []
        items = [
            ("c", "", self.chart),
            *metric,
            (",.", "smooth ", f"{self.smoothing:g}"),
            ("u", "", self.unit),
            ("w", "x by ", self.xaxis),
            ("y", "log-y ", "on" if self.log_y else "off"),
            ("x", "log-x ", "on" if self.log_x else "off"),
        ]
        for i, (key, name, value) in enumerate(items):
            if i:
                t.append(" · ", style="dim")
            t.append(f"{key} ", style="bold italic")
            t.append(name, style="dim")
            t.append(value, style="bold")
        return t

    def change(self, what: str, names: list[str] = ()) -> bool:
        """One key's change: "smooth+" / "smooth-" (one level, stopping at the ends), "log_y",
        "log_x" (toggle), "xaxis", "unit", "chart" (the next one, round again), "metric+" /
        "metric-" (the metric chart; again: the next / previous of `names`). False when
        there is no metric to show."""
        if what in ("metric+", "metric-"):
            if not names:
                return False
            if self.chart == "metric" and self.metric in names:
                step = 1 if what == "metric+" else -1
                self.metric = names[(names.index(self.metric) + step) % len(names)]
            else:
                self.chart = "metric"
                self.pick_metric(names)
        elif what == "chart" and self.chart not in CHARTS:
            self.chart = CHARTS[0]
        elif what in ("smooth+", "smooth-"):
            current = self.smoothing
            if what == "smooth+":
                bigger = [v for v in SMOOTHING_LEVELS if v > current + 1e-12]
                self.smoothing = bigger[0] if bigger else SMOOTHING_LEVELS[-1]
            else:
                smaller = [v for v in SMOOTHING_LEVELS if v < current - 1e-12]
                self.smoothing = smaller[-1] if smaller else SMOOTHING_LEVELS[0]
        elif what in ("log_y", "log_x"):
            setattr(self, what, not getattr(self, what))
        else:
            options = {"xaxis": XAXES, "unit": UNITS, "chart": CHARTS}[what]
            setattr(self, what, options[(options.index(getattr(self, what)) + 1) % len(options)])
        return True

    def pick_metric(self, names: list[str]) -> bool:
        """Keep the metric shown among `names` (the first of them when it is not); True when
        it changed."""
        if names and self.metric not in names:
            self.metric = names[0]
            return True
        return False


def metric_names(runs: list[Run], needle: str = "") -> list[str]:
    """The named metrics of these runs, in the order first seen; those containing `needle`
    (the runs filter) when some do."""
    names = list(dict.fromkeys(name for run in runs for name in run.named))
    needle = needle.lower()
    matching = [n for n in names if needle in n.lower()] if needle else []
    return matching or names


@dataclass(frozen=True)
class Drawn:
    """What a draw plotted (a chart's `drawn`): how many points, how far along x, its title."""

    points: int = 0
    x_to: float = 0.0
    title: str = ""


def fit_title(title: str, width: int) -> str:
    """plotext leaves out a title wider than the chart: drop trailing " · " parts until it fits."""
    parts = title.split(" · ")
    while len(parts) > 1 and cell_len(" · ".join(parts)) > width:
        parts.pop()
    text = " · ".join(parts)
    return text if cell_len(text) <= width else text[: max(0, width - 1)] + "…"


class _Plotter:
    """Plots downsampled lines and keeps the extent of everything drawn."""

    def __init__(self, plt, view: ChartView) -> None:
        self.plt = plt
        self.view = view
        self.points = 0
        self.x: list[float] = []  # [min x, max x] over everything drawn
        self.y = (math.inf, -math.inf)

    def line(self, x, y, colour, n_points: int, marker: str = "braille", scatter: bool = False) -> None:
        if self.view.log_y:
            y = log_safe(y)
        xs, ys = downsample(x, y, n_points)
        if not xs.size:
            return
        plot = self.plt.scatter if scatter else self.plt.plot
        plot(xs.tolist(), ys.tolist(), color=colour, marker=marker)
        self.y = (min(self.y[0], float(np.min(ys))), max(self.y[1], float(np.max(ys))))
        lo, hi = float(xs[0]), float(xs[-1])
        self.x = [min(self.x[0], lo), max(self.x[1], hi)] if self.x else [lo, hi]
        self.points += int(xs.size)


def _series(run: Run, kind: str, view: ChartView):
    """(x, raw, smoothed) of a run for a chart, or None when it has no such points."""
    if kind == "metric":
        series = run.named.get(view.metric)
        if series is None or not len(series):
            return None
        return (series[XAXIS_COLUMN[view.xaxis]], series["value"],
                run.named_smoothed(view.metric, view.smoothing))
    if not len(run.cols):
        return None
    col = CHART_COLUMN[kind]
    return run.cols[XAXIS_COLUMN[view.xaxis]], run.cols[col], run.smoothed(col, view.smoothing)


def draw_curves(plt, width: int, height: int, kind: str, runs: list[Run], view: ChartView) -> Drawn:
    """One chart (``kind``: loss, grad, speed, or "metric": ``view.metric``) of these runs, in
    drawing order."""
    unit = view.unit
    if kind == "metric":
        title = view.metric or "no named metrics: log one (RunWriter.log(step, accuracy=...))"
    else:
        title = UNIT_TITLES[unit] if kind == "loss" else CHART_TITLES[kind]
    base = title
    if view.smoothing:
        title += f" · smooth {view.smoothing:g}"
    plt.xlabel(XAXIS_TITLES[view.xaxis])
    plt.yscale("log" if view.log_y else "linear")
    plt.xscale("log" if view.log_x else "linear")
    n_points = plot_width_points(width)
    few = max(16, n_points // 2)
    out = _Plotter(plt, view)
    grad_max = 0.0
    had, logged = False, False  # any run with rows; any with a number in this chart's column
    for run in runs:
        series = _series(run, kind, view)
        if series is None:
            continue
        x, raw, smooth = series
        had = True
        logged = logged or bool(np.isfinite(raw).any())
        if view.log_x:
            x = log_safe(x)
        if kind == "loss":
            raw, smooth = convert_loss(raw, unit), convert_loss(smooth, unit)
        if view.smoothing > 0:  # the raw curve, faint, behind the smoothed one
            out.line(x, raw, mix(run.color, CANVAS_RGB, 0.62), few)
        out.line(x, smooth, run.color, n_points)
        if kind == "loss":
            _validation(out, run, x, unit, n_points, few)
        if kind == "grad" and run.config.clip:
            grad_max = max(grad_max, float(np.nanmax(raw)) if np.isfinite(raw).any() else 0.0)
    if kind == "grad":
        clips = sorted({r.config.clip for r in runs if len(r.cols) and r.config.clip})
        if clips:
            title += " · clip " + ",".join(f"{c:g}" for c in clips)
        for clip in clips:  # only when the curve gets near it, or it squashes the curve
            if grad_max >= 0.5 * clip and not (view.log_y and clip <= 0):
                plt.horizontal_line(clip, color=CLIP_RGB)
    if had and not logged and kind != "metric":  # a TensorBoard or RunWriter run without it
        title = f"{base} · not in these runs' logs"
    title = fit_title(title, width - 2)
    plt.title(title)
    if out.x and not view.log_x:
        _x_ticks(plt, out.x, width, view.xaxis)
    if kind == "speed" and out.points and not view.log_y:  # 50k, not 50000.0
        y_lo, y_hi = out.y
        if y_hi - y_lo < 1e-9 * max(1.0, abs(y_hi)):
            y_lo, y_hi = y_lo * 0.9, y_hi * 1.1 + 1
        ticks = nice_ticks(y_lo, y_hi, max(2, min(5, height // 3)))
        plt.yticks(ticks, [fmt_tick(t) for t in ticks])
    if kind == "metric" and out.points and not view.log_y and out.y[1] - out.y[0] >= 1e-9:
        ticks = nice_ticks(out.y[0], out.y[1], max(2, min(5, height // 3)))  # 0.0002, not 0.00017
        plt.yticks(ticks, [f"{t:.4g}" for t in ticks])
    if not out.points:  # plotext cannot build an empty chart on log axes
        plt.yscale("linear")
        plt.xscale("linear")
    return Drawn(out.points, float(out.x[1]) if out.x else 0.0, title)


def _validation(out: _Plotter, run: Run, x: np.ndarray, unit: str, n_points: int, few: int) -> None:
    val = run.cols["val"]
    ok = np.isfinite(val)
    if not ok.any():
        return
    light = mix(run.color, WHITE, 0.5)
    vx, vy = x[ok], convert_loss(val[ok], unit)
    out.line(vx, vy, light, few)
    if vx.size <= 60:  # mark the measured points themselves
        out.line(vx, vy, light, n_points, marker="•", scatter=True)


def _x_ticks(plt, bounds: list[float], width: int, xaxis: str) -> None:
    lo, hi = bounds
    ticks = nice_ticks(lo, hi, max(3, min(6, width // 10)), min_step=1.0 if xaxis == "step" else 0.0)
    if xaxis == "wall":
        labels = [time.strftime("%H:%M:%S", time.localtime(t)) for t in ticks]
        if len(labels) > 3:
            ticks, labels = ticks[::2], labels[::2]
    else:
        labels = [fmt_tick(t) for t in ticks]
    plt.xticks(ticks, labels)


def legend_text(visible: list[Run], any_runs: bool, view: ChartView) -> Text:
    """The legend under the charts: a coloured line and the label of each run drawn (pinned
    runs first, runs trained here only once they have points or still train)."""
    visible = [r for r in visible if r.pinned] + [r for r in visible if not r.pinned]
    shown = [r for r in visible if len(r.cols) or r.active or r.watch is not None]
    text = Text(no_wrap=False, overflow="fold")
    if not shown:
        if any_runs:
            text.append("every run is hidden or filtered out · h shows one again, / filters", style="dim")
        else:
            text.append("no runs yet · space starts one with the form's settings", style="dim")
    for i, run in enumerate(shown):
        if i:
            text.append("  ")
        colour = hex_code(run.color)
        text.append("━━ ", style=colour)
        if run.pinned:
            text.append("* ", style=f"bold {colour}")
        text.append(run.label, style=colour)
        text.append(f" {run.state}", style="dim")
    if view.chart in ("loss", "all") and any(np.isfinite(r.cols["val"]).any() for r in shown if len(r.cols)):
        text.append("  ·· validation", style="dim")
    return text
