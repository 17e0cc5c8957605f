"""The rnn-tui Textual app: eight modes (stepper, training, gradients, sampling, dynamics,
compare, lab, inspector) over one model.

The first frame paints before torch is imported: the engine is imported and the first model
loaded in a thread worker, and every screen shows "loading engine…" until
``app.engine_ready`` is True. Screens read ``app.lm`` / ``app.sentence`` and watch the
reactive counters ``model_version`` / ``sentence_version``; nothing but the app replaces
them (``set_model``, ``set_sentence``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.worker import Worker, get_current_worker

from .commands import RnnCommands
from .screens import LOADING_TEXT, MODE_TABS, report_worker_error
from .screens.help import HelpScreen
from .screens.sampling import SamplingScreen
from .screens.stepper import StepperScreen

if TYPE_CHECKING:  # the engine imports torch: never at module import time
    from .engine.model import LoadedModel

DEFAULT_MODEL = "lstm"
DEFAULT_SENTENCE = "the cat that we saw yesterday was happy"


def _placeholder(mode: str):
    """A stand-in Screen class for a mode whose module is not written yet."""
    from textual.app import ComposeResult
    from textual.screen import Screen
    from textual.widgets import Footer, Header, Static

    from .screens import ModeBar

    title = MODE_TABS[mode][1]

    class ComingSoon(Screen):
        MODE = mode

        def compose(self) -> ComposeResult:
            yield Header()
            yield ModeBar(mode)
            yield Static(f"{title}: coming soon", classes="placeholder")
            yield Footer()

    ComingSoon.__name__ = f"{title}Placeholder"
    return ComingSoon


def _optional_screen(module: str, name: str, mode: str):
    """Import a screen written by another engineer; a missing module gives a placeholder."""
    import importlib

    full = f"{__package__}.screens.{module}"
    try:
        return getattr(importlib.import_module(full), name)
    except ModuleNotFoundError as exc:
        if exc.name != full:
            raise
        return _placeholder(mode)


TrainingScreen = _optional_screen("training", "TrainingScreen", "training")
GradientsScreen = _optional_screen("gradients", "GradientsScreen", "gradients")
DynamicsScreen = _optional_screen("dynamics", "DynamicsScreen", "dynamics")
CompareScreen = _optional_screen("compare", "CompareScreen", "compare")
LabScreen = _optional_screen("lab", "LabScreen", "lab")
InspectorScreen = _optional_screen("inspector", "InspectorScreen", "inspector")


# ------------------------------------------------------------------------- messages
@dataclass
class EngineStatus(Message):
    """Progress of the boot worker (shown in the header while loading)."""

    text: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EngineStatus)


@dataclass
class ModelReady(Message):
    """A model was loaded (or built) by a worker; the app installs it on the event loop."""

    lm: Any  # LoadedModel | None
    device_label: str | None = None
    corpus: Any = None  # engine Corpus, when --corpus was given
    boot: bool = False
    note: str | None = None
    quiet: bool = False  # no "model: …" notification (a watched run's newest checkpoint)


class RnnTuiApp(App):
    """Look inside recurrent networks while they read text and train."""

    CSS_PATH = "app.tcss"
    TITLE = "rnn-tui"
    SUB_TITLE = LOADING_TEXT
    MODES = {
        "stepper": StepperScreen,
        "training": TrainingScreen,
        "gradients": GradientsScreen,
        "sampling": SamplingScreen,
        "dynamics": DynamicsScreen,
        "compare": CompareScreen,
        "lab": LabScreen,
        "inspector": InspectorScreen,
    }
    DEFAULT_MODE = "stepper"
    COMMANDS = App.COMMANDS | {RnnCommands}
    BINDINGS = [
        Binding("1", "switch_mode('stepper')", "Stepper", show=False, id="mode.stepper",
                tooltip="Step through a sentence: hidden states, predictions, gates"),
        Binding("2", "switch_mode('training')", "Train", show=False, id="mode.training",
                tooltip="Train the model and watch loss, gradients and weights live"),
        Binding("3", "switch_mode('gradients')", "Grads", show=False, id="mode.gradients",
                tooltip="How far back gradients reach: dL/dh_t over time, Jacobians, spectrum"),
        Binding("4", "switch_mode('sampling')", "Sample", show=False, id="mode.sampling",
                tooltip="Generate text from a prompt at a chosen temperature"),
        Binding("5", "switch_mode('dynamics')", "Dynamics", show=False, id="mode.dynamics",
                tooltip="Eigenvalues, the recurrence alone, Lyapunov map, memory horizon"),
        Binding("6", "switch_mode('compare')", "Compare", show=False, id="mode.compare",
                tooltip="Vanilla RNN vs LSTM vs GRU on subject-verb agreement"),
        Binding("7", "switch_mode('lab')", "Lab", show=False, id="mode.lab",
                tooltip="Run the experiments: parity, inits, clipping, TBPTT, zog, temperature…"),
        Binding("8", "switch_mode('inspector')", "Inspect", show=False, id="mode.inspector",
                tooltip="Units that fire together over a span, where else they do, input attribution"),
        Binding("question_mark", "help", "Help", id="app.help", key_display="?",
                tooltip="Every key binding, and what each panel shows"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True, show=False,
                tooltip="Quit rnn-tui"),
    ]

    engine_ready: reactive[bool] = reactive(False)
    model_version: reactive[int] = reactive(0)
    sentence_version: reactive[int] = reactive(0)

    def __init__(
        self,
        model: str | None = None,
        corpus: str | None = None,
        device: str = "auto",
        sentence: str | None = None,
        *,
        lm: "LoadedModel | None" = None,
        cursor_blink: bool = True,
        watch_css: bool = False,
        start_engine: bool = True,
        watch: list[str] | None = None,
        mode: str | None = None,
        watch_roots: list[str] | None = None,
    ) -> None:
        """``lm`` installs an already-built model (tests); otherwise ``model`` (a run
        directory or bundled name, default "lstm") is loaded in the boot worker.
        ``corpus`` (a bundled name or a text file) is what the training screen trains on;
        given without a model, a fresh LSTM for its vocabulary is built.
        ``start_engine=False`` holds the boot worker until ``start_engine()`` (tests of the
        "loading engine…" state); ``cursor_blink=False`` keeps snapshots still."""
        super().__init__(watch_css=watch_css)
        self.model_spec = model
        self.corpus_spec = corpus
        self.device_name = device or "auto"
        self.sentence: str = sentence or DEFAULT_SENTENCE
        self.lm: LoadedModel | None = None
        self.corpus = None  # engine Corpus when --corpus was given (loaded by the boot worker)
        self.device = None  # torch.device once the engine is loaded
        self.device_label: str = "…"
        self.trainer = None  # the live Trainer, owned by the training screen
        self.cursor_blink = cursor_blink
        self._preloaded = lm
        self._autostart = start_engine
        # Run directories another process trains (`rnn-tui watch`): followed by a runs.Watcher.
        self.watch_dirs: list[str] = [str(d) for d in (watch or [])]
        self.watch_roots: list[str] = [str(d) for d in (watch_roots or [])]  # folders new runs appear in
        self.watcher = None
        if mode in self.MODES:  # the first screen (`rnn-tui watch` opens on the training one)
            self._current_mode = mode
            self._screen_stacks = {mode: []}

    # ------------------------------------------------------------------- startup
    def on_mount(self) -> None:
        self.sub_title = LOADING_TEXT
        if self._autostart:
            # After the first frame: importing torch in a thread still competes for the GIL
            # and would hold the first paint back by hundreds of milliseconds.
            self.call_after_refresh(self.start_engine)

    def start_engine(self) -> None:
        """Import torch and load the first model in a thread worker (once)."""
        if not self.engine_ready:
            self._boot()

    @work(thread=True, exclusive=True, exit_on_error=False, group="boot")
    def _boot(self) -> None:
        """Import torch and the engine, pick the device, load the first model."""
        worker = get_current_worker()
        self.post_message(EngineStatus("importing torch…"))
        import torch  # (the slow part: seconds on a cold start)

        from .engine.device import describe_device, pick_device

        # Leave a core for the UI thread: with every core in torch's pool, a busy trainer and
        # the event loop fight for them and small models step 10-100x slower.
        cores = os.cpu_count() or 1
        torch.set_num_threads(max(1, min(torch.get_num_threads(), cores - 1)))

        if worker.is_cancelled:
            return
        device = pick_device(self.device_name)
        self.device = device
        label = describe_device(device)
        if self._preloaded is not None:
            lm = self._preloaded
            if lm.device != device:
                lm.model.to(device)
            self.post_message(ModelReady(lm, label, boot=True))
            return
        corpus = None
        note = None
        if self.corpus_spec:
            from .engine.corpus import load_corpus

            self.post_message(EngineStatus(f"reading corpus {self.corpus_spec}…"))
            corpus = load_corpus(self.corpus_spec)
        if worker.is_cancelled:
            return
        self.post_message(EngineStatus("loading model…"))
        if corpus is not None and self.model_spec is None:
            lm = fresh_model(corpus, "lstm", device)
            note = f"fresh untrained LSTM for corpus {corpus.name}: press 2 to train it"
        else:
            from .engine.checkpoint import load_model

            lm = load_model(self.model_spec or DEFAULT_MODEL, device)
        self.post_message(ModelReady(lm, label, corpus=corpus, boot=True, note=note))

    def on_engine_status(self, message: EngineStatus) -> None:
        if not self.engine_ready:
            self.sub_title = message.text

    def on_model_ready(self, message: ModelReady) -> None:
        if message.device_label:
            self.device_label = message.device_label
        if message.corpus is not None:
            self.corpus = message.corpus
        if message.lm is not None:
            self.set_model(message.lm, announce=not (message.boot or message.quiet))
        if message.note:
            self.notify(message.note, markup=False)
        if message.boot:
            self.engine_ready = True

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if report_worker_error(self, event) and event.worker.group == "boot":
            # The engine is imported even when the first model failed to load: the
            # screens say "no model" and the palette can load another.
            import sys

            if "torch" in sys.modules:
                self.engine_ready = True
                self.sub_title = f"no model (ctrl+p: load one) — {self.device_label}"
            else:
                self.sub_title = "the engine failed to load"

    def watch_engine_ready(self, ready: bool) -> None:
        if ready and (self.watch_dirs or self.watch_roots) and self.watcher is None:
            self._start_watcher()

    def _start_watcher(self) -> None:
        """Follow ``watch_dirs`` (and the runs that appear in ``watch_roots``) with a
        ``runs.Watcher`` polling in its own thread; the selected run's newest checkpoint is
        loaded there and installed without a notification (``ModelReady(quiet=True)``)."""
        from .engine.checkpoint import load_model
        from .runs import POLL_S, ModelLoaded, Watcher

        def report(event) -> None:  # on the watcher's thread
            if isinstance(event, ModelLoaded):
                self.post_message(ModelReady(event.model, quiet=True))

        watcher = Watcher(self.watch_dirs, roots=self.watch_roots, report=report,
                          load=lambda directory: load_model(directory, self.device or "auto"),
                          poll_s=getattr(self, "watch_poll_s", POLL_S))
        if self.lm is not None:
            watcher.assume_shown(self.lm.meta.get("source"), self.lm.meta.get("tensors_sha256"))
        self.watcher = watcher.start()

    def on_unmount(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()

    # --------------------------------------------------------------- app state
    def set_model(self, lm: "LoadedModel", announce: bool = True) -> None:
        """Install a model (event loop only); every screen redraws for it."""
        self.lm = lm
        self._update_titles()
        self.model_version += 1
        if announce:
            self.notify(f"model: {lm.label}", markup=False, timeout=3)

    def set_sentence(self, text: str) -> None:
        """Change the sentence the stepper (and gradients) read."""
        text = " ".join(str(text).split())
        if not text or text == self.sentence:
            return
        self.sentence = text
        self.sentence_version += 1

    def _update_titles(self) -> None:
        self.title = "rnn-tui"
        lm = self.lm
        label = lm.label if lm is not None else "no model"
        watched = lm.meta.get("watch") if lm is not None else None
        if isinstance(watched, dict):  # a watched run's checkpoint: which run, which step
            step = watched.get("step")
            label += f" · {watched.get('run')}" + (f" @ step {step}" if step is not None else "")
        self.sub_title = f"{label} — {self.device_label}"

    def load_model_spec(self, spec: str) -> None:
        """Load a run directory or a bundled model in a worker, then install it."""
        spec = str(spec).strip()
        if not spec:
            return
        if not self.engine_ready:
            self.notify("the engine is still loading; try again in a moment", severity="warning")
            return
        self.notify(f"loading {spec}…", markup=False, timeout=2)
        self._load_worker(spec)

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def _load_worker(self, spec: str) -> None:
        from .engine.checkpoint import load_model

        lm = load_model(spec, self.device or "auto")
        if not get_current_worker().is_cancelled:
            self.post_message(ModelReady(lm))

    # ------------------------------------------------------------------- actions
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_train(self) -> None:
        """Switch to the training screen and start (or pause) training there."""
        self.switch_mode("training")
        self.call_after_refresh(self._call_screen, "training", "action_toggle_training")

    def action_save_checkpoint(self) -> None:
        self.switch_mode("training")
        self.call_after_refresh(self._call_screen, "training", "action_save")

    def action_change_sentence(self) -> None:
        self.switch_mode("stepper")
        self.call_after_refresh(self._call_screen, "stepper", "action_edit")

    def action_load_model_prompt(self) -> None:
        from .screens.help import TextPrompt

        def done(value: str | None) -> None:
            if value:
                self.load_model_spec(value)

        self.push_screen(
            TextPrompt("Load model", "a run directory, its config.json, or rnn / lstm / gru",
                       placeholder="runs/my-run"),
            done,
        )

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def _call_screen(self, mode: str, action: str) -> None:
        stack = self._screen_stacks.get(mode) or []
        screen = stack[0] if stack else None
        method = getattr(screen, action, None)
        if callable(method):
            method()
        else:
            self.notify(f"the {MODE_TABS[mode][1].lower()} screen cannot do that yet", severity="warning")


def fresh_model(corpus, cell: str, device) -> "LoadedModel":
    """An untrained model for a corpus's vocabulary (seeded: the same on every start)."""
    from .engine.model import LoadedModel, ModelConfig, build_model

    config = ModelConfig(vocab_size=len(corpus.vocab), cell=cell)
    model = build_model(config, seed=0, device=device)
    meta = {"corpus": corpus.name, "level": corpus.vocab.level}
    if corpus.categories:
        meta["categories"] = dict(corpus.categories)
    return LoadedModel(model=model, vocab=corpus.vocab, meta=meta)


def run_app(model: str | None = None, corpus: str | None = None, device: str = "auto",
            sentence: str | None = None, watch: list[str] | None = None,
            mode: str | None = None, watch_roots: list[str] | None = None) -> None:
    """Entry point used by the `rnn-tui` command (``watch``: run directories to follow,
    ``watch_roots``: folders where new runs are looked for while watching)."""
    RnnTuiApp(model=model, corpus=corpus, device=device, sentence=sentence, watch=watch,
              mode=mode, watch_roots=watch_roots).run()
