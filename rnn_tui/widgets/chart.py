"""The one plotext chart widget: every chart in the app is a `Chart` with a draw function.

    chart = Chart(draw_loss, id="loss")     # draw_loss(plt, width, height) -> anything
    chart.set_draw(other)                   # or chart.refresh() when the data changed

At every render the chart's data and ticks are cleared (or, with ``fresh_figure=True``, the
whole figure: limits, labels and colours too) and the draw function plots into it again. Plotting
afresh each time is what makes log axes safe: plotext's build() takes the log of its data in
place, so building the same figure twice would take log(log(y)). Whatever the draw function
returns is kept in `drawn` (the training chart reports how many points it plotted); an error
inside it is shown in the chart's place, never raised.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from rich.text import Text
from textual_plotext import PlotextPlot

DrawFn = Callable[[Any, int, int], Any]


def reset_ticks(plt) -> None:
    """Back to automatic ticks on both axes (plotext's xticks(None) fails once ticks were set)."""
    monitor = plt.monitor
    monitor.xticks = [None, None]
    monitor.xlabels = [None, None]
    monitor.xfrequency = [5, 5]
    monitor.yticks = [None, None]
    monitor.ylabels = [None, None]
    monitor.yfrequency = [7, 7]


class Chart(PlotextPlot):
    """A plotext chart drawn by a function of (plt, width, height) at every render."""

    DEFAULT_CSS = "Chart { width: 1fr; height: 1fr; min-height: 5; }"

    def __init__(self, draw: DrawFn | None = None, *, fresh_figure: bool = False, name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._draw = draw
        self.fresh_figure = fresh_figure
        self.drawn: Any = None  # what the draw function returned the last time
        self.render_seconds = 0.0  # what the last build cost on the UI thread

    def set_draw(self, draw: DrawFn | None) -> None:
        self._draw = draw
        self.refresh()

    def render(self):
        start = time.perf_counter()
        plt = self.plt
        try:
            if self.fresh_figure:
                # A full reset: titles, labels, ticks, scales and limits of the last drawing go
                # too (the widget applies its size and theme again in super().render()).
                plt.clf()
            else:
                plt.clear_data()
                reset_ticks(plt)
            if self._draw is not None and self.size.width > 4 and self.size.height > 3:
                self.drawn = self._draw(plt, self.size.width, self.size.height)
            return super().render()
        except Exception as exc:  # plotext has corner cases; never a traceback on screen
            plt.clear_data()
            return Text(f"(this chart could not be drawn: {type(exc).__name__}: {exc})", style="dim")
        finally:
            self.render_seconds = time.perf_counter() - start
