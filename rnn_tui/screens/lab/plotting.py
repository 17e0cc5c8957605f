"""What the lab's chart views share: series colours, NaN-safe lines, log axes drawn as decade
ticks, a loss axis a blown-up run cannot flatten, and a 2-D plane of hidden states.

Every function draws on a plotext figure (`plt`, as a `Chart` hands it to its draw callback).
"""

from __future__ import annotations

import math

import numpy as np

from ...render.ticks import log_ticks

# Series colours, in order (runs, cells, schemes...).
PALETTE = ((86, 156, 255), (250, 100, 100), (96, 206, 120), (255, 215, 95), (200, 130, 255),
           (80, 220, 220), (255, 150, 60))
CELL_COLORS = {"rnn": (250, 100, 100), "lstm": (86, 156, 255), "gru": (96, 206, 120)}
GUIDE = (110, 110, 110)  # reference lines: chance, radius 1, a threshold


def series_colours(n: int) -> list[tuple]:
    """The palette's colours for n series, repeating when there are more."""
    return [PALETTE[i % len(PALETTE)] for i in range(n)]


def cell_colour(cell: str, i: int):
    return CELL_COLORS.get(cell, PALETTE[i % len(PALETTE)])


def hex_colour(rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _finite(x, y):
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def plot_line(plt, x, y, colour, label=None) -> bool:
    """One series, its NaN points left out (a single point is drawn as a dot)."""
    x, y = _finite(x, y)
    if len(x) == 0:
        return False
    if len(x) == 1:
        plt.scatter(x.tolist(), y.tolist(), color=colour, marker="•")
    else:
        plt.plot(x.tolist(), y.tolist(), color=colour, marker="braille")  # key: the view's key
    return True


def log_lines(plt, xs, ys, colours, labels=None, height: int = 20) -> None:
    """Lines of positive values on a log10 axis drawn as linear with decade ticks."""
    lo, hi = math.inf, -math.inf
    for i, (x, y) in enumerate(zip(xs, ys)):
        y = np.asarray(y, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            ly = np.where(y > 0, np.log10(np.where(y > 0, y, 1.0)), np.nan)
        x2, y2 = _finite(x, ly)
        if len(x2):
            lo, hi = min(lo, float(y2.min())), max(hi, float(y2.max()))
            plot_line(plt, x2, y2, colours[i], labels[i] if labels else None)
    if lo <= hi:
        if hi - lo < 0.3:
            lo, hi = lo - 0.15, hi + 0.15
        plt.yticks(*log_ticks(lo, hi, max_ticks=max(2, (height - 4) // 2)))


def cap_loss(plt, rows, title: str, names=None) -> None:
    """Keep a blown-up run from flattening the others: cap y at 3x the median loss, and say in
    the title which run peaks where (the same peak the findings quote: the run's highest loss)."""
    vals = np.concatenate([np.ravel(np.asarray(r, dtype=float)) for r in rows]) if len(rows) else np.zeros(0)
    vals = vals[np.isfinite(vals)]
    if vals.size:
        lo, hi, med = float(vals.min()), float(vals.max()), float(np.median(vals))
        if hi > 3 * med > lo:
            plt.ylim(lo, 3 * med)
            peaks = [float(np.nanmax(r)) if np.isfinite(np.asarray(r, float)).any() else -np.inf for r in rows]
            who = f"{names[int(np.argmax(peaks))]} " if names is not None else ""
            title += f" · {who}peaks at {hi:.3g} (cut off)"
    plt.title(title)


def fraction_axis(plt) -> None:
    """A y axis for accuracies and probabilities: 0 to 1, ticked at 0, 0.5 and 1."""
    plt.ylim(0, 1.05)
    plt.yticks([0.0, 0.5, 1.0], ["0", "0.5", "1"])


def by_distractor(plt, title: str, distractors, rows, colours, labels) -> None:
    """Agreement measures (one row per run) against distractor length, chance marked at 0.5."""
    plt.title(title)
    for i, row in enumerate(rows):
        plot_line(plt, distractors, row, colours[i], labels[i])
    fraction_axis(plt)
    plt.horizontal_line(0.5, color=GUIDE)
    plt.xlabel("distractor words")


def pca_plane(points: np.ndarray) -> np.ndarray:
    """Points [N, D] projected on their first two principal axes (as they are when D <= 2)."""
    p = np.asarray(points, dtype=float)
    if p.shape[1] <= 2:
        return p if p.shape[1] == 2 else np.column_stack([p[:, 0], np.zeros(len(p))])
    c = p - p.mean(0)
    _, _, vt = np.linalg.svd(c, full_matrices=False)
    return c @ vt[:2].T
