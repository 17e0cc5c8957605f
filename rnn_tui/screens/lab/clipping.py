"""The clipping experiment's views: the loss of both runs (capped so a blow-up cannot flatten
the other) and the gradient norm before clipping."""

from __future__ import annotations

import math

from .plotting import GUIDE, PALETTE, cap_loss, log_lines, plot_line
from .views import LabViews

COLOURS = (PALETTE[1], PALETTE[0])  # no clipping, clipped

views = LabViews("clipping")


def _runs_key(r) -> list[tuple[str, tuple]]:
    return list(zip(r.runs, COLOURS))


@views.chart("loss", key=_runs_key)
def loss(plt, r, width: int, height: int) -> None:
    for i, run in enumerate(r.runs):
        plot_line(plt, r.steps, r.loss[i], COLOURS[i], run)
    cap_loss(plt, list(r.loss), "training loss", r.runs)
    if math.isfinite(r.uniform_loss):
        plt.horizontal_line(r.uniform_loss, color=GUIDE)
    plt.xlabel("step")


@views.chart("gradient norm", key=_runs_key)
def gradient_norm(plt, r, width: int, height: int) -> None:
    plt.title("gradient norm before clipping, log")
    log_lines(plt, [r.steps] * len(r.runs), list(r.grad_norm), list(COLOURS), list(r.runs), height)
    plt.xlabel("step")
