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
from dataclasses import dataclass

import numpy as np
from rich.console import Group, RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from ..engine.config import CELL_NAMES, CELLS, GATES
from ..render.bars import ConfidenceBars, bar
from ..render.colors import MODEL_RGB as CELL_COLORS, hex_code as _hex
from ..widgets.chart import Chart
from ..widgets.panel import Panel
from .base import LOADING_TEXT, KeyedTask, ModeScreen, emit, stop_event
from .keymap import keymap

HIDDEN_SIZES = (32, 64, 128)
SUBJECT_STYLE = "bold #ffd75f"
VERB_STYLE = "bold reverse #ffd75f"


def short_count(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def recurrent_count(config) -> int:
    """Weights and biases of a model's recurrent layers (what the parameter table counts)."""
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[config.cell]
    h = config.hidden
    return sum(gates * (h * (config.embed if i == 0 else h) + h * h + 2 * h) for i in range(config.layers))


@dataclass
class CompareModels:
    """Three models (trained here or loaded), their agreement curves, how they came to be
    (kept in the app's session, so leaving the screen keeps them)."""

    models: dict
    curves: dict
    source: str
    stopped: bool = False


class CompareScreen(ModeScreen):
    """Vanilla RNN vs LSTM vs GRU on subject-verb agreement across a growing distractor."""

    MODE, KEY, LABEL, SHORT = "compare", "6", "Compare", "Comp"
    TOOLTIP = "Vanilla RNN vs LSTM vs GRU on subject-verb agreement"
    FOLLOWS = ("engine_ready",)  # its own three models, not the app's
    NEEDS_MODEL = False
    PANEL_HELP = {
        "sentence": "One agreement sentence: the subject (lit), a distractor clause whose nouns all have the\n"
                    "other number, then the verb slot. +/- or ←→ grow or shrink the distractor; n: another; p: number.",
        "confidence": "Each model's probability of the right verb form (was/were) at the verb: green above 50%,\n"
                      "red below. The vanilla RNN loses the subject as the clause grows; the LSTM keeps it.",
        "accuracy": "Accuracy over minimal pairs at each distractor length, per cell, trained with the same\n"
                    "budget; the parameter counts show what each cell costs: RNN : GRU : LSTM = 1 : 3 : 4.",
    }
    BINDINGS = keymap("""
        right,plus,equals_sign = →/+ | distractor(1)  | Longer   | compare.longer  | Grow the distractor clause by one word
        left,minus = ←/-             | distractor(-1) | Shorter  | compare.shorter | Shrink the distractor clause by one word
        n                            | new_sentence   | New      | compare.new     | Another sentence of the same shape
        p                            | flip_number    | -Sg/Pl   | compare.number  | Switch the subject between singular and plural
        t                            | train          | Train    | compare.train   | Train RNN, LSTM and GRU on agreement with the same budget (escape stops)
        b                            | load_bundled   | -Bundled | compare.bundled | Use the bundled models (trained on the grammar corpus) instead
        H                            | cycle_hidden   | -Size    | compare.hidden  | Hidden size of the next training: 32, 64, 128
        escape                       | stop           | -Stop    | compare.stop    | Stop the training (the models keep what they learned)
        """)
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
        self._runs = 0  # how many times models were trained or loaded here

    def compose_body(self) -> ComposeResult:
        with Vertical(id="cmp-body"):
            yield Static(LOADING_TEXT, id="cmp-info")
            yield Panel(self._build_sentence, id="cmp-sentence")
            yield Panel(self._build_bars, id="cmp-bars")
            with Horizontal(id="cmp-lower"):
                yield Chart(self._draw_accuracy, fresh_figure=True, id="cmp-chart")
                yield Panel(self._build_params, id="cmp-params")

    def on_mount(self) -> None:
        self.models_task = KeyedTask(self, "models", self._compute_models, self._models_ready,
                                     self._models_failed)
        self.params_task = KeyedTask(self, "params", self._compute_params, self._params_ready)
        self.scorer = KeyedTask(self, "score", self._compute_score, self._scored)
        saved: CompareModels | None = self.app.session.compare
        if saved is not None:
            self._install(saved)

    def on_unmount(self) -> None:
        if self._stop is not None:
            self._stop.set()

    def show_waiting(self, text: str | None) -> None:
        self._info()

    def inputs_changed(self) -> None:
        self.params_task.request(self.hidden, self._settings())
        self._score()

    # ---------------------------------------------------------------- workers
    def _settings(self):
        from ..engine.experiments import get_experiment

        exp = get_experiment("agreement")
        over = dict(self.overrides)
        if self.hidden is not None:
            over["hidden"] = self.hidden
        return exp.settings(over)

    def _compute_params(self, s) -> dict:
        from ..engine.experiments import recurrent_parameters

        sizes = tuple(sorted(set(s.param_sizes) | {s.hidden}))
        return {"table": {c: {h: recurrent_parameters(c, h, s.embed) for h in sizes} for c in CELLS},
                "hidden": s.hidden, "embed": s.embed, "max_distractor": int(max(s.distractors))}

    def _params_ready(self, key, params: dict) -> None:
        self.params.update(params)
        self.query_one("#cmp-params", Panel).refresh(layout=True)

    def action_train(self) -> None:
        if not self.app.engine_ready:
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
        self._runs += 1
        self.models_task.request(("train", self._runs), "train", self._settings(), self._stop)

    def action_load_bundled(self) -> None:
        if not self.app.engine_ready:
            return
        self.progress = (0.0, "loading the bundled models…")
        self._runs += 1
        self.models_task.request(("bundled", self._runs), "bundled", self._settings(), None)

    def _compute_models(self, kind: str, s, stop: threading.Event | None) -> CompareModels:
        """Worker thread: train the three cells on agreement (progress as it goes), or load
        the bundled ones; then each one's accuracy against the distractor length."""
        if kind == "bundled":
            from ..engine.experiments import agreement_curve

            models, curves = {}, {}
            for cell in CELLS:
                lm = self.app.session.bundled(cell)
                models[cell] = lm
                curves[cell] = agreement_curve(lm, s.distractors, s.pairs, seed=1000 + s.seed)
            return CompareModels(models, curves, "bundled grammar models (char level; never trained "
                                 "on these clauses)")
        from ..engine.experiments import train_agreement_models

        cells = tuple(c for c in s.cells if c in CELLS) or CELLS
        s = dataclasses.replace(s, cells=cells, device="cpu")
        stop = stop_event(stop)
        out = train_agreement_models(s, stop, lambda f, msg: emit(("progress", f, msg)))
        budget = f"{s.steps} steps each"
        short = [f"{c} stopped at {out.steps[c]}" for c in cells if 0 < out.steps.get(c, 0) < s.steps]
        missing = [c for c in cells if c not in out.steps]
        if short or missing:  # stopped part-way: say how far each model got
            budget = "; ".join([budget] + short + ([f"no {', '.join(missing)}"] if missing else []))
        source = f"trained here: H={s.hidden} {s.level}, {s.corpus} agreement · {budget}"
        return CompareModels(out.models, out.curves, source,
                             stopped=stop.is_set())

    def _models_ready(self, key, value) -> None:
        if isinstance(value, tuple):  # ("progress", fraction, text)
            self.progress = value[1:]
            self._info()
            return
        self._end_training()
        if value.models:
            self.app.session.compare = value
            self._install(value)
        if value.stopped:
            self.notify("training stopped: the models keep what they learned so far", timeout=3)
        self._info()
        self._score()
        self.query_one("#cmp-chart", Chart).refresh()
        self.query_one("#cmp-params", Panel).refresh(layout=True)

    def _install(self, saved: CompareModels) -> None:
        self.models, self.curves, self.source = saved.models, saved.curves, saved.source

    def _models_failed(self, key, error: BaseException) -> None:
        self._end_training()
        self._info()

    def _end_training(self) -> None:
        self.training = False
        self._stop = None
        self.refresh_bindings()

    def _score(self) -> None:
        if not self.app.engine_ready:
            return
        key = (self.distractor, self.seed, self.plural, tuple(self.models), id(self.models))
        self.scorer.request(key, dict(self.models), self.distractor, self.seed, self.plural)

    def _compute_score(self, models: dict, d: int, seed: int, plural: bool):
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
        return item, p_right

    def _scored(self, key, value) -> None:
        self.item, self.p_right = value
        self.query_one("#cmp-sentence", Panel).refresh(layout=True)
        self.query_one("#cmp-bars", Panel).refresh(layout=True)
        self.query_one("#cmp-chart", Chart).refresh()

    # ---------------------------------------------------------------- actions
    def action_distractor(self, delta: int) -> None:
        top = self.max_distractor()
        if self.distractor + delta > top:
            self.notify(f"{top} distractor words is the longest the accuracy chart measures", timeout=2)
        self.distractor = max(0, min(top, self.distractor + delta))
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

    def max_distractor(self) -> int:
        """The longest distractor the accuracy curves measure (the slider stops there too)."""
        lengths = [int(np.max(c.distractors)) for c in self.curves.values() if len(c.distractors)]
        return max(lengths) if lengths else int(self.params.get("max_distractor", 30))

    def _refresh_sentence_soon(self) -> None:
        self.query_one("#cmp-chart", Chart).refresh()

    # ---------------------------------------------------------------- drawing
    def _info(self) -> None:
        info = self.query_one("#cmp-info", Static)
        if not self.app.engine_ready:
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
            t.append(f"t trains RNN, LSTM, GRU{size} on agreement (same budget) · b: the bundled ones",
                     style="bold")
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
        for cell in CELLS:
            if cell not in self.models:
                continue
            c = self.models[cell].config
            # The table's count (recurrent weights and biases), for this model's own sizes.
            label = f"{cell:<4} H={c.hidden} {short_count(recurrent_count(c)):>6}"
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
        table = self.params.get("table")
        if not table:
            return t
        t.append(f"W_ih W_hh biases; input E={self.params.get('embed')}\n", style="dim")
        sizes = sorted(next(iter(table.values())))
        t.append(f"{'H':>4} " + " ".join(f"{c:>6}" for c in CELLS) + "\n", style="dim")
        for h in sizes:
            t.append(f"{h:>4} ")
            for c in CELLS:
                t.append(f"{short_count(table[c][h]):>6} ", style=_hex(CELL_COLORS[c]))
            t.append("\n")
        # gates x H x (E + H + 2): one gate for the RNN, three for the GRU, four for the LSTM.
        t.append(f"H·(E+H+2) per gate; {':'.join(str(GATES[c]) for c in CELLS)}\n", style="dim")
        for cell in CELLS:
            t.append("━ ", style=_hex(CELL_COLORS[cell]))
            t.append(f"{CELL_NAMES[cell]}  ")
        return t
