"""The parity experiment's views: the hidden-state trajectory coloured by running parity, the
training loss, and accuracy by bit position."""

from __future__ import annotations

import numpy as np

from .plotting import PALETTE, fraction_axis, pca_plane, plot_line
from .views import LabViews

EVEN, ODD, NEITHER = (86, 156, 255), (250, 100, 100), (140, 140, 140)

views = LabViews("parity")


def _parity_key(r) -> list[tuple[str, tuple]]:
    return [("even", EVEN), ("odd", ODD), ("'.'", NEITHER)]


@views.chart("trajectory", key=_parity_key, marker="● ")
def trajectory(plt, r, width: int, height: int) -> None:
    pts = pca_plane(r.hidden)
    par = np.asarray(r.parity)
    plt.title("hidden state after each bit: blue = even so far, red = odd")
    plt.plot(pts[:, 0].tolist(), pts[:, 1].tolist(), color=(70, 70, 70), marker="braille")
    for value, colour in ((0, EVEN), (1, ODD), (-1, NEITHER)):
        sel = par == value
        if sel.any():
            plt.scatter(pts[sel, 0].tolist(), pts[sel, 1].tolist(), color=colour, marker="●")
    plt.xlabel("h1")
    plt.ylabel("h2")


@views.chart("loss")
def loss(plt, r, width: int, height: int) -> None:
    plt.title("training loss (parity corpus)")
    plot_line(plt, r.steps, r.loss, PALETTE[0])
    plt.xlabel("step")


@views.chart("by position")
def by_position(plt, r, width: int, height: int) -> None:
    plt.title("accuracy by bit position in the sequence")
    acc = np.nan_to_num(np.asarray(r.accuracy_by_position, dtype=float))
    plt.bar(list(range(1, len(acc) + 1)), acc.tolist(), color=PALETTE[2])
    fraction_axis(plt)
    plt.xlabel("bit index")
