"""The agreement experiment's views: accuracy and P(right verb form) by distractor length per
cell, and the training loss under the same budget."""

from __future__ import annotations

import numpy as np

from .plotting import by_distractor, cell_colour, plot_line
from .views import LabViews

views = LabViews("agreement")


def _colours(r) -> list[tuple]:
    return [cell_colour(c, i) for i, c in enumerate(r.cells)]


def _cells_key(r) -> list[tuple[str, tuple]]:
    return list(zip(r.cells, _colours(r)))


@views.chart("accuracy", key=_cells_key)
def accuracy(plt, r, width: int, height: int) -> None:
    by_distractor(plt, "accuracy at the verb by distractor length", r.distractors, r.accuracy, _colours(r),
                  list(r.cells))


@views.chart("p(right verb)", key=_cells_key)
def p_right_verb(plt, r, width: int, height: int) -> None:
    by_distractor(plt, "P(right verb form) by distractor length", r.distractors, r.p_correct, _colours(r),
                  list(r.cells))


@views.chart("loss", key=_cells_key)
def loss(plt, r, width: int, height: int) -> None:
    colours = _colours(r)
    plt.title("training loss (same budget)")
    for i, c in enumerate(r.cells):
        plot_line(plt, np.arange(1, r.loss.shape[1] + 1), r.loss[i], colours[i], c)
    plt.xlabel("step")
