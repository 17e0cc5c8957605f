"""The init-schemes experiment's views: loss per scheme, the spectral radius of W while
training, and the gradient by timestep after training."""

from __future__ import annotations

import numpy as np

from .plotting import GUIDE, cap_loss, log_lines, plot_line, series_colours
from .views import LabViews

views = LabViews("init-schemes")


def _schemes_key(r) -> list[tuple[str, tuple]]:
    return list(zip(r.schemes, series_colours(len(r.schemes))))


@views.chart("loss", key=_schemes_key)
def loss(plt, r, width: int, height: int) -> None:
    colours = series_colours(len(r.schemes))
    for i, s in enumerate(r.schemes):
        plot_line(plt, r.steps, r.loss[i], colours[i], s)
    cap_loss(plt, list(r.loss), "training loss per init scheme", r.schemes)
    plt.xlabel("step")


@views.chart("radius", key=_schemes_key)
def radius(plt, r, width: int, height: int) -> None:
    colours = series_colours(len(r.schemes))
    plt.title("spectral radius of W while training")
    for i, s in enumerate(r.schemes):
        plot_line(plt, r.radius_steps, r.radius[i], colours[i], s)
    plt.horizontal_line(1.0, color=GUIDE)
    plt.xlabel("step")


@views.chart("gradient", key=_schemes_key)
def gradient(plt, r, width: int, height: int) -> None:
    plt.title("‖dL/dh_t‖ after training, log")
    T = r.grad_final.shape[1]
    log_lines(plt, [np.arange(T)] * len(r.schemes), list(r.grad_final), series_colours(len(r.schemes)),
              list(r.schemes), height)
    plt.xlabel("position t")
