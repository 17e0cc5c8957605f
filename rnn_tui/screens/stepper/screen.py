"""Screen 1, the stepper: read a sentence one token at a time and look at everything.

Panels: the sentence (current token highlighted, word categories underneath), the agreement
test the sentence is (the subject's number, P(was) against P(were) at the verb for this model
and the bundled cells; p flips the subject's number), the hidden state heatmap (time along x,
units along y) with a "memory" row under it, the next-token probabilities, and for LSTM/GRU
the gates and cell state at the current step.
All torch work (trace, agreement, Jacobian norms) runs in a thread worker; the screen only
renders the numpy arrays it gets back. What it measures for the concepts in ? (the memory
row's reach, two histories that leave nearly the same state) goes to `session.facts`.
"""

from __future__ import annotations

import numpy as np
from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Static

from ...engine.config import BUNDLED_MODELS as BUNDLED, MAX_TRACE_TOKENS
from ...render.colors import legend
from ...render.heatmap import Heatmap, token_label, unit_order
from ...widgets.panel import Panel
from ..base import LOADING_TEXT, KeyedTask, ModeScreen
from .draw import (DIM, MEMORY_FLOOR, _Bars, agreement_view, cell_width_for, dense_heat_row, memory_reach,
                   memory_row, token_strip)
from ..keymap import keymap

SORT_MODES = ("index", "activation", "variance")
SORT_LABEL = {"index": "unit index", "activation": "|h| at this step", "variance": "variance over time"}
GATE_ROWS = {"lstm": ("i", "f", "o", "c"), "gru": ("r", "z", "n")}
GATE_NAMES = {"i": "input", "f": "forget", "o": "output", "g": "candidate", "c": "cell",
              "r": "reset", "z": "update", "n": "candidate"}
TOP_K = 10
CANNOT_READ = "cannot read this sentence with this model: press e to edit it"

# -------------------------------------------------------------------- the screen
class StepperScreen(ModeScreen):
    MODE, KEY, LABEL, SHORT = "stepper", "1", "Stepper", "Step"
    TOOLTIP = "Step through a sentence: hidden states, predictions, gates"
    PANEL_HELP = {
        "sentence": "The text as the model reads it, one token per step; the current token is lit.\n"
                    "Under it, word categories when the model's corpus has them (the grammar does).",
        "agreement": "The sentence as a test: its subject's number, and at the verb P(was) against P(were)\n"
                     "for this model and the bundled RNN, LSTM, GRU. p flips the subject, v goes to the verb.",
        "hidden state": "h_t for every unit (rows) after every token (columns): red > 0, blue < 0.\n"
                        "Sort rows by |h| now or by variance over time with s; scroll with ↑↓.",
        "memory": "How much the current state still depends on the state after each earlier token,\n"
                  "||∂h_t/∂h_k|| relative to now, log scale: the fading to dark is forgetting.",
        "next token": "The model's top guesses for the token after the current one.\n"
                      "The token that actually comes next is marked, with its loss in nats.",
        "gates": "LSTM input/forget/output gates (0..1) and cell state; GRU reset/update gates.\n"
                 "Units in the heatmap's order; a forget gate near 1 keeps the cell's memory.",
    }
    BINDINGS = keymap("""
        left,h = ←  | step(-1)    | Prev         | stepper.prev       | Step back one token
        right,l = → | step(1)     | Next         | stepper.next       | Step forward one token
        home        | jump(0)     | -First       | stepper.first      | Jump to the first token
        end         | jump(-1)    | -Last        | stepper.last       | Jump to the last token
        e           | edit        | Edit         | stepper.edit       | Edit the sentence
        p           | flip_number | Plural/sing. | stepper.flip       | Flip the subject's number (cat <-> cats, and the verb with it): the agreement twin
        v           | jump_verb   | -Verb        | stepper.verb       | Go to the step that decides the verb's number (char level: its 'w')
        s           | cycle_sort  | Sort         | stepper.sort       | Sort units: by index, by |activation| at this step, by variance over time
        up,k        | scroll(-1)  | -Scroll up   | stepper.up         | Scroll the heatmap up one unit
        down,j      | scroll(1)   | -Scroll down | stepper.down       | Scroll the heatmap down one unit
        pageup      | page(-1)    | -Page up     | stepper.pageup     | Scroll the heatmap up a page
        pagedown    | page(1)     | -Page down   | stepper.pagedown   | Scroll the heatmap down a page
        [           | layer(-1)   | -Layer-      | stepper.layer_prev | Show the layer below (stacked models)
        ]           | layer(1)    | -Layer+      | stepper.layer_next | Show the layer above (stacked models)
        escape      | cancel_edit | -Cancel      | stepper.cancel     | Leave the sentence editor without changes
        """)

    def __init__(self) -> None:
        super().__init__()
        self.trace = None
        self.memory: dict = {}
        self.agreement: list | None = None  # [(name, label, VerbAgreement | None, error)] for the sentence on show
        self.step = 0
        self.layer_index = 0  # index into trace.layers
        self.sort = "index"
        self.row_offset = 0
        self._sentence: str | None = None  # the sentence of the trace on show
        self.heat_rows = 10  # units the heatmap shows at its current size (page up/down moves this many)
        self._order: np.ndarray | None = None
        self._notified: str | None = None  # sentence whose skipped characters were reported

    # ---------------------------------------------------------------- compose
    def compose_body(self) -> ComposeResult:
        with Vertical(id="stepper-body"):
            yield Panel(self._build_tokens, id="stepper-tokens")
            yield Input(id="sentence-input", placeholder="type a sentence, enter to read it, escape to cancel")
            yield Panel(self._build_agreement, id="stepper-agreement")
            with Horizontal(id="stepper-main"):
                yield Panel(self._build_heat, id="stepper-heat")
                with Vertical(id="stepper-side"):
                    yield Panel(self._build_probs, id="stepper-probs")
                    yield Panel(self._build_gates, id="stepper-gates")
            yield Static(LOADING_TEXT, id="stepper-loading")

    def on_mount(self) -> None:
        inp = self.query_one("#sentence-input", Input)
        inp.cursor_blink = self.app.settings.cursor_blink
        inp.display = False
        self._show_loading(LOADING_TEXT)
        # (model_version, sentence) -> the trace, then the memory row (slower, so second)
        self.tracer = KeyedTask(self, "trace", self._compute, self._deliver, self._trace_failed)

    # -------------------------------------------------------------- data flow
    def inputs_changed(self) -> None:
        key = (self.app.model_version, self.app.sentence)
        if key == self.tracer.failed:
            self._show_loading(CANNOT_READ)  # already reported: no second notification
            return
        self.tracer.request(key, self.app.lm, self.app.sentence)

    def show_waiting(self, text: str | None) -> None:
        if text is not None:
            self._show_loading(text)

    def _compute(self, lm, sentence: str):
        """Worker thread: the trace, the agreement at the verb (this model and the bundled
        cells), then the Jacobian norms of the memory row."""
        from ...engine.errors import ProbeLimitError, RnnTuiError
        from ...engine.probes import aliasing, jacobian_map, trace

        tr = trace(lm, sentence, top_k=TOP_K)
        yield ("trace", tr)
        yield ("agreement", self._agreement_rows(lm, sentence))
        try:
            alias = aliasing(lm, sentence)
        except RnnTuiError:
            alias = None
        if alias is not None:
            self.app.session.facts["stepper.alias"] = alias
        memory: dict = {}
        for li in tr.layers:
            try:
                # Every row (any step may be shown): exact for short texts, else estimated; when
                # that is too much work, rows at the estimate's resolution (the others blank).
                try:
                    memory[li] = jacobian_map(lm, sentence, layer=li, rows="all")
                except ProbeLimitError:
                    memory[li] = jacobian_map(lm, sentence, layer=li, method="estimate")
            except RnnTuiError:
                break  # too long or too large a state for the limits: no memory row, nothing to fix
        if memory:
            top = memory[max(memory)]
            self.app.session.facts["stepper.reach"] = (top.tokens, memory_reach(top))
            yield ("memory", memory)

    def _agreement_rows(self, lm, sentence: str) -> list:
        """Worker thread: verb_agreement for this model and each bundled cell that is not it."""
        from ...engine.errors import RnnTuiError
        from ...engine.probes import verb_agreement

        session = self.app.session
        current = session.bundled_name(lm)
        rows = []
        models = [("current", f"this {lm.config.cell}", lm)]
        models += [(name, name, None) for name in BUNDLED if name != current]
        for name, label, model in models:
            try:
                model = model if model is not None else session.bundled(name)
                rows.append((name, label, verb_agreement(model, sentence), ""))
            except RnnTuiError as exc:
                rows.append((name, label, None, str(exc)))
        if rows and rows[0][2] is not None:
            session.facts["stepper.agreement"] = rows
        return rows

    def _deliver(self, key: tuple, value) -> None:
        kind, data = value
        if kind == "memory":
            self.memory = data
            self._redraw()
            return
        if kind == "agreement":
            self.agreement = data
            self.query_one("#stepper-agreement").refresh(layout=True)
            return
        sentence = key[1]
        old_sentence = self._sentence
        self._sentence = sentence
        tr = data
        if self.trace is None or len(self.trace.tokens) != len(tr.tokens) or old_sentence != sentence:
            self.memory = {}  # the old row would not line up with the new tokens
        if old_sentence != sentence or key != getattr(self, "_agreement_key", None):
            self.agreement = None  # another sentence or model: the old numbers are not this one's
        self._agreement_key = key
        self.trace = tr
        if old_sentence != sentence:
            self.step = 0
            self.row_offset = 0
            if tr.unknown_message and self._notified != sentence:
                self.notify(tr.unknown_message, severity="warning", markup=False, timeout=6)
        self.step = min(self.step, len(tr.tokens) - 1)
        self.layer_index = min(self.layer_index, len(tr.layers) - 1)
        self._show_loading(None)
        gates = self.query_one("#stepper-gates")
        gates.display = bool(tr.gates)
        gates.refresh(layout=True)  # its height follows the model's hidden size
        self.refresh_bindings()  # the layer keys depend on the model
        self._redraw()

    def _trace_failed(self, key: tuple, error: BaseException) -> None:
        if key == self.tracer.failed:
            # Said once per (model, sentence): coming back to the screen does not say it again,
            # and the last good trace (another model's or sentence's) is not left on show.
            self._show_loading(CANNOT_READ)
        # else: the trace came and only its memory row failed: the trace stays on show

    def _show_loading(self, text: str | None) -> None:
        """Show a one-line state ("loading engine…") instead of the panels, or the panels."""
        loading = self.query_one("#stepper-loading", Static)
        if text is not None:
            loading.update(text)
        loading.display = text is not None
        self.query_one("#stepper-main").display = text is None

    def _redraw(self) -> None:
        self._order = None
        for panel in self.query(Panel):
            panel.refresh()

    # ---------------------------------------------------------------- actions
    def _ready(self) -> bool:
        return self.trace is not None

    def action_step(self, delta: int) -> None:
        if self._ready():
            self.step = max(0, min(len(self.trace.tokens) - 1, self.step + delta))
            self._redraw()

    def action_jump(self, where: int) -> None:
        if self._ready():
            self.step = 0 if where == 0 else len(self.trace.tokens) - 1
            self._redraw()

    def action_flip_number(self) -> None:
        from ...engine.agreement_text import flip_subject  # plain Python: no torch

        flipped = flip_subject(self.app.sentence)
        if flipped is None:
            self.notify("no subject noun followed by was/were here: nothing to flip "
                        "(try the default sentence, ctrl+p → Reset sentence)", timeout=4)
            return
        self.app.set_sentence(flipped)

    def action_jump_verb(self) -> None:
        row = self._agreement_of_current()
        if row is None or not self._ready():
            self.notify("no verb slot in this sentence", timeout=3)
            return
        self.step = max(0, min(len(self.trace.tokens) - 1, row.decision_position))
        self._redraw()

    def _agreement_of_current(self):
        rows = self.agreement or []
        return rows[0][2] if rows and rows[0][0] == "current" else None

    def action_cycle_sort(self) -> None:
        self.sort = SORT_MODES[(SORT_MODES.index(self.sort) + 1) % len(SORT_MODES)]
        self.row_offset = 0
        self._redraw()  # the heatmap's title says the order

    def action_scroll(self, delta: int) -> None:
        self._scroll_to(self.row_offset + delta)

    def action_page(self, delta: int) -> None:
        self._scroll_to(self.row_offset + delta * max(1, self.heat_rows - 1))

    def _scroll_to(self, offset: int) -> None:
        if not self._ready():
            return
        h = self.trace.hidden.shape[2]
        self.row_offset = max(0, min(offset, max(0, h - self.heat_rows)))
        self._redraw()

    def action_layer(self, delta: int) -> None:
        if not self._ready():
            return
        n = len(self.trace.layers)
        if n < 2:
            self.notify("this model has one layer", timeout=2)
            return
        self.layer_index = (self.layer_index + delta) % n
        self._redraw()

    def action_edit(self) -> None:
        self._open_editor(self.app.sentence)

    def _open_editor(self, value: str) -> None:
        inp = self.query_one("#sentence-input", Input)
        inp.value = value
        inp.display = True
        self.query_one("#stepper-tokens").display = False
        inp.focus()
        inp.cursor_position = len(inp.value)

    def action_cancel_edit(self) -> None:
        self._close_editor()

    def _close_editor(self) -> None:
        inp = self.query_one("#sentence-input", Input)
        if inp.display:
            inp.display = False
            self.query_one("#stepper-tokens").display = True
            self.set_focus(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "sentence-input":
            return
        event.stop()
        self._close_editor()
        if not event.value.strip():
            self.notify("the sentence is empty: nothing changed", severity="warning")
            return
        # Longer than a trace takes: refused (the current sentence stays), its end offered instead.
        text = self.fit_text(event.value, "sentence", limit=MAX_TRACE_TOKENS, offer=self._open_editor)
        if text is not None:
            self._notified = text  # fit_text named any unknown characters: on_trace_ready need not
            self.app.set_sentence(text)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_edit":
            return self.query_one("#sentence-input", Input).display
        return True  # [ and ] on a one-layer model say so (action_layer) rather than doing nothing

    def on_resize(self, event: events.Resize) -> None:
        side = self.query_one("#stepper-side")
        side.styles.width = max(35, min(56, event.size.width * 2 // 5))

    # -------------------------------------------------------------- rendering
    def _layer_arrays(self):
        tr = self.trace
        li = self.layer_index
        hidden = tr.hidden[li]  # [T, H]
        return hidden, {n: g[li] for n, g in tr.gates.items()}

    def unit_order(self) -> np.ndarray:
        if self._order is None:
            hidden, _ = self._layer_arrays()
            self._order = unit_order(hidden, self.sort, step=self.step)
        return self._order

    def _build_tokens(self, width: int, height: int) -> RenderableType:
        tr = self.trace
        if tr is None:
            return Text(self.app.sentence, style=DIM, no_wrap=True, overflow="ellipsis")
        return token_strip(tr.tokens, self.step, width, self._level(), self.app.lm.categories
                           if self.app.lm is not None else None)

    def _level(self) -> str:
        lm = self.app.lm
        return getattr(getattr(lm, "vocab", None), "level", "char")

    def _build_agreement(self, width: int, height: int) -> RenderableType:
        if self.trace is None:
            return Text("")
        return agreement_view(self.agreement, width)

    def _build_heat(self, width: int, height: int) -> RenderableType:
        tr = self.trace
        if tr is None:
            return Text("")
        hidden, _ = self._layer_arrays()
        T, H = hidden.shape
        real_layer = tr.layers[self.layer_index]
        n_layers = len(tr.layers)
        title = Text.assemble(
            ("hidden state hₜ", "bold"),
            (f"  layer {real_layer + 1}/{n_layers}" if n_layers > 1 else "", ""),
            (f"  sort: {SORT_LABEL[self.sort]}", DIM),
            no_wrap=True, overflow="ellipsis",
        )
        row_labels = [f"h{i}".rjust(3) for i in range(H)]  # 3 wide at least: room for "mem" below
        lw = max(cell_len(s) for s in row_labels)
        memory = self.memory.get(real_layer)
        extra = 1 + 1 + (1 if memory is not None else 0) + 1  # title, legend, memory, footer
        rows = max(1, height - extra - 2)  # marker + token label lines
        self.heat_rows = rows
        self.row_offset = max(0, min(self.row_offset, max(0, H - rows)))
        cw = cell_width_for(width - lw - 1, T, self._level())
        n_cols = max(1, min(T, (width - lw - 1) // cw))
        c0 = max(0, min(self.step - n_cols // 2, T - n_cols))
        heat = Heatmap(
            hidden.T, col_labels=tr.tokens, row_labels=row_labels, order=self.unit_order(),
            highlight_col=self.step, row_offset=self.row_offset, max_rows=rows,
            col_offset=c0, max_cols=n_cols, cell_width=cw, scale="diverging",
        )
        parts: list = [title, heat]
        if memory is not None:
            parts.append(memory_row(memory, self.step, c0, n_cols, cw, lw))
        key = Text(no_wrap=True, overflow="crop")
        key.append_text(legend("diverging", min(24, max(12, width // 3))))
        if memory is not None and width >= 36:
            some = len(memory.computed_rows) < len(memory.tokens)
            key.append("  mem " if memory.method == "exact" else
                       f"  mem (estimated{', some steps' if some else ''}) ", style=DIM)
            key.append_text(legend("log", min(18, width - key.cell_len - 1), MEMORY_FLOOR, 1.0))
        parts.append(key)
        return Group(*parts)

    def _build_probs(self, width: int, height: int) -> RenderableType:
        tr = self.trace
        if tr is None:
            return Text("")
        t = self.step
        cur = token_label(tr.tokens[t], 12)
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append("next token", style="bold")
        title.append(f"  after “{cur}” ({t + 1}/{len(tr.tokens)})", style=DIM)
        if tr.next_ids[t] < 0:
            return Group(title, Text("end of the text: what would follow", style=DIM, no_wrap=True, overflow="ellipsis"),
                         self._bars(t, width, max(1, height - 3)))
        loss = float(tr.next_loss[t])
        p = float(tr.next_prob[t])
        nxt = token_label(tr.tokens[t + 1], 12)
        info = Text(no_wrap=True, overflow="ellipsis")
        info.append("next ", style=DIM)
        info.append(f"“{nxt}”", style="bold #ffaf00")
        info.append(f"  p={p:.3f}  {loss:.2f} nats", style=DIM)
        return Group(title, info, self._bars(t, width, max(1, height - 2)))

    def _bars(self, t: int, width: int, rows: int) -> RenderableType:
        tr = self.trace
        k = max(1, min(rows, tr.topk_probs.shape[1]))
        bars = _Bars.from_trace(tr, t, width=width)
        bars.items = bars.items[:k]
        if len(bars._rows()) > rows:  # the extra "actual" line does not fit: one guess less
            bars.items = bars.items[: max(1, k - 1)]
        return bars

    def _build_gates(self, width: int, height: int) -> RenderableType:
        tr = self.trace
        if tr is None or not tr.gates:
            return Text("")
        _, gates = self._layer_arrays()
        cell = self.app.lm.config.cell if self.app.lm is not None else "lstm"
        names = [n for n in GATE_ROWS.get(cell, tuple(gates)) if n in gates]
        order = self.unit_order()
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append("gates", style="bold")
        title.append(f" at step {self.step + 1}", style=DIM)
        lines: list = [title]
        label_w = max(cell_len(n) for n in names)
        for n in names:
            values = gates[n][self.step][order]
            if n == "c":
                lim = max(1.0, float(np.nanmax(np.abs(gates[n]))))
                row = dense_heat_row(values, n, width, "diverging", -lim, lim, label_w)
            elif n == "n":
                row = dense_heat_row(values, n, width, "diverging", -1.0, 1.0, label_w)
            else:
                row = dense_heat_row(values, n, width, "sequential", 0.0, 1.0, label_w)
            lines.append(row)
        key = Text(no_wrap=True, overflow="ellipsis")
        key.append(" ".join(f"{n} {GATE_NAMES[n]}" for n in names), style=DIM)
        lines.append(key)
        lines.append(legend("sequential", min(width, 24)))
        return Group(*lines)


