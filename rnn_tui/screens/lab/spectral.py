"""The spectral experiment's views: the norm of the free recurrence at each spectral radius,
with tanh and linear, and the gradient by timestep of a vanilla RNN at each radius (all log)."""

from __future__ import annotations

import numpy as np

from .plotting import log_lines, series_colours
from .views import LabViews

views = LabViews("spectral")


def _labels(r) -> list[str]:
    return [f"ρ={x:g}" for x in r.radii]


def _radii_key(r) -> list[tuple[str, tuple]]:
    return list(zip(_labels(r), series_colours(len(r.radii))))


def _free_recurrence(plt, r, norms, update: str, height: int) -> None:
    plt.title(f"recurrence alone: ‖h_t‖, h ← {update}, log")
    log_lines(plt, [np.arange(norms.shape[1])] * len(r.radii), list(norms), series_colours(len(r.radii)),
              _labels(r), height)
    plt.xlabel("step")


@views.chart("tanh", key=_radii_key)
def tanh(plt, r, width: int, height: int) -> None:
    _free_recurrence(plt, r, r.norm_tanh, "tanh(ρW h)", height)


@views.chart("linear", key=_radii_key)
def linear(plt, r, width: int, height: int) -> None:
    _free_recurrence(plt, r, r.norm_linear, "ρW h", height)


@views.chart("gradient", key=_radii_key)
def gradient(plt, r, width: int, height: int) -> None:
    plt.title("‖dL/dh_t‖ of a vanilla RNN at each radius, log")
    T = r.grad.shape[1]
    log_lines(plt, [np.arange(T)] * len(r.radii), list(r.grad), series_colours(len(r.radii)), _labels(r), height)
    plt.xlabel("position t")
