"""The tbptt experiment's views: agreement accuracy by distractor length per TBPTT window, and
the training loss."""

from __future__ import annotations

import numpy as np

from .plotting import by_distractor, plot_line, series_colours
from .views import LabViews

views = LabViews("tbptt")


def _labels(r) -> list[str]:
    return [f"window {int(L)}" for L in r.seq_lens]


def _windows_key(r) -> list[tuple[str, tuple]]:
    return list(zip(_labels(r), series_colours(len(r.seq_lens))))


@views.chart("accuracy", key=_windows_key)
def accuracy(plt, r, width: int, height: int) -> None:
    by_distractor(plt, "agreement accuracy by distractor length, per TBPTT window", r.distractors,
                  r.accuracy, series_colours(len(r.seq_lens)), _labels(r))


@views.chart("loss", key=_windows_key)
def loss(plt, r, width: int, height: int) -> None:
    colours, labels = series_colours(len(r.seq_lens)), _labels(r)
    plt.title("training loss")
    for i in range(len(r.seq_lens)):
        plot_line(plt, np.arange(1, r.loss.shape[1] + 1), r.loss[i], colours[i], labels[i])
    plt.xlabel("step")
