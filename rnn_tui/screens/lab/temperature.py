"""The temperature experiment's views, both text: the samples side by side, and the measures of
each (words in the lexicon, distinct words, repeats, grammatical sentences)."""

from __future__ import annotations

import math

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from .views import LabViews

views = LabViews("temperature")


def _fmt(x) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    return f"{v:.2f}" if math.isfinite(v) else "-"


@views.text("samples")
def samples(r, width: int) -> RenderableType:
    table = Table.grid(padding=(0, 1), expand=True)
    for _ in r.temperatures:
        table.add_column(ratio=1, overflow="fold")
    table.add_row(*[Text(f"T = {t:g}", style="bold") for t in r.temperatures])
    table.add_row(*[Text(r.prime, style="bold #ffd75f") + Text(txt) for txt in r.texts])
    return table


@views.text("statistics")
def statistics(r, width: int) -> RenderableType:
    table = Table(show_edge=False, box=None, padding=(0, 1))
    table.add_column("T", style="bold")
    for stat in r.stats:
        table.add_column(stat.replace("_", " "), justify="right")
    for k, t in enumerate(r.temperatures):
        table.add_row(f"{t:g}", *[_fmt(r.stats[s][k]) for s in r.stats])
    return table
