"""The saturation experiment's views: Karpathy, Johnson & Fei-Fei's scatter (each gate unit:
the fraction of steps it is shut, < 0.1, against the fraction it is open, > 0.9), one colour per
cell and gate type; and the share of keep gates that are open, over training."""

from __future__ import annotations

import numpy as np

from .plotting import PALETTE, fraction_axis, plot_line
from .views import LabViews

views = LabViews("saturation")
KEEP_GATE = {"lstm": "f", "gru": "z"}  # engine.saturation's, without importing torch at startup


def _series(r) -> list[str]:
    """cell.gate, in the order the result holds them (layers pooled into one colour)."""
    out: list[str] = []
    for key in r.left:
        cell, gate, _ = key.split(".")
        if f"{cell}.{gate}" not in out:
            out.append(f"{cell}.{gate}")
    return out


def _gates_key(r) -> list[tuple[str, tuple]]:
    return [(name, PALETTE[i % len(PALETTE)]) for i, name in enumerate(_series(r))]


@views.chart("gates", key=_gates_key, marker="● ")
def gates(plt, r, width: int, height: int) -> None:
    plt.title("every gate unit: fraction of steps shut (< 0.1) against open (> 0.9); all layers")
    for i, name in enumerate(_series(r)):
        xs, ys = [], []
        for key in r.left:
            if key.startswith(name + "."):
                xs += np.asarray(r.left[key], float).tolist()
                ys += np.asarray(r.right[key], float).tolist()
        if xs:
            plt.scatter(xs, ys, color=PALETTE[i % len(PALETTE)], marker="•")
    plt.xlim(-0.02, 1.02)
    fraction_axis(plt)
    plt.xlabel("fraction of steps shut (left-saturated)")


def _keep_layers(r) -> list[str]:
    """cell.keep-gate.layer keys: the forget (LSTM) and update (GRU) gates, one series per layer."""
    return [key for key in r.left if key.split(".")[1] == KEEP_GATE.get(key.split(".")[0])]


def _layers_key(r) -> list[tuple[str, tuple]]:
    return [(f"{k.split('.')[0]} {'forget' if k.split('.')[1] == 'f' else 'update'} gates, layer {k.split('.')[2]}",
             PALETTE[i % len(PALETTE)]) for i, k in enumerate(_keep_layers(r))]


@views.chart("keep gates by layer", key=_layers_key, marker="● ")
def keep_by_layer(plt, r, width: int, height: int) -> None:
    plt.title("forget (LSTM) and update (GRU) gate units, per layer: shut (< 0.1) against open (> 0.9)")
    for i, key in enumerate(_keep_layers(r)):
        plt.scatter(np.asarray(r.left[key], float).tolist(), np.asarray(r.right[key], float).tolist(),
                    color=PALETTE[i % len(PALETTE)], marker="•")
    plt.xlim(-0.02, 1.02)
    fraction_axis(plt)
    plt.xlabel("fraction of steps shut (left-saturated)")


def _cells_key(r) -> list[tuple[str, tuple]]:
    return [(f"{c} {'forget' if KEEP_GATE[c] == 'f' else 'update'} gates", PALETTE[i % len(PALETTE)])
            for i, c in enumerate(r.cells)]


@views.chart("open over training", key=_cells_key)
def over_training(plt, r, width: int, height: int) -> None:
    plt.title("keep gates open (> 0.9) more than half the time, share of units, while training")
    for i in range(len(r.cells)):
        plot_line(plt, r.steps, r.open_units[i], PALETTE[i % len(PALETTE)])
    fraction_axis(plt)
    plt.xlabel("training step")
