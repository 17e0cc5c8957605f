"""Asked before quitting while runs trained here have weights that were never saved.

`QuitScreen` names each such run and where saving would put it, and answers "save" (save
every one, then quit), "quit" (quit without saving) or None (stay). ctrl+q again while it is
open quits without saving, as a second ctrl+q does in most programs.
"""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from .runs import TrainingRun
from ..keymap import keymap


def unsaved_summary(runs: list[TrainingRun], runs_dir: Path) -> str:
    """'#1 lstm running at step 512 has never been saved.' and where saving puts it."""
    lines = []
    for run in runs:
        step = run.trainer.step if run.trainer is not None else 0
        lines.append(f"{run.short_label} ({run.state}, step {step}): "
                     + (f"last saved at step {run.saved_step}" if run.saved_step is not None
                        else "never saved"))
    lines.append(f"Saving writes {'each run' if len(runs) > 1 else 'it'} to {runs_dir}/<time>-<cell>/.")
    return "\n".join(lines)


class QuitScreen(ModalScreen[str | None]):
    """Save and quit · quit without saving · cancel."""

    DEFAULT_CSS = """
    QuitScreen { align: center middle; background: $background 60%; }
    QuitScreen #quit-box {
        width: 72; max-width: 96%; height: auto;
        border: round $error; background: $surface; padding: 0 1;
    }
    QuitScreen #quit-title { text-style: bold; height: 1; }
    QuitScreen #quit-runs { height: auto; margin: 1 0; }
    QuitScreen #quit-buttons { height: auto; align-horizontal: center; }
    QuitScreen #quit-buttons Button { margin: 0 1; }
    """
    BINDINGS = keymap("""
        s,enter | choose('save') | Save and quit       | quit.save    | Save every unsaved run to the runs folder, then quit
        q       | choose('quit') | Quit without saving | quit.discard | Quit now: the unsaved weights are lost
        escape  | choose(None)   | Cancel              | quit.cancel  | Go back to the app
        """)

    def __init__(self, summary: str) -> None:
        super().__init__()
        self.summary = summary

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-box"):
            yield Static("Quit rnn-tui? Training weights would be lost", id="quit-title", markup=False)
            yield Static(self.summary, id="quit-runs", markup=False)
            with Horizontal(id="quit-buttons"):
                yield Button("Save and quit (s)", id="quit-save", variant="primary")
                yield Button("Quit without saving (q)", id="quit-quit", variant="error")
                yield Button("Cancel (esc)", id="quit-cancel")

    def on_mount(self) -> None:
        self.query_one("#quit-save", Button).focus()

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss({"quit-save": "save", "quit-quit": "quit"}.get(event.button.id or ""))
