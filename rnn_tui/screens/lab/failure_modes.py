"""The failure-modes experiment's views: the three failure modes as a table (each with this
app's measured number and where it is shown in full), and the curse of memory: memory and
sensitivity of a tanh recurrence as its radius nears 1 (log)."""

from __future__ import annotations

import numpy as np
from rich.console import Group, RenderableType
from rich.text import Text

from .plotting import PALETTE, log_lines
from .views import LabViews

views = LabViews("failure-modes")


@views.text("three failure modes")
def summary(r, width: int) -> RenderableType:
    parts: list = [Text("Three independent reasons a vanilla RNN fails at long range: cannot learn, cannot "
                        "represent, cannot maintain.", style="dim")]
    for mode, domain, number, breaks, ref, shown in r.modes:
        head = Text()
        head.append(mode, style="bold")
        head.append(f" ({domain}): {breaks}", style="")
        head.append(f" · {ref}", style="dim")
        body = Text("  this app: ", style="dim")
        body.append(number)
        where = Text("  shown in full by: ", style="dim")
        where.append(shown, style="#5fd787")
        parts += [head, body, where]
    return Group(*parts)


def _key(r) -> list[tuple[str, tuple]]:
    return [("memory ‖∂h_T/∂h_0‖", PALETTE[0]), ("sensitivity: % change of h_T per 1% of λ", PALETTE[1])]


@views.chart("curse of memory", key=_key)
def curse(plt, r, width: int, height: int) -> None:
    plt.title(f"h ← λQh + x, T = {r.length}: memory only near λ = 1, and with it the sensitivity, log")
    x = np.arange(len(r.lambdas), dtype=float)
    log_lines(plt, [x, x], [r.memory, r.sensitivity], [PALETTE[0], PALETTE[1]], None, height)
    plt.xticks(x.tolist(), [f"{lam:g}" for lam in r.lambdas])
    plt.xlabel("λ (the spectral radius of the recurrent matrix)")
