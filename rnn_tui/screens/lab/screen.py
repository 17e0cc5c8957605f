"""The Lab screen: the experiment list, a run in a thread worker with a progress bar, and the
result drawn by its registered views (see `views`) above its table and findings."""

from __future__ import annotations

import threading

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ...render.bars import bar
from ...widgets.chart import Chart
from ..base import LOADING_TEXT, KeyedTask, ModeScreen, emit, stop_event
from .plotting import hex_colour
from .views import LAB_VIEWS, LabView, views_of
from ..keymap import keymap


def registry():
    """The engine's experiments (imports torch: call from a worker or once the engine is up)."""
    from ...engine.experiments import EXPERIMENTS

    return EXPERIMENTS


def summary_text(result) -> Group:
    """Findings first (wrapped), then the table (one row a line, cut at the edge)."""
    parts: list = []
    if result.stopped:
        parts.append(Text("stopped early: a partial result", style="yellow"))
    for f in result.findings():
        parts.append(Text("• " + f, style="#5fd787"))
    for row in result.table():
        parts.append(Text(row, no_wrap=True, overflow="ellipsis"))
    return Group(*parts)



# ------------------------------------------------------------------------ the screen
class LabScreen(ModeScreen):
    """Run the engine's experiments and draw what they found."""

    MODE, KEY, LABEL, SHORT = "lab", "7", "Lab", "Lab"
    TOOLTIP = "Run the experiments: parity, inits, clipping, TBPTT, zog, temperature…"
    FOLLOWS = ("engine_ready",)  # the experiments train their own models
    NEEDS_MODEL = False
    AUTO_FOCUS = None  # the experiment list takes the focus
    PANEL_HELP = {
        "experiments": "Every experiment as a preset; its two-line explanation is shown beside the list.\n"
                       "enter runs it (q: quick settings), escape or ctrl+c stops it; the partial result stays.",
        "result": "What the experiment measured, drawn (v cycles the views), then its table and findings.\n"
                  "Runs are seeded: the same settings give the same numbers.",
    }
    BINDINGS = keymap("""
        r = ⏎/r       | run                  | Run     | lab.run    | Run the selected experiment in the background (enter or r)
        escape,ctrl+c | cancel               | Stop    | lab.cancel | Stop the running experiment (what it measured so far is drawn)
        v             | cycle_view           | View    | lab.view   | Cycle the views of the result
        q             | toggle_quick         | Quick   | lab.quick  | Switch the next run between the default and the quick (smoke-test) settings
        pageup        | scroll_summary(-1) ! | -Scroll | lab.up     | Scroll the summary up
        pagedown      | scroll_summary(1) !  | -Scroll | lab.down   | Scroll the summary down
        """)
    DEFAULT_CSS = """
    LabScreen #lab-body { height: 1fr; }
    LabScreen #lab-list { width: 20; height: 1fr; border: none; padding: 0; }
    LabScreen #lab-right { width: 1fr; height: 1fr; padding: 0 1; }
    LabScreen #lab-explain { height: auto; max-height: 4; color: $text-muted; }
    LabScreen #lab-status { height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    LabScreen #lab-chart { height: 1fr; min-height: 8; }
    LabScreen #lab-text { height: 1fr; min-height: 8; }
    LabScreen #lab-key { height: auto; max-height: 2; }
    LabScreen #lab-summary { height: auto; max-height: 6; scrollbar-size-vertical: 1; }
    LabScreen .lab-hidden { display: none; }
    """

    # Per-experiment settings overrides (tests make the runs tiny).
    overrides: dict[str, dict] = {}

    def __init__(self) -> None:
        super().__init__()
        self.names: tuple[str, ...] = tuple(LAB_VIEWS)  # until the engine's EXPERIMENTS is loaded
        self.explanations: dict[str, tuple[str, str]] = {}
        self.quick = False
        self.running: str | None = None
        self.progress: tuple[float, str] = (0.0, "")
        self.view_index: dict[str, int] = {}
        self._stop: threading.Event | None = None
        self._run_id = 0

    @property
    def results(self) -> dict:
        """name -> the latest result (in the session: the Dynamics screen quotes one)."""
        return self.app.session.lab_results

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="lab-body"):
            yield OptionList(*[Option(n, id=n) for n in self.names], id="lab-list")
            with Vertical(id="lab-right"):
                yield Static("", id="lab-status")
                yield Static(LOADING_TEXT, id="lab-explain")
                yield Chart(self._draw, fresh_figure=True, id="lab-chart")
                yield Static("", id="lab-key")
                with VerticalScroll(id="lab-text", classes="lab-hidden"):
                    yield Static("", id="lab-text-body")
                with VerticalScroll(id="lab-summary"):
                    yield Static("", id="lab-summary-body")

    def on_mount(self) -> None:
        self.runner = KeyedTask(self, "run", self._compute, self._deliver, self._failed)
        self.query_one(OptionList).highlighted = 0
        self.query_one(OptionList).focus()
        self.show_selected()

    def on_unmount(self) -> None:
        if self._stop is not None:
            self._stop.set()

    def inputs_changed(self) -> None:
        if not self.explanations:
            try:
                reg = registry()
            except Exception as exc:  # the engine's experiments module failed to import
                self.query_one("#lab-explain", Static).update(
                    Text(f"the experiments are not available: {type(exc).__name__}: {exc}", style="red"))
                return
            self.explanations = {n: e.explanation for n, e in reg.items()}
            if tuple(reg) != self.names:
                self.names = tuple(reg)
                ol = self.query_one(OptionList)
                ol.clear_options()
                ol.add_options([Option(n, id=n) for n in self.names])
                ol.highlighted = 0
        self.show_selected()

    # ---------------------------------------------------------------- selection
    @property
    def selected(self) -> str:
        ol = self.query_one(OptionList)
        i = ol.highlighted if ol.highlighted is not None else 0
        return self.names[min(i, len(self.names) - 1)]

    def select(self, name: str) -> None:
        if name in self.names:
            self.query_one(OptionList).highlighted = self.names.index(name)
            self.show_selected()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.show_selected()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_run()

    def _views(self, name: str) -> tuple[str, ...]:
        return tuple(v.name for v in views_of(name))

    def _lab_view(self, name: str) -> LabView:
        views = views_of(name)
        return views[self.view_index.get(name, 0) % len(views)]

    def view_of(self, name: str) -> str:
        """The name of the view the result of experiment `name` is drawn in."""
        return self._lab_view(name).name

    def show_selected(self) -> None:
        """Show the selected experiment: its explanation, status and result."""
        name = self.selected
        explain = Text()
        lines = self.explanations.get(name)
        if lines:
            explain.append(lines[0] + "\n" + lines[1])
        elif not self.app.engine_ready:
            explain.append(LOADING_TEXT)
        self.query_one("#lab-explain", Static).update(explain)
        self._show_status()
        self._show_result()

    def _show_status(self) -> None:
        self.refresh_bindings()
        t = Text(no_wrap=True, overflow="ellipsis")
        name = self.selected
        t.append(name, style="bold")
        t.append(f" · {'quick' if self.quick else 'default'} (q) · ", style="dim")
        if self.running is not None:
            frac, msg = self.progress
            t.append(f"{self.running} ", style="bold yellow")
            t.append(bar(frac, 16), style="yellow")
            t.append(f" {frac * 100:3.0f}% ", style="bold")
            t.append(msg, style="dim")
            if self.running != name:
                t.append(" (escape stops it)", style="dim")
        elif name in self.results:
            r = self.results[name]
            views = self._views(name)
            t.append(f"{r.seconds:.1f} s{' stopped' if r.stopped else ''} · ", style="dim")
            for v in views:
                t.append(v, style="bold reverse" if v == self.view_of(name) else "dim")
                t.append(" ")
            if len(views) > 1:
                t.append("(v)", style="dim")
        else:
            t.append("enter runs it", style="bold")
        self.query_one("#lab-status", Static).update(t)

    def _show_result(self) -> None:
        name = self.selected
        result = self.results.get(name)
        view = self._lab_view(name)
        is_text = view.is_text
        chart = self.query_one("#lab-chart", Chart)
        text = self.query_one("#lab-text")
        chart.set_class(is_text and result is not None, "lab-hidden")
        text.set_class(not (is_text and result is not None), "lab-hidden")
        if result is not None and is_text:
            width = max(20, self.query_one("#lab-right").size.width - 2)
            try:
                body = view.text(result, width)
            except Exception as exc:
                body = Text(f"(cannot draw: {type(exc).__name__}: {exc})", style="red")
            self.query_one("#lab-text-body", Static).update(body)
        chart.refresh()
        key = Text()
        if result is not None and not is_text:
            try:
                for label, colour in view.series_key(result):
                    key.append(view.marker, style=hex_colour(colour))
                    key.append(f"{label}  ")
            except Exception:
                pass
        self.query_one("#lab-key", Static).update(key)
        self.query_one("#lab-key").display = bool(key.plain)
        summary = self.query_one("#lab-summary-body", Static)
        if result is None:
            summary.update("")
        else:
            try:
                summary.update(summary_text(result))
            except Exception as exc:
                summary.update(Text(f"(no summary: {type(exc).__name__}: {exc})", style="red"))

    def _draw(self, plt, width: int, height: int) -> None:
        name = self.selected
        result = self.results.get(name)
        if result is None:
            plt.title("no result yet: enter runs the experiment" if self.running is None
                      else "running…")
            return
        view = self._lab_view(name)
        if view.draw is not None:
            view.draw(plt, result, width, height)

    # ---------------------------------------------------------------- running
    def action_run(self) -> None:
        self.run_named(self.selected)

    def run_named(self, name: str) -> None:
        """Run an experiment by name (the palette calls this too)."""
        if not self.app.engine_ready:
            self.notify("the engine is still loading; try again in a moment", severity="warning")
            return
        if self.running is not None:
            self.notify(f"{self.running} is running: escape stops it", severity="warning", timeout=3)
            return
        self.select(name)
        self._run_id += 1
        self._stop = threading.Event()
        self.running = name
        self.progress = (0.0, "starting…")
        self._show_status()
        self.runner.request((self._run_id, name), name, self.quick, dict(self.overrides.get(name, {})),
                            self._stop)

    def _compute(self, name: str, quick: bool, overrides: dict, stop: threading.Event):
        """Worker thread: run the experiment, its progress posted as it goes."""
        exp = registry()[name]
        settings = exp.settings(overrides, quick=quick)
        return exp.run(settings, stop=stop_event(stop),
                       progress=lambda fraction, message: emit((float(fraction), str(message))))

    def _deliver(self, key: tuple, value) -> None:
        if isinstance(value, tuple):  # (fraction, message) while it runs
            if self.running is not None:
                self.progress = value
                self._show_status()
            return
        name = key[1]
        self.running = None
        self._stop = None
        self.results[name] = value
        if value.stopped:
            self.notify(f"{name} stopped: the partial result is drawn", timeout=3)
        if self.selected == name:
            self.show_selected()
        else:
            self._show_status()

    def _failed(self, key: tuple, error: BaseException) -> None:
        self.running = None
        self._stop = None
        self._show_status()

    def action_cancel(self) -> None:
        if self.running is None or self._stop is None:
            return
        self._stop.set()
        self.progress = (self.progress[0], "stopping…")
        self._show_status()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self.running is not None
        if action == "cycle_view":
            return len(self._views(self.selected)) > 1 and self.selected in self.results
        return True

    def action_cycle_view(self) -> None:
        name = self.selected
        self.view_index[name] = self.view_index.get(name, 0) + 1
        self._show_status()
        self._show_result()

    def action_toggle_quick(self) -> None:
        self.quick = not self.quick
        self.show_selected()

    def action_scroll_summary(self, direction: int) -> None:
        scroll = self.query_one("#lab-summary", VerticalScroll)
        scroll.scroll_relative(y=direction * 3, animate=False)
