"""Tick positions and labels for charts: round linear ticks, log-decade ticks, short labels."""

from __future__ import annotations

import math

import numpy as np


def nice_ticks(lo: float, hi: float, n: int = 5, min_step: float = 0.0) -> list[float]:
    """Round tick positions (multiples of 1, 2, 2.5 or 5 x 10^k) covering [lo, hi]: the
    finest such spacing that gives at most ``n`` ticks (and no finer than ``min_step``)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    n = max(2, n)
    mag = 10 ** math.floor(math.log10((hi - lo) / (n - 1)))
    step = first = 0.0
    for m in (0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10, 20):
        step = max(m * mag, min_step)
        first = math.ceil(lo / step - 1e-9) * step
        if math.floor((hi - first) / step + 1e-9) + 1 <= n:
            break
    ticks = []
    t = first
    while t <= hi + 1e-9 * step:
        ticks.append(round(t, 10))
        t += step
    return ticks or [lo]


def fmt_tick(value: float) -> str:
    """Short tick labels: 250, 1.5k, 20k, 1.2M, 0.5."""
    a = abs(value)
    if a >= 1e6:
        return f"{value / 1e6:g}M"
    if a >= 1e4:
        return f"{value / 1e3:g}k"
    if a >= 1000:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


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


def integer_ticks(plt, lo: int, hi: int, width: int) -> None:
    """Whole-number x ticks (lags, distractor words, steps) on a plotext figure: round values,
    as many as the width holds, never "10.8 20.5"."""
    ticks = [t for t in nice_ticks(lo, hi, max(2, min(8, width // 8)), min_step=1.0) if t == int(t)]
    if ticks:
        plt.xticks(ticks, [f"{int(t)}" for t in ticks])
