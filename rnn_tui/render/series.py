"""Series made ready for a chart: downsampling, smoothing, log-safe values.

Plotext redraws every point it is given, so long runs are reduced to about two
points per character column before plotting (:func:`downsample`), keeping each
bucket's min and max so spikes in the loss never disappear from the chart.
"""

from __future__ import annotations

import math

import numpy as np


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
