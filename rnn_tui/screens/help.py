"""The help screen (every binding, what each panel shows) and a one-line text prompt modal."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from .keymap import keymap

def _key_label(app, binding) -> str:
    if binding.key_display:
        return binding.key_display
    keys = [k.strip() for k in binding.key.split(",")]
    return "/".join(app.get_key_display(Binding(k, binding.action)) for k in keys)


def _bindings_of(cls) -> list[Binding]:
    out = []
    for b in getattr(cls, "BINDINGS", []):
        if isinstance(b, Binding):
            out.append(b)
        elif isinstance(b, tuple):
            out.append(Binding(*b))
    return out


def section_title(screen_cls) -> str:
    return f"{screen_cls.KEY}  {screen_cls.LABEL}"


def help_tables(app) -> list:
    """Rich renderables: global keys, then per mode its panels, the concepts its data shows
    (with this session's numbers where measured), and its keys."""
    from .concepts import concept_rows

    parts: list = []
    glob = Table.grid(padding=(0, 2))
    glob.add_column(style="bold", no_wrap=True)
    glob.add_column()
    for b in _bindings_of(type(app)):
        glob.add_row(_key_label(app, b), b.tooltip or b.description)
    glob.add_row(app.get_key_display(Binding(app.COMMAND_PALETTE_BINDING, "")),
                 "Command palette: load a model, switch cell, train, save, change sentence…")
    glob.add_row("escape", "Close this help (or any dialog)")
    parts.append(Text("Everywhere", style="bold underline"))
    parts.append(glob)
    for mode, screen_cls in app.MODES.items():
        parts.append(Text(""))
        parts.append(Text(section_title(screen_cls), style="bold underline"))
        panels = screen_cls.PANEL_HELP
        if panels:
            grid = Table.grid(padding=(0, 2))
            grid.add_column(style="bold italic", no_wrap=True)
            grid.add_column()
            for name, text in panels.items():
                grid.add_row(name, " ".join(text.split()))  # the two lines flow at any width
            parts.append(grid)
        concepts = concept_rows(app, mode)
        if concepts:
            parts.append(Text("concepts: what the data above shows", style="italic"))
            grid = Table.grid(padding=(0, 2))
            grid.add_column(style="bold #5fd787", no_wrap=True)
            grid.add_column()
            for name, text in concepts:
                grid.add_row(name, Text(text))  # plain text: "[panel]" is not markup
            parts.append(grid)
        keys = Table.grid(padding=(0, 2))
        keys.add_column(style="bold", no_wrap=True)
        keys.add_column()
        rows = 0
        for b in _bindings_of(screen_cls):
            if b.system:
                continue
            keys.add_row(_key_label(app, b), b.tooltip or b.description)
            rows += 1
        if rows:
            parts.append(keys)
    return parts


class HelpScreen(ModalScreen[None]):
    """Every binding of every screen, and two lines on what each panel shows."""

    BINDINGS = keymap("""
        escape,question_mark,q | dismiss        | Close | help.close | Close the help
        up,k                   | scroll('up')   | -Up   | help.up    | Scroll the help up
        down,j                 | scroll('down') | -Down | help.down  | Scroll the help down
        """) + [Binding(f"{n},alt+{n}", f"go({n})", show=False, id=f"help.go{n}",
                        tooltip="Close the help and go to that screen") for n in range(1, 10)]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static("[b]rnn-tui help[/b]  ·  escape closes", id="help-title")
            with VerticalScroll(id="help-scroll"):
                mode_cls = self.app.MODES.get(self.app.current_mode)
                here = section_title(mode_cls) if mode_cls is not None else None
                for part in help_tables(self.app):
                    # The current screen's section gets an id: the help opens on it.
                    is_here = here is not None and isinstance(part, Text) and part.plain == here
                    yield Static(part, classes="help-part", id="help-here" if is_here else None)

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()
        self.call_after_refresh(self._open_on_current_screen)

    def _open_on_current_screen(self) -> None:
        here = self.query("#help-here")
        if here:
            self.query_one("#help-scroll", VerticalScroll).scroll_to_widget(here.first(), top=True, animate=False)

    def action_scroll(self, direction: str) -> None:
        scroll = self.query_one("#help-scroll", VerticalScroll)
        if direction == "up":
            scroll.scroll_up()
        else:
            scroll.scroll_down()

    def action_dismiss(self, result=None) -> None:  # type: ignore[override]
        self.dismiss(None)

    def action_go(self, number: int) -> None:
        """A screen's number closes the help and goes there (alt+N: escape and N typed quickly)."""
        modes = list(self.app.MODES)
        if 1 <= number <= len(modes):
            self.dismiss(None)
            self.app.switch_mode(modes[number - 1])


class TextPrompt(ModalScreen[str | None]):
    """A titled one-line Input; enter returns the text, escape returns None."""

    BINDINGS = keymap("""
        escape | cancel | Cancel | prompt.cancel | Close without changes
        """)

    def __init__(self, title: str, hint: str = "", value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self._title, self._hint, self._value, self._placeholder = title, hint, value, placeholder

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-box"):
            yield Static(self._title, id="prompt-title", markup=False)
            yield Input(self._value, placeholder=self._placeholder, id="prompt-input")
            if self._hint:
                yield Static(self._hint, id="prompt-hint", markup=False)

    def on_mount(self) -> None:
        inp = self.query_one(Input)
        inp.cursor_blink = self.app.settings.cursor_blink
        inp.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
