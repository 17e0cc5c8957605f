"""`Panel`: a widget that draws whatever Rich renderable its builder returns for its size."""

from __future__ import annotations

from typing import Callable

from rich.console import RenderableType
from rich.text import Text
from textual.widget import Widget

Builder = Callable[[int, int], RenderableType]


class Panel(Widget):
    """Draws ``builder(width, height)`` at every render; with ``height: auto`` it is as tall
    as the builder's lines at its width. A drawing error is shown, never raised."""

    def __init__(self, builder: Builder, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._builder = builder

    def get_content_height(self, container, viewport, width: int) -> int:
        if width < 1:
            return 0
        console = self.app.console
        try:
            lines = console.render_lines(self._builder(width, 1000), console.options.update_width(width),
                                         pad=False)
        except Exception:
            return 1
        return len(lines)

    def render(self) -> RenderableType:
        size = self.content_size
        if size.width < 1 or size.height < 1:
            return Text("")
        try:
            return self._builder(size.width, size.height)
        except Exception as exc:  # a drawing bug must not take the app down
            return Text(f"(cannot draw: {type(exc).__name__}: {exc})", style="red")
