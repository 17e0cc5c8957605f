"""Mode 8, Inspector: LSTMVis in the terminal.

Select a span of the current sentence; the units that stay at or above a threshold across it
(optionally off just before and after) are listed with their values over the sentence, and
every place in the model's corpus where the same units are all on together is found and
ranked. The value inspected is the hidden state, the LSTM cell state or a gate, of any layer.
Under the sentence, a coloured row says how much each earlier token counts for the current
prediction (the one made at the end of the span), by gradient x input or by occlusion.

Torch work runs in thread workers: the sentence's trace, the attribution, and the corpus
encoding (once per model, value and layer, then cached); the search is numpy, in a worker too.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from ...engine.config import MAX_TRACE_TOKENS
from ...widgets.panel import Panel
from ..base import LOADING_TEXT, KeyedTask, ModeScreen, emit, stop_event
from . import draw
from .draw import METHOD_LABELS, THRESHOLD_STEP, VALUE_LABELS, span_of
from ..keymap import keymap

MAX_CACHED = 4  # corpus encodings kept (N x H bytes each: 16 MB for the grammar at H=64)


# ------------------------------------------------------------------------- helpers
def corpus_text(app, lm, limit: int | None) -> tuple[str, str]:
    """(text, which corpus it is, in words) of the corpus the model was trained on (never a
    stand-in: a missing text file raises CorpusError saying how to point at it)."""
    from ...engine.corpus import corpus_for_model

    found = corpus_for_model(lm, app.corpus)
    corpus = found.corpus
    ids = corpus.train if limit is None else corpus.train[:limit]
    return corpus.vocab.decode(ids), found.note


class InspectorScreen(ModeScreen):
    """Select a span, see which units fire across it and where else they fire together."""

    MODE, KEY, LABEL, SHORT = "inspector", "8", "Inspector", "Insp"
    TOOLTIP = "Units that fire together over a span, where else they do, input attribution"
    # Tokens of the corpus to encode (None: all of it); tests make it small.
    corpus_limit: int | None = None
    PANEL_HELP = {
        "sentence": "The sentence with the selected span lit (←→ move it, shift+→/] grow, shift+←/[ shrink).\n"
                    "Under it, attribution: red tokens support the prediction at the span's end, blue oppose it.",
        "units": "The units whose value stays ≥ the threshold (+/-) across the span, over the whole sentence;\n"
                 "o also asks them to be off just before and after. v: value (h, c, gates), L: layer.",
        "matches": "Everywhere in the model's corpus the same units are all on together, best first:\n"
                   "most selected units on and fewest others, then closest length. ↑↓ scroll.",
    }
    BINDINGS = keymap("""
        left,h = ←                           | move(-1)      | Move        | inspector.left     | Move the span one token left
        right,l = →                          | move(1)       | -Move       | inspector.right    | Move the span one token right
        shift+right,right_square_bracket = ] | grow(1)       | Grow        | inspector.grow     | Grow the span by one token (shift+→ or ])
        shift+left,left_square_bracket = [   | grow(-1)      | -Shrink     | inspector.shrink   | Shrink the span by one token (shift+← or [)
        plus,equals_sign = +                 | threshold(1)  | Thr         | inspector.thr_up   | Raise the threshold a unit must stay above
        minus = -                            | threshold(-1) | -Thr-       | inspector.thr_down | Lower the threshold a unit must stay above
        o                                    | toggle_off    | Off±        | inspector.off      | Also require the units to be off just before and just after the span
        v                                    | cycle_value   | Value       | inspector.value    | Inspect the hidden state, the cell state or a gate
        L                                    | cycle_layer   | -Layer      | inspector.layer    | Inspect the next layer (stacked models)
        a                                    | toggle_method | Attrib      | inspector.method   | Attribution by gradient × input or by occlusion
        e                                    | edit          | -Edit       | inspector.edit     | Type another sentence
        up,k                                 | scroll(-1)    | -Scroll     | inspector.up       | Scroll the matches up
        down,j                               | scroll(1)     | -Scroll     | inspector.down     | Scroll the matches down
        enter                                | read_match    | -Read match | inspector.read     | Make the sentence around the top visible match the current sentence
        escape                               | stop_index    | -Stop       | inspector.stop     | Stop encoding the corpus (the part done is searched); again: encode it all
        """)
    DEFAULT_CSS = """
    InspectorScreen #in-body { height: 1fr; padding: 0 1; }
    InspectorScreen #in-info { height: 1; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    InspectorScreen #in-sentence { height: auto; margin-top: 1; }
    InspectorScreen #in-units { height: auto; max-height: 12; margin-top: 1; }
    InspectorScreen #in-matches { height: 1fr; margin-top: 1; }
    InspectorScreen #in-loading { height: 1fr; content-align: center middle; color: $text-muted; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.trace = None
        self.cursor = 0
        self.span_len = 1
        self.threshold = 0.5
        self.off_outside = False
        self.value = "hidden"
        self.layer_pos = -1  # index into trace.layers; -1 = the top layer
        self.method = "grad_x_input"
        self.units: np.ndarray = np.zeros(0, dtype=np.int64)
        self.matches = None
        self.attribution = None
        self.match_offset = 0
        self.states: dict[tuple, Any] = {}  # (model_version, value, layer) -> CorpusStates
        self.corpus_name = ""
        self.progress: tuple[int, int, float] | None = None  # tokens done, of, seconds so far
        self.corpus_error = ""  # why the corpus could not be searched (shown in its panel)
        self.trace_key: tuple | None = None  # (model version, sentence) of the trace on show
        self._stop = threading.Event()
        self._index_stop: threading.Event | None = None  # set by escape: stop this encode

    # ---------------------------------------------------------------- compose
    def compose_body(self) -> ComposeResult:
        with Vertical(id="in-body"):
            yield Static(LOADING_TEXT, id="in-info", markup=False)
            yield Panel(lambda w, h: draw.build_sentence(self, w, h), id="in-sentence")
            yield Panel(lambda w, h: draw.build_units(self, w, h), id="in-units")
            yield Panel(lambda w, h: draw.build_matches(self, w, h), id="in-matches")

    def on_mount(self) -> None:
        self.tracer = KeyedTask(self, "trace", self._compute_trace, self._show_trace, self._trace_failed)
        self.encoder = KeyedTask(self, "corpus", self._compute_corpus, self._corpus_encoded,
                                 self._corpus_failed)
        self.matcher = KeyedTask(self, "matches", self._compute_matches, self._show_matches)
        self.attributor = KeyedTask(self, "attribution", self._compute_attribution, self._show_attribution)

    def on_unmount(self) -> None:
        self._stop.set()

    # ---------------------------------------------------------------- data flow
    @property
    def lm(self):
        return self.app.lm

    def layer_model_index(self) -> int:
        tr = self.trace
        if tr is None:
            return -1
        return tr.layers[self.layer_pos % len(tr.layers)]

    def show_waiting(self, text: str | None) -> None:
        if text is not None:
            self._info(text)

    def inputs_changed(self) -> None:
        app = self.app
        if self.tracer.request((app.model_version, app.sentence), self.lm, app.sentence):
            self._info("reading the sentence…")

    def _compute_trace(self, lm, sentence: str):
        from ...engine.probes import trace

        return trace(lm, sentence, top_k=1)

    def _show_trace(self, key: tuple, trace) -> None:
        old = self.trace_key
        sentence_changed = old is None or old[1] != key[1]
        model_changed = old is None or old[0] != key[0]
        self.trace_key = key
        self.trace = trace
        T = len(trace.tokens)
        if T == 0:
            self._info("the model can read none of this sentence: press e to edit it")
            return
        if sentence_changed:
            self.cursor, self.span_len = self._default_span(trace.tokens)
        self.cursor = min(self.cursor, T - 1)
        self.span_len = max(1, min(self.span_len, self.cursor + 1))
        lm = self.lm
        if lm is not None and self.value not in self.values():
            self.value = "hidden"
        if model_changed:
            self.attribution = None
        self._refresh_all()

    def _trace_failed(self, key: tuple, error: BaseException) -> None:
        self._info("cannot read this sentence with this model: press e to edit it")

    def _default_span(self, tokens) -> tuple[int, int]:
        """The second word (the subject noun of the default sentence), else the first token."""
        if self.lm is not None and self.lm.vocab.level == "char":
            from ...engine.corpus import word_spans

            spans = word_spans("".join(tokens))
            if len(spans) >= 2:
                a, b, _ = spans[1]
                return b - 1, b - a
            if spans:
                a, b, _ = spans[0]
                return b - 1, b - a
        return min(1, len(tokens) - 1), 1

    def values(self) -> tuple[str, ...]:
        from ...engine.units import values_for

        lm = self.lm
        return values_for(lm.config.cell) if lm is not None else ("hidden",)

    def sentence_values(self) -> np.ndarray | None:
        if self.trace is None:
            return None
        from ...engine.units import trace_values

        return trace_values(self.trace, self.value, self.layer_model_index())

    def _refresh_all(self) -> None:
        """Units from the trace; then the corpus search and the attribution, in workers."""
        values = self.sentence_values()
        if values is None or self.trace is None or not len(self.trace.tokens):
            return
        from ...engine.units import select_units

        span = span_of(self.cursor, self.span_len)
        self.units = select_units(values, span, self.threshold, self.off_outside)
        self.match_offset = 0
        self._info()
        self._ensure_corpus()
        self._request_matches()
        self._request_attribution()
        self._redraw()

    def corpus_key(self) -> tuple:
        return (self.app.model_version, self.value, self.layer_model_index())

    def _ensure_corpus(self, force: bool = False) -> None:
        key = self.corpus_key()
        if key in self.states and not force:
            return
        flag = threading.Event()
        if self.encoder.request(key, self.lm, self.value, key[2], flag, force=force):
            self._index_stop = flag
            self.progress = (0, 0, 0.0)

    def _compute_corpus(self, lm, value: str, layer: int, flag: threading.Event):
        """Worker thread: the corpus's states for (value, layer), with progress as it goes;
        from the session's cache when this model (by its weights) has indexed this corpus."""
        from ...engine.units import encode_corpus_states, model_fingerprint, text_fingerprint

        from ...engine.threads import choose_threads

        stop = stop_event(self._stop, flag)
        text, name = corpus_text(self.app, lm, self.corpus_limit)
        ident = (model_fingerprint(lm), value, layer, name, text_fingerprint(text))
        cached = self.app.session.corpus_states(ident)
        if cached is not None:
            yield ("done", cached, name)
            return
        # 256 streams at once: a big product per step, but on a busy machine a second thread
        # spins against the other work (1 MB of text: 1.1 s with one thread, 17.6 s with two
        # while another process kept both cores busy). So the count is chosen now, for this load.
        threads = choose_threads(lm.config.hidden, 256, lm.config.cell).threads
        started = time.monotonic()
        states = encode_corpus_states(lm, text, value, layer, stop=stop, threads=threads,
                                      progress=lambda done, total: emit(("progress", done, total,
                                                                         time.monotonic() - started)))
        if states.complete:
            self.app.session.keep_corpus_states(ident, states)
        if not stop.is_set() or flag.is_set():  # stopped by escape: the part done is searched
            yield ("done", states, name)

    def action_stop_index(self) -> None:
        """escape: stop the corpus encode (what is done stays searchable); again, when the index
        on show is partial: encode it all."""
        if self.encoder.busy:
            if self._index_stop is not None:
                self._index_stop.set()
            return
        states = self.states.get(self.corpus_key())
        if states is not None and not states.complete and self.lm is not None:
            self.matches = None
            self.states.pop(self.corpus_key())
            self._ensure_corpus(force=True)
            self._redraw()

    def _corpus_encoded(self, key: tuple, value) -> None:
        if value[0] == "progress":
            self.progress = value[1:]  # (done, total, seconds so far)
            self.query_one("#in-matches", Panel).refresh()
            return
        _, states, name = value
        self.progress = None
        self.corpus_error = ""
        self.corpus_name = name
        self.states[key] = states
        if self.matcher.key is not None and self.matcher.key[0] == key:
            self.matcher.forget()  # a new index for this key (all of it after a stop): search again
        while len(self.states) > MAX_CACHED:
            self.states.pop(next(iter(self.states)))
        self._request_matches()
        self._redraw()

    def _corpus_failed(self, key: tuple, error: BaseException) -> None:
        self.progress = None
        self.corpus_error = str(error)
        self._redraw()

    def _match_request_key(self) -> tuple:
        return (self.corpus_key(), tuple(self.units.tolist()), self.threshold, self.span_len,
                self.off_outside)

    def _request_matches(self) -> None:
        key = self._match_request_key()
        states = self.states.get(key[0])
        if states is None:
            return
        if key == self.matcher.key and self.matches is not None:
            return
        self.matches = None
        if not len(self.units):
            self.matcher.cancel()
            return
        self.matcher.request(key, states, self.units.copy(), self.threshold, self.span_len,
                             self.off_outside, force=True)

    def _compute_matches(self, states, units, threshold, span_len, off):
        from ...engine.units import find_matches

        return find_matches(states, units, threshold, span_len, off_outside=off, top=50, context=60)

    def _show_matches(self, key: tuple, matches) -> None:
        self.matches = matches
        self.match_offset = 0
        self._redraw()

    def _request_attribution(self) -> None:
        if self.trace is None or self.lm is None:
            return
        key = (self.app.model_version, self.app.sentence, self.cursor, self.method)
        self.attributor.request(key, self.lm, self.app.sentence, self.cursor, self.method)

    def _compute_attribution(self, lm, sentence: str, position: int, method: str):
        from ...engine.errors import RnnTuiError
        from ...engine.attribution import attribution

        try:
            return attribution(lm, sentence, position=position, method=method), ""
        except RnnTuiError as exc:
            return None, str(exc)

    def _show_attribution(self, key: tuple, value) -> None:
        self.attribution, error = value
        if error:
            self.notify(error, severity="warning", markup=False)
        self.query_one("#in-sentence", Panel).refresh()

    # ---------------------------------------------------------------- actions
    def _ready(self) -> bool:
        return self.trace is not None and len(self.trace.tokens) > 0

    def action_move(self, delta: int) -> None:
        if not self._ready():
            return
        T = len(self.trace.tokens)
        self.cursor = max(self.span_len - 1, min(T - 1, self.cursor + delta))
        self._refresh_all()

    def action_grow(self, delta: int) -> None:
        if not self._ready():
            return
        T = len(self.trace.tokens)
        if delta > 0:
            if self.cursor < T - 1:  # grow to the right while there is room, else to the left
                self.cursor += 1
            if self.span_len < self.cursor + 1:
                self.span_len += 1
        elif self.span_len > 1:
            self.span_len -= 1
            self.cursor -= 1
        self._refresh_all()

    def action_threshold(self, direction: int) -> None:
        lo, hi = (0.0, 1.0) if self.value not in ("hidden", "cell", "g", "n") else (-1.0, 1.0)
        if self.value == "cell":
            lo, hi = -5.0, 5.0
        t = round(self.threshold + direction * THRESHOLD_STEP, 2)
        self.threshold = max(lo, min(hi, t))
        self._refresh_all()

    def action_toggle_off(self) -> None:
        self.off_outside = not self.off_outside
        self._refresh_all()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cycle_value" and self.lm is not None and self.lm.config.cell == "rnn":
            return None  # dimmed in the footer: a vanilla RNN has only its hidden state
        return True

    def action_cycle_value(self) -> None:
        values = self.values()
        i = values.index(self.value) if self.value in values else -1
        self.value = values[(i + 1) % len(values)]
        if self.value in ("i", "f", "o", "r", "z"):
            self.threshold = max(0.0, self.threshold)
        self._refresh_all()

    def action_cycle_layer(self) -> None:
        if not self._ready():
            return
        n = len(self.trace.layers)
        if n < 2:
            self.notify("this model has one layer", timeout=2)
            return
        self.layer_pos = (self.layer_pos % n + 1) % n
        self._refresh_all()

    def action_toggle_method(self) -> None:
        self.method = "occlusion" if self.method == "grad_x_input" else "grad_x_input"
        self._info()
        self._request_attribution()

    def action_scroll(self, delta: int) -> None:
        n = len(self.matches.matches) if self.matches is not None else 0
        self.match_offset = max(0, min(max(0, n - 1), self.match_offset + delta))
        self.query_one("#in-matches", Panel).refresh()

    def action_edit(self) -> None:
        from ..help import TextPrompt

        def done(value: str | None) -> None:
            if value and value.strip():
                text = self.fit_text(value, "sentence", limit=MAX_TRACE_TOKENS, offer=ask)
                if text is not None:
                    self.app.set_sentence(text)

        def ask(value: str) -> None:  # (again with the end of a sentence that was too long)
            self.app.push_screen(TextPrompt("Sentence", "the text the inspector reads", value=value), done)

        ask(self.app.sentence)

    def action_read_match(self) -> None:
        """The sentence around the first visible match becomes the app's sentence."""
        if self.matches is None or not self.matches.matches:
            self.notify("no match to read: select units that fire together elsewhere first "
                        "(move the span, or - lowers the threshold)", severity="warning", timeout=4)
            return
        m = self.matches.matches[min(self.match_offset, len(self.matches.matches) - 1)]
        states = self.states.get(self.corpus_key())
        if states is None:
            return
        text, a, b = states.snippet(m.start, m.end, context=80)
        left = max(text.rfind(".", 0, a) + 1, 0)
        right = text.find(".", b)
        sentence = text[left: right + 1 if right >= 0 else len(text)].replace("⏎", " ").strip()
        if sentence:
            self.app.set_sentence(sentence)

    # ---------------------------------------------------------------- drawing
    def _info(self, text: str | None = None) -> None:
        info = self.query_one("#in-info", Static)
        if text is not None:
            info.update(text)
            return
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(VALUE_LABELS.get(self.value, self.value), style="bold")
        if self.trace is not None and len(self.trace.layers) > 1:
            t.append(f" layer {self.layer_model_index() + 1}/{len(self.trace.layers)}")
        t.append(" (v) · ", style="dim")
        t.append(f"≥ {self.threshold:+.2f}", style="bold")
        t.append(" (+/-) · off around ", style="dim")
        t.append("on" if self.off_outside else "no", style="bold")
        t.append(" (o) · ", style="dim")
        t.append(METHOD_LABELS[self.method], style="bold")
        t.append(" (a)", style="dim")
        info.update(t)

    def _redraw(self) -> None:
        for panel in self.query(Panel):
            panel.refresh(layout=True)
