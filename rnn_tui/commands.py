"""The command palette's own commands (ctrl+p): models, cells, training, screens, sentence."""

from __future__ import annotations

from functools import partial
from typing import Callable, Iterator

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .engine.config import BUNDLED_MODELS as BUNDLED, CELL_NAMES

# The lessons, by the question they answer: (title, where it is shown, mode, what opens there).
# "help": the screen and its help (whose concepts quote this session's numbers); "run NAME":
# the Lab runs that experiment; None: the screen itself.
LESSONS = (
    ("Lesson: what makes a network recurrent", "Stepper: the W_hh h_(t-1) term, step by step",
     "stepper", "help"),
    ("Lesson: unrolled in time, an RNN is a deep network (BPTT)",
     "Gradients: T steps of one cell = T layers sharing their weights", "gradients", None),
    ("Lesson: why a vanilla RNN forgets: vanishing and exploding gradients",
     "Gradients: one Jacobian per step multiplied back, and each cell's gradient at the subject",
     "gradients", "help"),
    ("Lesson: what the LSTM and GRU gates change",
     "Compare: vanilla RNN, LSTM and GRU on agreement across a distractor clause", "compare", "help"),
    ("Lesson: Elman 1990, grammar learnt from prediction alone",
     "Lab: a next-word predictor's hidden states sort nouns from verbs", "lab", "run elman"),
    ("Lesson: three reasons vanilla RNNs fail at long range",
     "Lab: vanishing gradients, finite capacity, the curse of memory, each measured", "lab", "run failure-modes"),
)


class RnnCommands(Provider):
    """Load / switch models, train, save, change the sentence, go to a screen, run an experiment.

    Quitting is Textual's own "Quit the application" (listed once)."""

    def _commands(self) -> Iterator[tuple[str, Callable[[], object], str]]:
        app = self.app
        for cell in BUNDLED:
            yield (f"Switch cell: {CELL_NAMES[cell]}", partial(app.load_model_spec, cell),
                   f"Load the bundled trained {CELL_NAMES[cell]} (keeps the sentence)")
        yield ("Load model…", app.action_load_model_prompt,
               "Type the path of a run directory (or rnn / lstm / gru)")
        yield ("Train", app.action_train, "Go to the training screen and start or pause training")
        yield ("Save checkpoint", app.action_save_checkpoint,
               "Save the model being trained to its run directory")
        yield ("Change sentence…", app.action_change_sentence,
               "Edit the sentence the stepper reads")
        for mode, screen in app.MODES.items():
            yield (f"Go to {screen.LABEL}", partial(app.switch_mode, mode), f"Screen {screen.KEY}: {screen.TOOLTIP}")
        for name, explanation in _experiments():
            yield (f"Run experiment: {name}", partial(run_experiment, app, name), explanation)
        for title, where, mode, opens in LESSONS:
            yield (title, partial(open_lesson, app, mode, opens), where)
        yield ("Toggle dark mode", app.action_toggle_dark, "Switch between the dark and light theme")
        yield ("Help", app.action_help, "Every key binding and what each panel shows")

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)


def open_lesson(app, mode: str, opens: str | None) -> None:
    """Go to the screen that shows a lesson; open its help or run its experiment there."""
    if opens is not None and opens.startswith("run "):
        run_experiment(app, opens[4:])
        return
    app.switch_mode(mode)
    if opens == "help":
        app.call_after_refresh(app.action_help)


def run_experiment(app, name: str) -> None:
    """Go to the Lab and run one experiment there."""
    app.run_on_screen("lab", "run_named", name)


def _experiments():
    """(name, first line of its explanation) of every experiment, once the engine is loaded
    (the registry imports torch, which the first frame must not wait for)."""
    import sys

    module = sys.modules.get("rnn_tui.engine.experiments")
    if module is None:
        if "torch" not in sys.modules:
            return []
        try:
            from .engine import experiments as module
        except Exception:
            return []
    return [(name, exp.explanation[0]) for name, exp in module.EXPERIMENTS.items()]
