"""The memory-horizon experiment's views: how much replacing the token k back moves the
prediction, per model (log), and each model's horizon."""

from __future__ import annotations

import math

import numpy as np

from ...render.ticks import integer_ticks
from .plotting import GUIDE, PALETTE, log_lines, series_colours
from .views import LabViews

views = LabViews("memory-horizon")


def _models_key(r) -> list[tuple[str, tuple]]:
    return list(zip(r.labels, series_colours(len(r.labels))))


@views.chart("by lag", key=_models_key)
def by_lag(plt, r, width: int, height: int) -> None:
    plt.title("TV of p(next) when the token k back is replaced, log")
    log_lines(plt, [r.lags] * len(r.labels), list(r.tv), series_colours(len(r.labels)), list(r.labels), height)
    plt.horizontal_line(math.log10(r.threshold), color=GUIDE)
    if len(r.lags):
        integer_ticks(plt, int(r.lags[0]), int(r.lags[-1]), width)
    plt.xlabel("k tokens back")


@views.chart("horizon")
def horizon(plt, r, width: int, height: int) -> None:
    plt.title(f"memory horizon (TV ≥ {r.threshold:g}) per model measured")
    done = np.asarray(r.measured, bool)
    labels = [lab for lab, ok in zip(r.labels, done) if ok]
    if labels:  # a stopped run: only the models it reached have a bar
        plt.bar(labels, np.asarray(r.horizon, dtype=float)[done].tolist(), color=PALETTE[0])
