"""The connectivity experiment's views: the chosen output's connectivity to every earlier input
(relative to its own input, log), one line per model; and the whole map of each model."""

from __future__ import annotations

import numpy as np
from rich.console import Group, RenderableType
from rich.text import Text

from ...render.heatmap import TriangleHeatmap, token_label
from .plotting import GUIDE, cell_colour, log_lines
from .views import LabViews

views = LabViews("connectivity")


def _models_key(r) -> list[tuple[str, tuple]]:
    return [(m, cell_colour(c, i)) for i, (m, c) in enumerate(zip(r.models, r.cells))]


@views.chart("at the output", key=_models_key)
def at_output(plt, r, width: int, height: int) -> None:
    tok = token_label(r.tokens[r.position], 3) if 0 <= r.position < len(r.tokens) else "?"
    plt.title(f"‖∂ logits_{r.position} / ∂ x_k‖ relative to k = {r.position} (after “{tok}”), log")
    k = np.arange(r.row.shape[1])
    log_lines(plt, [k] * len(r.models), list(r.row), [cell_colour(c, i) for i, c in enumerate(r.cells)],
              list(r.models), height)
    if r.subject >= 0:
        plt.vertical_line(r.subject, color=GUIDE)
    n = len(k)
    every = max(1, int(np.ceil(n / max(2, width // 6))))
    plt.xticks(list(range(0, n, every)), [token_label(r.tokens[i], 3) for i in range(0, n, every)])
    plt.xlabel("input k (the grey line: just after the subject)")


@views.text("maps")
def maps(r, width: int) -> RenderableType:
    parts: list = []
    for i, name in enumerate(r.models):
        norms = np.asarray(r.norms[i], dtype=float).copy()
        norms[np.triu_indices(norms.shape[0], 1)] = np.nan
        lower = norms[np.isfinite(norms) & (norms > 0)]
        vmin, vmax = (float(lower.min()), float(lower.max())) if lower.size else (1e-6, 1.0)
        parts.append(Text(f"{name}: ‖∂ logits_t / ∂ x_k‖, rows t, cols k ≤ t, log colours "
                          f"{vmin:.2g} .. {vmax:.2g}", style="bold"))
        cell = 2 if len(r.tokens) * 2 + 10 <= width else 1
        parts.append(TriangleHeatmap(norms, r.tokens, cell_width=cell, vmin=vmin, vmax=max(vmax, vmin * 10)))
    return Group(*parts)
