"""Mode 6, Compare: the vanilla-vs-LSTM playground.

A vanilla RNN, an LSTM and a GRU are trained on the same subject-verb agreement corpus with
the same budget (the engine's `agreement` experiment settings: word level, the balanced
corpus, where only the subject says which verb is right), or the bundled models are loaded.
Then one sentence is read by all three: at the verb, each model's probability of the right
form (was / were) is drawn as a confidence bar, while the distractor clause between subject
and verb grows from 0 to 30+ words (+/- or ←→). Under it, accuracy against distractor length
per cell, and the parameter count of each cell at a few sizes (RNN ~ n², GRU ~ 3n², LSTM ~ 4n²).

Training and every probe run in thread workers.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.console import Group, RenderableType
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Static
from textual.worker import Worker, get_current_worker

from ..render.bars import ConfidenceBars, bar
from . import LOADING_TEXT, ModeBar, report_worker_error
from .dynamics import Chart
from .stepper import Panel

CELLS = ("rnn", "lstm", "gru")
CELL_COLORS = {"rnn": (250, 100, 100), "lstm": (86, 156, 255), "gru": (96, 206, 120)}
CELL_NAMES = {"rnn": "vanilla RNN", "lstm": "LSTM", "gru": "GRU"}
HIDDEN_SIZES = (32, 64, 128)
MAX_DISTRACTOR = 40
SUBJECT_STYLE = "bold #ffd75f"
VERB_STYLE = "bold reverse #ffd75f"


def load_bundled(name: str):
    """The bundled default model `name` on the CPU (tests replace this)."""
    from ..engine.checkpoint import load_model

    return load_model(name, device="cpu")


def _hex(rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def short_count(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


# ------------------------------------------------------------------------ messages
@dataclass
class CompareProgress(Message):
    fraction: float
    text: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, CompareProgress)


@dataclass
class CompareModels(Message):
    """Three models (trained here or loaded), their agreement curves, how they came to be."""

    models: dict
    curves: dict
    source: str
    params: dict = field(default_factory=dict)
    stopped: bool = False


@dataclass
class SentenceScored(Message):
    key: tuple
    item: Any
    p_right: dict


class CompareScreen(Screen):
    """Vanilla RNN vs LSTM vs GRU on subject-verb agreement across a growing distractor."""

    MODE, KEY, LABEL, SHORT = "compare", "6", "Compare", "Comp"
    TOOLTIP = "Vanilla RNN vs LSTM vs GRU on subject-verb agreement"
    AUTO_FOCUS = ""
    PANEL_HELP = {
        "sentence": "One agreement sentence: the subject (lit), a distractor clause whose nouns all have the\n"
                    "other number, then the verb slot. +/- or ←→ grow or shrink the distractor; n: another; p: number.",
        "confidence": "Each model's probability of the right verb form (was/were) at the verb: green above 50%,\n"
                      "red below. The vanilla RNN loses the subject as the clause grows; the LSTM keeps it.",
        "accuracy": "Accuracy over minimal pairs at each distractor length, per cell, trained with the same\n"
                    "budget; the parameter counts show what each cell costs: RNN : GRU : LSTM = 1 : 3 : 4.",
    }
    BINDINGS = [
        Binding("right,plus,equals_sign", "distractor(1)", "Longer", id="compare.longer", key_display="→/+",
                tooltip="Grow the distractor clause by one word"),
        Binding("left,minus", "distractor(-1)", "Shorter", id="compare.shorter", key_display="←/-",
                tooltip="Shrink the distractor clause by one word"),
        Binding("n", "new_sentence", "New", id="compare.new", tooltip="Another sentence of the same shape"),
        Binding("p", "flip_number", "Sg/Pl", id="compare.number", show=False,
                tooltip="Switch the subject between singular and plural"),
        Binding("t", "train", "Train", id="compare.train",
                tooltip="Train RNN, LSTM and GRU on agreement with the same budget (escape stops)"),
        Binding("b", "load_bundled", "Bundled", id="compare.bundled", show=False,
                tooltip="Use the bundled models (trained on the grammar corpus) instead"),
        Binding("H", "cycle_hidden", "Size", id="compare.hidden", show=False,
                tooltip="Hidden size of the next training: 32, 64, 128"),
        Binding("escape", "stop", "Stop", id="compare.stop", show=False,
                tooltip="Stop the training (the models keep what they learned)"),
    ]
    DEFAULT_CSS = """
    CompareScreen #cmp-body { height: 1fr; padding: 0 1; }
    CompareScreen #cmp-info { height: 1; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    CompareScreen #cmp-sentence { height: auto; margin-top: 1; }
    CompareScreen #cmp-bars { height: auto; margin-top: 1; }
    CompareScreen #cmp-lower { height: 1fr; margin-top: 1; }
    CompareScreen #cmp-chart { width: 1fr; height: 1fr; min-height: 6; }
    CompareScreen #cmp-params { width: 30; height: 1fr; padding-left: 1; }
    """

    # Settings overrides for the agreement training (tests make it tiny).
    overrides: dict = {}

    def __init__(self) -> None:
        super().__init__()
        self.distractor = 4
        self.seed = 0
        self.plural = True
        self.hidden: int | None = None  # None: the experiment's default
        self.models: dict = {}
        self.curves: dict = {}
        self.params: dict = {}
        self.source = ""
        self.item = None
        self.p_right: dict = {}
        self.training = False
        self.progress: tuple[float, str] = (0.0, "")
        self._stop: threading.Event | None = None
        self._score_key: tuple | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield ModeBar("compare")
        with Vertical(id="cmp-body"):
            yield Static(LOADING_TEXT, id="cmp-info")
            yield Panel(self._build_sentence, id="cmp-sentence")
            yield Panel(self._build_bars, id="cmp-bars")
            with Horizontal(id="cmp-lower"):
                yield Chart(self._draw_accuracy, id="cmp-chart")
                yield Panel(self._build_params, id="cmp-params")
        yield Footer()

    def on_mount(self) -> None:
        self.watch(self.app, "engine_ready", self._engine_ready, init=False)
        saved = self.app.session.compare
        if saved:
            self.models, self.curves, self.params, self.source = saved
        self._engine_ready()

    def on_unmount(self) -> None:
        if self._stop is not None:
            self._stop.set()

    def _engine_ready(self, _value=None) -> None:
        self._info()
        if not getattr(self.app, "engine_ready", False):
            return
        if not self.params:
            self._params_worker()
        self._score()

    # ---------------------------------------------------------------- workers
    def _settings(self):
        from ..engine.experiments import get_experiment

        exp = get_experiment("agreement")
        over = dict(self.overrides)
        if self.hidden is not None:
            over["hidden"] = self.hidden
        return exp.settings(over)

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare-params")
    def _params_worker(self) -> None:
        from ..engine.experiments import recurrent_parameters

        s = self._settings()
        sizes = tuple(sorted(set(s.param_sizes) | {s.hidden}))
        table = {c: {h: recurrent_parameters(c, h, h) for h in sizes} for c in CELLS}
        self.post_message(CompareModels({}, {}, "", {"table": table, "hidden": s.hidden}))

    def action_train(self) -> None:
        if not getattr(self.app, "engine_ready", False):
            self.notify("the engine is still loading; try again in a moment", severity="warning")
            return
        if self.training:
            self.notify("training already: escape stops it", severity="warning", timeout=3)
            return
        self.training = True
        self._stop = threading.Event()
        self.progress = (0.0, "starting…")
        self._info()
        self.refresh_bindings()
        self._train_worker(self._stop)

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare-train")
    def _train_worker(self, stop: threading.Event) -> None:
        from ..engine.experiments import train_agreement_models

        s = self._settings()
        cells = tuple(c for c in s.cells if c in CELLS) or CELLS
        s = dataclasses.replace(s, cells=cells, device="cpu")
        out = train_agreement_models(s, stop, lambda f, msg: self.post_message(CompareProgress(f, msg)))
        budget = f"{s.steps} steps each"
        short = [f"{c} stopped at {out.steps[c]}" for c in cells if 0 < out.steps.get(c, 0) < s.steps]
        missing = [c for c in cells if c not in out.steps]
        if short or missing:  # stopped part-way: say how far each model got
            budget = "; ".join([budget] + short + ([f"no {', '.join(missing)}"] if missing else []))
        source = f"trained here: H={s.hidden} {s.level}, {s.corpus} agreement · {budget}"
        self.post_message(CompareModels(out.models, out.curves, source,
                                        {"whole": {c: out.parameters[c] for c in out.models}},
                                        stopped=stop.is_set()))

    def action_load_bundled(self) -> None:
        if not getattr(self.app, "engine_ready", False):
            return
        self.progress = (0.0, "loading the bundled models…")
        self._bundled_worker()

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare-train")
    def _bundled_worker(self) -> None:
        from ..engine.experiments import agreement_curve

        s = self._settings()
        models, curves, params = {}, {}, {}
        for cell in CELLS:
            lm = load_bundled(cell)
            models[cell] = lm
            params[cell] = lm.config.parameter_count()
            curves[cell] = agreement_curve(lm, s.distractors, s.pairs, seed=1000 + s.seed)
        self.post_message(CompareModels(models, curves, "bundled grammar models (char level; never trained "
                                        "on these clauses)", {"whole": params}))

    def on_compare_progress(self, message: CompareProgress) -> None:
        self.progress = (message.fraction, message.text)
        self._info()

    def on_compare_models(self, message: CompareModels) -> None:
        if "table" in message.params:
            self.params.update(message.params)
            self.query_one("#cmp-params", Panel).refresh(layout=True)
            if not message.models:
                return
        self.training = False
        self._stop = None
        self.refresh_bindings()
        if message.models:
            self.models = message.models
            self.curves = message.curves
            self.source = message.source
            self.params["whole"] = message.params.get("whole", {})
            self.app.session.compare = (self.models, self.curves, self.params, self.source)
        if message.stopped:
            self.notify("training stopped: the models keep what they learned so far", timeout=3)
        self._score_key = None
        self._info()
        self._score()
        self.query_one("#cmp-chart", Chart).refresh()
        self.query_one("#cmp-params", Panel).refresh(layout=True)

    def _score(self) -> None:
        if not getattr(self.app, "engine_ready", False):
            return
        key = (self.distractor, self.seed, self.plural, tuple(self.models), id(self.models))
        if key == self._score_key:
            return
        self._score_key = key
        self._score_worker(dict(self.models), self.distractor, self.seed, self.plural, key)

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare-score")
    def _score_worker(self, models: dict, d: int, seed: int, plural: bool, key: tuple) -> None:
        from ..engine.corpus import agreement_items
        from ..engine.experiments import continuation_logprobs, flip_number

        item = agreement_items(d, 1, seed=seed)[0]  # a singular subject, every clause noun plural
        if item.plural != plural:
            item = flip_number(item)  # p gives the minimal pair: the same words in the other number
        p_right = {}
        for cell, lm in models.items():
            sep = " " if lm.vocab.level == "char" else ""
            prefix = [". " + item.prefix]
            right = continuation_logprobs(lm, prefix, [item.correct + sep])[0]
            wrong = continuation_logprobs(lm, prefix, [item.wrong + sep])[0]
            p_right[cell] = float(1.0 / (1.0 + math.exp(max(-700.0, min(700.0, wrong - right)))))
        if not get_current_worker().is_cancelled:
            self.post_message(SentenceScored(key, item, p_right))

    def on_sentence_scored(self, message: SentenceScored) -> None:
        if message.key != self._score_key:
            return
        self.item = message.item
        self.p_right = message.p_right
        self.query_one("#cmp-sentence", Panel).refresh(layout=True)
        self.query_one("#cmp-bars", Panel).refresh(layout=True)
        self.query_one("#cmp-chart", Chart).refresh()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if report_worker_error(self, event) and event.worker.group == "compare-train":
            self.training = False
            self._stop = None
            self.refresh_bindings()
            self._info()

    # ---------------------------------------------------------------- actions
    def action_distractor(self, delta: int) -> None:
        self.distractor = max(0, min(MAX_DISTRACTOR, self.distractor + delta))
        self._score()
        self._refresh_sentence_soon()

    def action_new_sentence(self) -> None:
        self.seed += 1
        self._score()

    def action_flip_number(self) -> None:
        self.plural = not self.plural
        self._score()

    def action_cycle_hidden(self) -> None:
        current = self.hidden if self.hidden is not None else self.params.get("hidden", 64)
        i = HIDDEN_SIZES.index(current) if current in HIDDEN_SIZES else 0
        self.hidden = HIDDEN_SIZES[(i + 1) % len(HIDDEN_SIZES)]
        self.notify(f"the next training (t) uses H={self.hidden}", timeout=2)
        self._info()

    def action_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
            self.progress = (self.progress[0], "stopping…")
            self._info()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.training
        return True

    def _refresh_sentence_soon(self) -> None:
        self.query_one("#cmp-chart", Chart).refresh()

    # ---------------------------------------------------------------- drawing
    def _info(self) -> None:
        info = self.query_one("#cmp-info", Static)
        if not getattr(self.app, "engine_ready", False):
            info.update(LOADING_TEXT)
            return
        t = Text(no_wrap=True, overflow="ellipsis")
        if self.training:
            frac, msg = self.progress
            t.append("training ", style="bold yellow")
            t.append(bar(frac, 14), style="yellow")
            t.append(f" {frac * 100:3.0f}% ", style="bold")
            t.append(msg + " · escape stops", style="dim")
        elif self.models:
            t.append(self.source, style="dim")
        else:
            size = f" H={self.hidden}" if self.hidden is not None else ""
            t.append(f"no models yet: t trains RNN, LSTM and GRU{size} on agreement (same budget), "
                     "b loads the bundled ones", style="bold")
        info.update(t)

    def _build_sentence(self, width: int, height: int) -> RenderableType:
        item = self.item
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(f"distractor {self.distractor} word{'s' if self.distractor != 1 else ''}", style="bold")
        head.append(" (←→) · subject ", style="dim")
        head.append("plural" if self.plural else "singular", style="bold")
        head.append(" (p) · n: another", style="dim")
        if item is None:
            return Group(head, Text("…", style="dim"))
        words = item.prefix.split()
        line = Text(overflow="fold")
        for i, w in enumerate(words):
            if i:
                line.append(" ")
            if i == 1:
                line.append(w, style=SUBJECT_STYLE)
            elif i >= 2:
                line.append(w, style="#8a8a8a")
            else:
                line.append(w)
        line.append(" ")
        line.append(f"{item.correct} / {item.wrong} ?", style=VERB_STYLE)
        return Group(head, line)

    def _build_bars(self, width: int, height: int) -> RenderableType:
        if not self.models:
            return Text("(no models: t trains them, b loads the bundled ones)", style="dim")
        item = self.item
        right = item.correct if item is not None else "?"
        rows = []
        whole = self.params.get("whole", {})
        for cell in CELLS:
            if cell not in self.models:
                continue
            lm = self.models[cell]
            label = f"{cell:<4} H={lm.config.hidden} {short_count(whole.get(cell, 0)):>6}"
            rows.append((label, self.p_right.get(cell, float("nan")), f"P({right})"))
        head = Text("P(right verb form) at the verb", style="bold")
        return Group(head, ConfidenceBars(rows, width=width))

    def _draw_accuracy(self, plt, width: int, height: int) -> None:
        plt.title("accuracy by distractor length (minimal pairs)")
        plt.xlabel("distractor words")
        if not self.curves:
            return
        hi = 0
        for cell in CELLS:
            c = self.curves.get(cell)
            if c is None:
                continue
            d = np.asarray(c.distractors, dtype=float)
            a = np.asarray(c.accuracy, dtype=float)
            ok = np.isfinite(a)
            if ok.sum() >= 2:
                plt.plot(d[ok].tolist(), a[ok].tolist(), color=CELL_COLORS[cell], marker="braille")
            elif ok.any():
                plt.scatter(d[ok].tolist(), a[ok].tolist(), color=CELL_COLORS[cell], marker="•")
            hi = max(hi, int(d.max()) if len(d) else 0)
        plt.ylim(0, 1.05)
        plt.yticks([0.0, 0.5, 1.0], ["0", "0.5", "1"])
        if hi > 0:
            step = max(1, int(math.ceil(hi / max(2, (width - 8) // 8))))
            ticks = list(range(0, hi + 1, step))
            plt.xticks(ticks, [str(x) for x in ticks])
        plt.horizontal_line(0.5, color=(110, 110, 110))
        if 0 <= self.distractor <= max(hi, 1):
            plt.vertical_line(self.distractor, color=(255, 215, 95))

    def _build_params(self, width: int, height: int) -> RenderableType:
        t = Text()
        t.append("recurrent parameters\n", style="bold")
        t.append("one layer, input = H\n", style="dim")
        table = self.params.get("table")
        if not table:
            return t
        sizes = sorted(next(iter(table.values())))
        t.append(f"{'H':>4} " + " ".join(f"{c:>6}" for c in CELLS) + "\n", style="dim")
        for h in sizes:
            t.append(f"{h:>4} ")
            for c in CELLS:
                t.append(f"{short_count(table[c][h]):>6} ", style=_hex(CELL_COLORS[c]))
            t.append("\n")
        # With input = H each gate costs 2n² (W_ih and W_hh): the seeds' n² : 3n² : 4n² ratio.
        t.append("RNN 2n² · GRU 6n² · LSTM 8n²\n", style="dim")
        for cell in CELLS:
            t.append("━ ", style=_hex(CELL_COLORS[cell]))
            t.append(f"{CELL_NAMES[cell]}  ")
        return t
