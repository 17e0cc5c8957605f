"""`ModeBar`: the tab bar under the header, one clickable tab per mode screen."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static


class ModeBar(Static):
    """``1 Stepper  2 Training …``: the app's modes in order, this screen's tab lit.

    The tabs come from the app's mode screens (each names its KEY, LABEL and SHORT label);
    the short titles are used when the full ones do not fit."""

    DEFAULT_CSS = """
    ModeBar {
        height: 1;
        width: 1fr;
        background: $panel;
        color: $text-muted;
    }
    """

    def __init__(self, mode: str, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.mode = mode

    def on_mount(self) -> None:
        self.update(self._content())

    def on_resize(self, event) -> None:
        self.update(self._content())

    def tabs(self) -> list[tuple[str, str, str, str]]:
        """(mode, key, title, short title) of every mode, in tab order."""
        return [(name, cls.KEY, cls.LABEL, cls.SHORT or cls.LABEL) for name, cls in self.app.MODES.items()]

    def _content(self) -> Content:
        tabs = self.tabs()
        full = sum(len(title) + 5 for _, _, title, _ in tabs) - 1
        width = self.size.width or (self.app.size.width if self.is_attached else 0)
        short = 0 < width < full
        parts: list[Content] = []
        for name, key, title, short_title in tabs:
            label = f" {key} {short_title if short else title} "
            if name == self.mode:
                piece = Content.styled(label, "bold reverse $accent")
            else:
                piece = Content.from_markup(f"[@click=app.switch_mode('{name}')]$label[/]", label=label)
            parts.append(piece)
        return Content(" ").join(parts)
