"""The runs list: every run on the screen, one line each, to select, pin, hide and filter.

`rnn-tui watch` opens with it shown (r shows or hides it). Its cursor (↑↓) picks the run the
status line describes and, for a watched run, the one whose checkpoints the other modes show;
p pins a run (always listed whatever the filter, drawn last so on top, first in the legend;
a pinned watched run feeds the other modes, and only one is), h hides a run's curves, / edits
the name filter (enter keeps it, escape clears it): it lists the runs whose name has the text
(when none has, the runs with a named metric, a TensorBoard tag, that has it), and the metric
chart picks among the metrics that have it. The list reads the screen's own list of
runs, which is only ever changed in place, and adds a run for each directory the app's
watcher follows (`follow`).
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static

from ...render.colors import hex_code
from ...render.fmt import fmt_steps
from .runs import Run, WatchedRun

SHORT_STATE = {"waiting": "wait", "starting": "start", "running": "run", "paused": "pause",
               "stopping": "stop", "stopped": "stop", "diverged": "div!", "failed": "fail"}
QUIET_STATES = ("waiting", "new", "done", "stopped")  # listed dim


def next_index(runs: list[Run]) -> int:
    return max((r.index for r in runs), default=0) + 1


class RunList(Vertical):
    """The list widget, and which run is selected, pinned, hidden or filtered out."""

    SCOPED_CSS = False  # the rules name the screen, as the screen's own do
    DEFAULT_CSS = """
    TrainingScreen #tr-runlist {
        width: 24;
        height: 1fr;
        border-right: vkey $panel-lighten-2;
    }
    TrainingScreen #tr-runlist.-hidden { display: none; }
    TrainingScreen #tr-runlist-title { height: 1; color: $text-muted; text-style: bold; }
    TrainingScreen #tr-filter { height: 1; width: 1fr; }
    TrainingScreen #tr-runlist-body { height: 1fr; }
    """

    class Changed(Message):
        """The selection, a pin, a hidden run or the filter changed (the screen redraws)."""

    def __init__(self, runs: list[Run], *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.runs = runs
        self.selected_index: int | None = None  # the run the cursor is on
        self.filter = ""  # list only the runs whose name contains this (and pinned runs)

    def compose(self) -> ComposeResult:
        yield Static("runs", id="tr-runlist-title")
        yield Input(placeholder="filter: part of a name", compact=True, id="tr-filter", classes="tr-hidden")
        yield Static("", id="tr-runlist-body")

    # -- what is listed, drawn, selected
    @property
    def shown(self) -> bool:
        return not self.has_class("-hidden")

    @property
    def selected(self) -> Run | None:
        return next((r for r in self.runs if r.index == self.selected_index), None)

    def listed(self) -> list[Run]:
        """Runs whose name has the filter text (when none has: whose named metrics have it), and
        pinned runs, in order."""
        needle = self.filter.lower()
        if not needle:
            return list(self.runs)
        if any(needle in r.label.lower() for r in self.runs if not r.pinned):
            return [r for r in self.runs if r.pinned or needle in r.label.lower()]
        return [r for r in self.runs if r.pinned or any(needle in name.lower() for name in r.named)]

    def visible(self) -> list[Run]:
        """What the charts draw, in drawing order: pinned runs last, so on top."""
        listed = [r for r in self.listed() if not r.hidden]
        return [r for r in listed if not r.pinned] + [r for r in listed if r.pinned]

    def model_source(self) -> Run | None:
        """The watched run whose checkpoints the other modes show: pinned, else selected."""
        pinned = next((r for r in self.runs if r.pinned and r.watch is not None), None)
        if pinned is not None:
            return pinned
        selected = self.selected
        return selected if selected is not None and selected.watch is not None else None

    # -- changing it
    def select(self, run: Run | None) -> None:
        self.selected_index = run.index if run is not None else None

    def move(self, delta: int) -> bool:
        """Select the run delta lines down (up when negative); False with nothing listed."""
        listed = self.listed()
        if not listed:
            return False
        current = self.selected
        if current in listed:
            pos = max(0, min(len(listed) - 1, listed.index(current) + delta))
        else:
            pos = 0 if delta > 0 else len(listed) - 1
        self.select(listed[pos])
        return True

    def toggle(self, flag: str) -> Run | None:
        """Pin ("pinned") or hide ("hidden") the selected run, or undo it; None with no selection."""
        run = self.selected
        if run is None:
            return None
        setattr(run, flag, not getattr(run, flag))
        if flag == "pinned" and run.pinned:
            run.hidden = False
            for other in self.runs:  # one pinned watched run feeds the other modes
                if other is not run and other.pinned and other.watch is not None and run.watch is not None:
                    other.pinned = False
        return run

    def set_filter(self, text: str) -> bool:
        """List only runs with this in their name; True when that changed."""
        text = text.strip()
        if text == self.filter:
            return False
        self.filter = text
        listed = self.listed()
        if listed and self.selected not in listed:
            self.select(listed[0])
        return True

    def edit_filter(self) -> None:
        box = self.query_one("#tr-filter", Input)
        box.remove_class("tr-hidden")
        box.focus()

    def clear_filter(self) -> bool:
        self.query_one("#tr-filter", Input).value = ""
        return self.set_filter("")

    def forget_removed(self) -> None:
        """After runs were removed: no selection if the selected one went (the status line then
        describes the newest run left, or how to start one)."""
        if self.selected is None:
            self.selected_index = None

    def follow(self, watcher, now: float) -> bool:
        """Add a run for each directory the watcher follows and take their states; True when
        the list changed."""
        changed = False
        if watcher is not None:
            known = {id(r.watch) for r in self.runs if r.watch is not None}
            for watch in watcher.runs:
                if id(watch) in known:
                    continue
                run = WatchedRun(next_index(self.runs), watch)
                self.runs.append(run)
                if self.selected_index is None and watch is watcher.model_run:
                    self.select(run)
                changed = True
        for run in self.runs:
            if isinstance(run, WatchedRun) and run.follow(now):
                changed = True
        return changed

    # -- drawing
    def refresh_list(self) -> None:
        """Draw the title (with the filter) and one line per listed run."""
        if not self.shown or not self.is_mounted:
            return
        box = self.query_one("#tr-filter", Input)
        editing = self.screen.focused is box
        box.set_class(not editing, "tr-hidden")
        head = Text("runs", style="bold")
        if self.filter and not editing:
            head.append(f" · /{self.filter}", style="italic")
        else:
            head.append(" ↑↓ p h /", style="dim")
        self.query_one("#tr-runlist-title", Static).update(head)
        body = self.query_one("#tr-runlist-body", Static)
        body.update(self._lines(max(12, body.size.width or 23)))

    def _lines(self, width: int) -> Text:
        listed = self.listed()
        selected = self.selected
        out = Text(no_wrap=True, overflow="ellipsis")
        if not listed:
            out.append("no runs" if not self.runs else "no run matches", style="dim")
        for i, run in enumerate(listed):
            if i:
                out.append("\n")
            line = Text(no_wrap=True)
            line.append("›" if run is selected else " ", style="bold")
            line.append("□" if run.hidden else "■", style=hex_code(run.color))
            line.append("*" if run.pinned else " ", style="bold")
            tail = SHORT_STATE.get(run.state, run.state)
            if run.last_step is not None:
                tail = f"{fmt_steps(run.last_step)} {tail}"
            room = max(3, width - 4 - len(tail))
            name = run.label if len(run.label) <= room else run.label[: room - 1] + "…"
            line.append(f"{name:<{room}} ", style="dim" if run.hidden else "")
            line.append(tail, style="dim" if run.state in QUIET_STATES or run.hidden
                        else ("bold yellow" if run.state == "stale" else ""))
            if run is selected:
                line.stylize("reverse")
            out.append_text(line)
        return out

    # -- the filter box
    @on(Input.Changed, "#tr-filter")
    def _filter_typed(self, event: Input.Changed) -> None:
        event.stop()
        if self.set_filter(event.value):
            self.post_message(self.Changed())

    @on(Input.Submitted, "#tr-filter")
    def _filter_kept(self, event: Input.Submitted) -> None:
        event.stop()
        self.screen.set_focus(None)
        self.refresh_list()
