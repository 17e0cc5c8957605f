"""The lab's views registry: which views an experiment's result has, and how each is drawn.

Each experiment's view module registers its views, in the order `v` cycles through them:

    views = LabViews("parity")

    @views.chart("trajectory", key=parity_key, marker="● ")
    def trajectory(plt, r, width, height): ...      # draws on a plotext figure

    @views.text("samples")
    def samples(r, width) -> RenderableType: ...    # shown instead of the chart

`key(result)` gives the (label, colour) of each series a chart draws, for the line under it.
No torch here: the results arrive already computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from rich.console import RenderableType

Draw = Callable[[Any, Any, int, int], None]  # (plt, result, width, height)
TextView = Callable[[Any, int], RenderableType]  # (result, width)
Key = Callable[[Any], list[tuple[str, tuple]]]  # result -> [(label, rgb)]


@dataclass(frozen=True)
class LabView:
    name: str
    draw: Draw | None = None  # a chart view
    text: TextView | None = None  # a text view
    key: Key | None = None
    marker: str = "━━ "  # how the key shows a series: a line, or a dot for scatter charts

    @property
    def is_text(self) -> bool:
        return self.text is not None

    def series_key(self, result) -> list[tuple[str, tuple]]:
        return list(self.key(result)) if self.key is not None else []


# An experiment that registered no views: one empty chart (its table and findings still show).
NO_VIEWS = (LabView("result"),)


class LabViews:
    """One experiment's views, registered by decorators in the order they are cycled."""

    def __init__(self, experiment: str) -> None:
        if experiment in LAB_VIEWS:
            raise ValueError(f"the lab views of {experiment!r} are registered twice")
        self.experiment = experiment
        self.views: list[LabView] = []
        LAB_VIEWS[experiment] = self

    def chart(self, name: str, *, key: Key | None = None, marker: str = "━━ ") -> Callable[[Draw], Draw]:
        def register(draw: Draw) -> Draw:
            self.views.append(LabView(name, draw=draw, key=key, marker=marker))
            return draw

        return register

    def text(self, name: str) -> Callable[[TextView], TextView]:
        def register(text: TextView) -> TextView:
            self.views.append(LabView(name, text=text))
            return text

        return register


# experiment name -> its views, in the order the view modules register (the lab's list order
# until the engine's EXPERIMENTS is loaded).
LAB_VIEWS: dict[str, LabViews] = {}


def views_of(experiment: str) -> tuple[LabView, ...]:
    registered = LAB_VIEWS.get(experiment)
    return tuple(registered.views) if registered is not None and registered.views else NO_VIEWS
