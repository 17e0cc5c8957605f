"""The capacity experiment's views: recall against N/H, one line per hidden size, and the bits
recalled against the bits the state would need to hold."""

from __future__ import annotations

import numpy as np

from .plotting import GUIDE, fraction_axis, plot_line, series_colours
from .views import LabViews

views = LabViews("capacity")


def _sizes_key(r) -> list[tuple[str, tuple]]:
    return [(f"H={int(h)}", c) for h, c in zip(r.hidden, series_colours(len(r.hidden)))]


@views.chart("recall by N/H", key=_sizes_key)
def recall(plt, r, width: int, height: int) -> None:
    plt.title(f"recall of N random symbols after {r.settings.get('delay', '?')} blank steps, against N/H")
    for i, h in enumerate(r.hidden):
        plot_line(plt, np.asarray(r.tested, float) / float(h), r.accuracy[i], series_colours(len(r.hidden))[i])
    fraction_axis(plt)
    plt.horizontal_line(r.chance, color=GUIDE)
    plt.xlabel("N / H (symbols per hidden unit)")


@views.chart("bits", key=_sizes_key)
def bits(plt, r, width: int, height: int) -> None:
    plt.title("bits recalled against the bits the state would need (N log2 K); the diagonal: all of them")
    need = np.asarray(r.bits_needed, float)
    for i in range(len(r.hidden)):
        plot_line(plt, need, r.bits[i], series_colours(len(r.hidden))[i])
    if need.size:
        plt.plot([0.0, float(need.max())], [0.0, float(need.max())], color=GUIDE)
    plt.xlabel("bits needed")
