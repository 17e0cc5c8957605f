"""Series helpers for live training charts, and a thin plotext widget.

Plotext redraws every point it is given, so long runs are reduced to about two
points per character column before plotting (:func:`downsample`), keeping each
bucket's min and max so spikes in the loss never disappear from the chart.
"""

from __future__ import annotations

import math
import threading

import numpy as np
from textual_plotext import PlotextPlot


def downsample(x, y, n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``n_points`` of the finite points of ``(x, y)``, sorted by x.

    Points with NaN/inf in x or y are dropped (plotext cannot draw them). A series
    already short enough comes back unchanged (as float arrays). Otherwise the
    first and last points are kept and the rest is cut into buckets, each giving
    its min and max, so the global extremes always survive.
    """
    if n_points < 1:
        raise ValueError("n_points must be at least 1")
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {x.size} vs {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.all():
        x, y = x[keep], y[keep]
    if x.size > 1 and np.any(np.diff(x) < 0):
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
    n = x.size
    if n <= n_points:
        return x, y
    if n_points == 1:
        return x[-1:], y[-1:]  # the latest value is what a one-point chart should show
    ends = n_points >= 4
    lo, hi = (1, n - 1) if ends else (0, n)
    buckets = (n_points - 2) // 2 if ends else 1
    # Equal-width buckets via reshape: pad the tail with NaN, then arg-min/max per row.
    size = math.ceil((hi - lo) / buckets)
    rows = math.ceil((hi - lo) / size)
    block = np.full(rows * size, np.nan)
    block[: hi - lo] = y[lo:hi]
    block = block.reshape(rows, size)
    base = lo + np.arange(rows) * size
    i_min = base + np.argmin(np.where(np.isnan(block), np.inf, block), axis=1)
    i_max = base + np.argmax(np.where(np.isnan(block), -np.inf, block), axis=1)
    idx = np.concatenate([i_min, i_max] + ([[0, n - 1]] if ends else []))
    idx = np.unique(idx)  # sorted, so x stays monotonic
    return x[idx], y[idx]


def ema(values, weight: float) -> np.ndarray:
    """TensorBoard-style exponential smoothing with debiasing, in numpy.

    ``s_n = (w * acc + (1 - w) * v_n) / (1 - w**n)`` over the finite values only:
    NaN/inf inputs give NaN at their own position and do not touch later values.
    ``weight=0`` returns the input; values near 1 (0.999) smooth heavily.
    """
    v = np.asarray(values, dtype=float).ravel()
    if not 0.0 <= weight < 1.0:
        raise ValueError("ema weight must be in [0, 1)")
    if weight == 0.0 or v.size == 0:
        return v.copy()
    ok = np.isfinite(v)
    f = v[ok]
    acc = np.empty_like(f)
    # The recurrence is linear, so each block is a scaled cumulative sum. Blocks are
    # kept short enough that w**-j stays far from overflow.
    block = max(1, min(4096, int(100 / -math.log10(weight))))
    powers = weight ** -np.arange(1, block + 1)  # w**-(j+1)
    carry = 0.0
    for s in range(0, f.size, block):
        chunk = f[s : s + block]
        k = chunk.size
        up = weight ** np.arange(1, k + 1)  # w**(j+1)
        acc[s : s + k] = up * (carry + (1 - weight) * np.cumsum(chunk * powers[:k]))
        carry = acc[s + k - 1]
    debias = 1.0 - weight ** np.arange(1, f.size + 1)
    out = np.full_like(v, np.nan)
    out[ok] = acc / debias
    return out


def log_safe(values) -> np.ndarray:
    """A float copy with non-positive values set to NaN, so log axes do not crash."""
    v = np.array(values, dtype=float)
    v[~(v > 0)] = np.nan
    return v


def plot_width_points(widget_width: int) -> int:
    """How many points a chart this many cells wide can show: two per cell (braille
    markers have two dot columns per cell), at least 32 before the widget is laid out."""
    return max(32, 2 * int(widget_width))


def _fmt_tick(v: float) -> str:
    return f"{v:g}" if 1e-3 <= abs(v) < 1e4 else f"{v:.0e}"


def log_ticks(lo: float, hi: float, max_ticks: int = 6) -> tuple[list[float], list[str]]:
    """Ticks for data already in log10 units spanning [lo, hi]: positions and labels
    of the real values. 1-2-5 steps when they fit, else whole decades (thinned),
    else (a narrow range) three evenly spaced ticks."""
    d0, d1 = math.floor(lo), math.ceil(hi) + 1
    for mults in ((1, 2, 5), (1,)):
        vals = [m * 10.0**d for d in range(d0, d1) for m in mults]
        pos = [math.log10(v) for v in vals if lo - 1e-9 <= math.log10(v) <= hi + 1e-9]
        if len(pos) >= 2:
            step = math.ceil(len(pos) / max_ticks)
            if step == 1 or mults == (1,):
                pos = pos[::step]
                return pos, [_fmt_tick(10**p) for p in pos]
    pos = list(np.linspace(lo, hi, 3)) if hi > lo else [lo]
    return pos, [f"{10**p:.3g}" for p in pos]


class SeriesStore:
    """An append-only (x, y) series. Appends are amortised O(1) (the buffers double)
    and thread-safe, so a training thread can write while the UI reads ``view``."""

    def __init__(self, capacity: int = 1024) -> None:
        self._x = np.empty(max(1, capacity))
        self._y = np.empty(max(1, capacity))
        self._n = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._n

    def append(self, x: float, y: float) -> None:
        with self._lock:
            if self._n == self._x.size:
                self._x = np.concatenate([self._x, np.empty(self._x.size)])
                self._y = np.concatenate([self._y, np.empty(self._y.size)])
            self._x[self._n], self._y[self._n] = x, y
            self._n += 1

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of everything so far."""
        with self._lock:
            return self._x[: self._n].copy(), self._y[: self._n].copy()

    def last(self) -> tuple[float, float] | None:
        with self._lock:
            return (float(self._x[self._n - 1]), float(self._y[self._n - 1])) if self._n else None

    def clear(self) -> None:
        with self._lock:
            self._n = 0

    def view(self, max_points: int, smooth: float = 0.0, log: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """A downsampled copy, smoothed first (on every point) when ``smooth`` > 0,
        with non-positive values dropped when ``log``."""
        x, y = self.arrays()
        if smooth:
            y = ema(y, smooth)
        if log:
            y = log_safe(y)
        return downsample(x, y, max_points)


class LivePlot(PlotextPlot):
    """A plotext chart of named :class:`SeriesStore` s; call :meth:`replot` (e.g. from a
    timer) to redraw. Smoothing and log scale apply to every series.

    The log scale is drawn as log10(y) on a linear axis with labelled ticks, because
    plotext's own ``yscale("log")`` takes the log again on every build and so crashes
    (math domain error) the second time a widget with values below 10 renders.
    """

    def __init__(self, title: str = "", *, xlabel: str = "step", ylabel: str = "",
                 log_y: bool = False, smooth: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.title, self.xlabel, self.ylabel = title, xlabel, ylabel
        self.log_y, self.smooth = log_y, smooth
        self.series: dict[str, SeriesStore] = {}
        self._log_ticks = False  # whether our log ticks are set on the figure

    def add_series(self, name: str, store: SeriesStore | None = None) -> SeriesStore:
        self.series[name] = store if store is not None else SeriesStore()
        return self.series[name]

    def replot(self) -> None:
        plt = self.plt
        if self._log_ticks and not self.log_y:
            # plotext cannot unset custom ticks; a full reset is the only way back to
            # automatic ones (the widget re-applies size and theme on render).
            plt.clf()
            self._log_ticks = False
        plt.clear_data()
        plt.title(self.title)
        plt.xlabel(self.xlabel)
        plt.ylabel(self.ylabel)
        n = plot_width_points(self.size.width)
        lo, hi = math.inf, -math.inf
        for name, store in self.series.items():
            x, y = store.view(n, smooth=self.smooth, log=self.log_y)
            if self.log_y:
                y = np.log10(y)
            if x.size:
                lo, hi = min(lo, float(y.min())), max(hi, float(y.max()))
                plt.plot(x.tolist(), y.tolist(), label=name, marker="braille")
        if self.log_y and lo <= hi:
            plt.yticks(*log_ticks(lo, hi))
            self._log_ticks = True
        self.refresh()
