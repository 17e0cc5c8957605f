"""The rnn-tui Textual app: eight mode screens over one model.

The first frame paints before torch is imported: the engine is imported and the first model
loaded in a thread worker, and every screen shows "loading engine…" until `engine_ready` is
True. The app owns the state every screen reads, and nothing but the app replaces it:

- `settings`: what the app was started with (`AppSettings`, frozen);
- `session`: what screens share besides the model (lab results, compare models, bundled models);
- `lm` and `sentence`, replaced only by `set_model` / `set_sentence`, which bump the reactive
  counters `model_version` / `sentence_version` that the screens follow;
- `trainer` (the training screen's live run) and `watcher` (runs another process trains).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.worker import Worker, get_current_worker

from .commands import RnnCommands
from .screens.base import LOADING_TEXT, report_worker_error
from .screens.compare import CompareScreen
from .screens.dynamics import DynamicsScreen
from .screens.gradients import GradientsScreen
from .screens.help import HelpScreen
from .screens.inspector import InspectorScreen
from .screens.lab import LabScreen
from .screens.sampling import SamplingScreen
from .screens.stepper import StepperScreen
from .screens.training import TrainingScreen
from .session import Session
from .settings import DEFAULT_MODEL, DEFAULT_SENTENCE, AppSettings  # noqa: F401  (re-exported)

if TYPE_CHECKING:  # the engine imports torch: never at module import time
    from .engine.model import LoadedModel

# The mode screens, in tab order: each names its MODE, KEY, LABEL, SHORT label and TOOLTIP.
SCREENS = (StepperScreen, TrainingScreen, GradientsScreen, SamplingScreen, DynamicsScreen,
           CompareScreen, LabScreen, InspectorScreen)


# ------------------------------------------------------------------------- messages
@dataclass
class EngineStatus(Message):
    """Progress of the boot worker (shown in the header while loading)."""

    text: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EngineStatus)


@dataclass
class RadiusSample(Message):
    """The spectral radius of a training snapshot (computed off the event loop)."""

    step: int
    radius: float


@dataclass
class ModelReady(Message):
    """A model was loaded (or built) by a worker; the app installs it on the event loop."""

    lm: Any  # LoadedModel | None
    device_label: str | None = None
    corpus: Any = None  # engine Corpus, when --corpus was given
    boot: bool = False
    note: str | None = None
    quiet: bool = False  # no "model: …" notification (a watched run's newest checkpoint)


def _mode_bindings() -> list[Binding]:
    # alt+N too: a terminal reads escape followed quickly by N as alt+N.
    return [Binding(f"{cls.KEY},alt+{cls.KEY}", f"switch_mode('{cls.MODE}')", cls.SHORT, show=False, id=f"mode.{cls.MODE}",
                    tooltip=cls.TOOLTIP) for cls in SCREENS]


class RnnTuiApp(App):
    """Look inside recurrent networks while they read text and train."""

    CSS_PATH = "app.tcss"
    TITLE = "rnn-tui"
    SUB_TITLE = LOADING_TEXT
    MODES = {cls.MODE: cls for cls in SCREENS}
    DEFAULT_MODE = SCREENS[0].MODE
    COMMANDS = App.COMMANDS | {RnnCommands}
    BINDINGS = _mode_bindings() + [
        Binding("question_mark", "help", "Help", id="app.help", key_display="?",
                tooltip="Every key binding, and what each panel shows"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True, show=False,
                tooltip="Quit rnn-tui (asks first if unsaved training would be lost)"),
    ]

    engine_ready: reactive[bool] = reactive(False)
    model_version: reactive[int] = reactive(0)
    sentence_version: reactive[int] = reactive(0)
    radius_samples: reactive[int] = reactive(0)  # session.radius_history grew (ρ while training)

    def __init__(self, settings: AppSettings | None = None, *, lm: "LoadedModel | None" = None,
                 **changes: Any) -> None:
        """``settings`` (or its fields as keywords) say what to open; ``lm`` installs an
        already-built model (tests) instead of loading ``settings.model`` in the boot worker.
        A corpus given without a model gets a fresh untrained LSTM for its vocabulary."""
        settings = (settings or AppSettings()).with_(**changes) if changes else (settings or AppSettings())
        if settings.mode in self.MODES:  # the first screen (`rnn-tui watch` opens on training)
            self.DEFAULT_MODE = settings.mode
        super().__init__(watch_css=settings.watch_css)
        self.settings = settings
        self.session = Session()
        self.sentence: str = settings.sentence
        self.lm: LoadedModel | None = None
        self.corpus = None  # engine Corpus when --corpus was given (loaded by the boot worker)
        self.device = None  # torch.device once the engine is loaded
        self.device_label: str = "…"
        self.trainer = None  # the live Trainer, owned by the training screen
        self.watcher = None  # follows settings.watch once the engine is up
        self._preloaded = lm

    # ------------------------------------------------------------------- startup
    def on_mount(self) -> None:
        self.sub_title = LOADING_TEXT
        if self.settings.start_engine:
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
        import torch  # noqa: F401  (the slow part: seconds on a cold start)

        from .engine.device import describe_device, pick_device

        self._set_threads(None)  # until the model is known: as for a small one
        if worker.is_cancelled:
            return
        settings = self.settings
        device = pick_device(settings.device)
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
        if settings.corpus:
            from .engine.corpus import load_corpus

            self.post_message(EngineStatus(f"reading corpus {settings.corpus}…"))
            corpus = load_corpus(settings.corpus)
        if worker.is_cancelled:
            return
        self.post_message(EngineStatus("loading model…"))
        if corpus is not None and settings.model is None:
            lm = fresh_model(corpus, "lstm", device)
            note = f"fresh untrained LSTM for corpus {corpus.name}: press 2 to train it"
        else:
            from .engine.checkpoint import load_model

            lm = load_model(settings.model or DEFAULT_MODEL, device)
        self._set_threads(lm)
        self.post_message(ModelReady(lm, label, corpus=corpus, boot=True, note=note))

    def _set_threads(self, lm) -> None:
        """torch's CPU threads for this model (engine.threads), leaving a core to the event loop:
        with every core in torch's pool a busy trainer and the UI fight for them. --threads wins."""
        from .engine.threads import ThreadChoice, apply_threads, choose_threads, usable_cpus

        c = lm.config if lm is not None else None
        requested = self.settings.threads
        choice = choose_threads(c.hidden if c else 64, 32, c.cell if c else "lstm", requested=requested)
        if requested is None and choice.threads >= usable_cpus() > 1:
            choice = ThreadChoice(usable_cpus() - 1, choice.reason + ", one left to the screen")
        apply_threads(choice)

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
        if ready and self.settings.watching and self.watcher is None:
            self._start_watcher()

    def _start_watcher(self) -> None:
        """Follow ``settings.watch`` (and the runs that appear in ``settings.watch_roots``) with a
        ``runs.Watcher`` polling in its own thread; the selected run's newest checkpoint is
        loaded there and installed without a notification (``ModelReady(quiet=True)``)."""
        from .engine.checkpoint import load_model
        from .runs import ModelLoaded, Watcher

        def report(event) -> None:  # on the watcher's thread
            if isinstance(event, ModelLoaded):
                self.post_message(ModelReady(event.model, quiet=True))

        settings = self.settings
        watcher = Watcher(list(settings.watch), roots=list(settings.watch_roots), report=report,
                          load=lambda directory: load_model(directory, self.device or "auto"),
                          poll_s=settings.watch_poll_s)
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
        if self.trainer is not None:  # a training snapshot: record ρ, whatever screen is shown
            self._sample_radius(lm)

    @work(thread=True, exit_on_error=False, group="radius")
    def _sample_radius(self, lm) -> None:
        from .engine.probes import spectrum

        step = int((lm.meta.get("metrics") or {}).get("step", -1))
        spec = spectrum(lm)
        self.post_message(RadiusSample(step, float(spec.radius[spec.main])))

    def on_radius_sample(self, message: RadiusSample) -> None:
        if self.session.add_radius(message.step, message.radius):
            self.radius_samples += 1

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
        if isinstance(watched, dict):  # a watched checkpoint or a training snapshot: which run, which step
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
        self._set_threads(lm)
        if not get_current_worker().is_cancelled:
            self.post_message(ModelReady(lm))

    def mode_screen(self, mode: str):
        """The screen of a mode, once the mode has been shown (else None)."""
        try:
            stack = self.get_screen_stack(mode) if mode in self.MODES else []
        except KeyError:  # a mode never shown has no stack yet
            return None
        for screen in stack:
            if getattr(screen, "MODE", None) == mode:
                return screen
        return None

    # ------------------------------------------------------------------- actions
    async def action_quit(self) -> None:
        """ctrl+q: the training screen asks first while a run's weights were never saved."""
        training = self.mode_screen("training")
        if training is None or not training.confirm_quit():
            self.exit()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_train(self) -> None:
        """Switch to the training screen and start (or pause) training there."""
        self.run_on_screen("training", "action_toggle_training")

    def action_save_checkpoint(self) -> None:
        self.run_on_screen("training", "action_save")

    def action_change_sentence(self) -> None:
        self.run_on_screen("stepper", "action_edit")

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

    def run_on_screen(self, mode: str, method: str, *args: Any) -> None:
        """Go to a mode and call one of its screen's methods once it is shown (the palette's
        "Train", "Run experiment: …")."""
        self.switch_mode(mode)

        def call() -> None:
            screen = self.mode_screen(mode)
            fn = getattr(screen, method, None)
            if callable(fn):
                fn(*args)

        self.call_after_refresh(call)


def fresh_model(corpus, cell: str, device) -> "LoadedModel":
    """An untrained model for a corpus's vocabulary (seeded: the same on every start)."""
    from .engine.model import LoadedModel, ModelConfig, build_model

    config = ModelConfig(vocab_size=len(corpus.vocab), cell=cell)
    model = build_model(config, seed=0, device=device)
    meta = {"corpus": corpus.name, "level": corpus.vocab.level}
    if corpus.categories:
        meta["categories"] = dict(corpus.categories)
    return LoadedModel(model=model, vocab=corpus.vocab, meta=meta)


def run_app(settings: AppSettings) -> None:
    """Entry point used by the `rnn-tui` command."""
    RnnTuiApp(settings).run()
