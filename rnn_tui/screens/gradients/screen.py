"""Mode 3, Gradients: how far back does the gradient reach?

Top: the norm of dL/dh_t (and dL/dx_t) at every position of the current sentence, log y,
for the current model and overlaid for the bundled vanilla RNN, LSTM and GRU, and for an
LSTM the norm of dL/dc_t, its cell-state path (the "gradient highway"). The default loss is
the prediction that decides the verb's number (char level: the letter after the "w" of
was/were), so the curves show how much of that decision's gradient reaches the subject,
marked on the chart; m switches to the last token's loss or all of them summed. A gradient
that underflowed to exactly zero cannot sit on a log axis: it is drawn at a floor value with
its own marker and counted in words. Under it, the ratio at the subject (or first/last) in
plain words, and where the LSTM's all-unit curve hides its memory, the units that carry the
number and their forget gates.

Bottom: the network unrolled over the sentence (T steps of one cell = a T-layer network with
tied weights), one step's Jacobian in words (rho(W) against the tanh slope / the gates), the
Jacobian product map ||d state_t / d state_k|| for every k <= t (log colour scale, with a
legend) and the spectral radius of the recurrent matrix.

Everything is computed in a thread worker when the screen is shown and whenever the model or
the sentence changes; the worker posts numpy results back as one message.
"""

from __future__ import annotations

import math

import numpy as np
from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from ...engine.config import BUNDLED_MODELS as BUNDLED
from ...engine.errors import RnnTuiError
from ...render.colors import legend
from ...render.heatmap import TriangleHeatmap
from ...widgets.chart import Chart
from ..base import LOADING_TEXT, KeyedTask, ModeScreen
from .draw import (LOSS_TITLE, GradientsComputed, ProfileEntry, draw_profiles, profile_words, step_jacobian_words,
                   unrolled_diagram)
from ..keymap import keymap

VIEWS = ("both", "profile", "jacobian")
LOSSES = ("verb", "last", "sum")  # what m cycles through
LEVEL_UNITS = {"word": "words", "bpe": "subword pieces"}  # what a position is, by tokenisation level


# ------------------------------------------------------------------------ the screen
class GradientsScreen(ModeScreen):
    """Gradient norm by timestep for RNN / LSTM / GRU, the Jacobian map, the spectrum."""

    MODE, KEY, LABEL, SHORT = "gradients", "3", "Gradients", "Grads"
    TOOLTIP = "How far back gradients reach: dL/dh_t over time, Jacobians, spectrum"
    NEEDS_MODEL = False  # the bundled models' curves are drawn with no model loaded too
    AUTO_FOCUS = None  # the Jacobian map's scroll takes the focus, so ↑↓ scroll it
    PANEL_HELP = {
        "dL/dh_t": "How much the loss at the verb's number (m: the last token, or all summed) depends on each\n"
                   "earlier hidden state, log scale, for this model and the bundled RNN, LSTM, GRU. × = exactly 0.",
        "dL/dc_t": "For an LSTM, the same through its cell state c_t (cyan): the path whose only step factor\n"
                   "is the forget gate, the gradient highway. The two grey lines: the subject and the loss.",
        "jacobian": "The network unrolled over the sentence, one step's Jacobian in words, ||d state_t / d state_k||\n"
                    "for every k <= t (log colours) and the spectral radius: fading colour is memory fading. j: views.",
    }

    BINDINGS = keymap("""
        m | toggle_mode | Loss      | gradients.mode      | The loss: the verb's number (was/were), the last token only, or all tokens summed
        j | cycle_view  | View      | gradients.view      | Show the gradient curves, the Jacobian map, or both
        r | recompute   | Recompute | gradients.recompute | Compute again for the current model and sentence
        """)

    DEFAULT_CSS = """
    GradientsScreen #gr-info { height: 1; padding: 0 1; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    GradientsScreen #gr-profile { height: 1fr; }
    GradientsScreen #gr-words { height: auto; max-height: 8; padding: 0 1; }
    GradientsScreen #gr-jacobian { height: 1fr; padding: 0 1; }
    GradientsScreen #gr-jacobian:focus { background: $boost; }
    GradientsScreen .gr-hidden { display: none; }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.loss_mode = "verb"  # the choice; a sentence without a verb slot falls back to "last"
        self.view = "both"
        self.result: GradientsComputed | None = None
        self._bundled_profiles: dict[tuple, ProfileEntry] = {}

    def compose_body(self) -> ComposeResult:
        yield Static(LOADING_TEXT, id="gr-info")
        with Vertical(id="gr-profile"):
            yield Chart(id="gr-chart")
            yield Static("", id="gr-words")
        with VerticalScroll(id="gr-jacobian"):
            yield Static("", id="gr-jac")

    def on_mount(self) -> None:
        size = self.app.size
        self.view = "both" if size.height >= 36 else "profile"
        self._apply_view()
        # (model version, sentence, loss) -> every curve, the Jacobian map and the spectrum
        self.profiles = KeyedTask(self, "gradients", self._compute, self._show, self._failed)

    @property
    def computing(self) -> bool:
        return self.profiles.busy

    def inputs_changed(self, force: bool = False) -> None:
        app = self.app
        key = (app.model_version, app.sentence_version, app.sentence, self.loss_mode)
        if self.profiles.request(key, app.lm, app.sentence, self.loss_mode, force=force):
            self.query_one("#gr-info", Static).update(self._info_text(computing=True))

    def show_waiting(self, text: str | None) -> None:
        if text == LOADING_TEXT:
            self.query_one("#gr-info", Static).update(LOADING_TEXT)

    def _info_text(self, computing: bool = False) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        if computing:
            t.append("computing… ", style="bold yellow")
        t.append("loss ", style="dim")
        shown = self.result.mode if self.result is not None and not computing else self.loss_mode
        t.append(LOSS_TITLE.get(shown, shown).removeprefix("loss: "), style="bold")
        if shown != self.loss_mode:
            t.append(" (no was/were after a subject here)", style="dim")
        t.append(" (m) · ", style="dim")
        t.append(repr(self.app.sentence), style="")
        return t

    # ---------------------------------------------------------------- worker
    def _compute(self, lm, sentence: str, choice: str) -> GradientsComputed:
        """Worker thread: this model's profile, the bundled ones', the units that carry the
        subject's number (loss at the verb), the Jacobian map, the spectrum."""
        from ...engine.probes import gradient_profile, jacobian_map, loss_mode_for, number_carriers, spectrum

        session = self.app.session
        # The loss the sentence allows, decided once for every curve (the bundled models read chars).
        mode = loss_mode_for(lm if lm is not None else session.bundled(BUNDLED[0]), sentence, choice) \
            if choice == "verb" else choice
        entries: list[ProfileEntry] = []
        current_bundled = None
        if lm is not None:
            current_bundled = session.bundled_name(lm)
            cell = lm.config.cell
            try:
                prof = gradient_profile(lm, sentence, mode=mode)
                entries.append(ProfileEntry("current", f"this model ({lm.label})", prof, cell=cell))
            except RnnTuiError as exc:
                entries.append(ProfileEntry("current", f"this model ({lm.label})", error=str(exc), cell=cell))
        level = lm.vocab.level if lm is not None else "char"
        for name in BUNDLED:
            if name == current_bundled:
                continue  # the current model is this one: drawn once, as "current"
            if level != "char":  # a position is a character for them and a word or piece here
                entries.append(ProfileEntry(name, f"bundled {name}", cell=name, error=(
                    f"they read characters, this model {LEVEL_UNITS.get(level, level)}")))
                continue
            entries.append(self._bundled_entry(name, sentence, mode))
        carriers, whose = None, ""
        # The bundled LSTM's carriers explain char-level curves only (its distance is in characters).
        if mode == "verb" and (lm is None or lm.config.cell == "lstm" or lm.vocab.level == "char"):
            lstm = lm if lm is not None and lm.config.cell == "lstm" else None
            whose = "this" if lstm is not None else "lstm"
            try:
                lstm = lstm if lstm is not None else session.bundled("lstm")
                carriers = number_carriers(lstm, sentence)
            except RnnTuiError:
                carriers = None
        gru_carriers = None
        if mode == "verb" and carriers is not None and (lm is None or lm.vocab.level == "char"):
            try:  # the GRU's curve fades too: where its memory is
                gru = lm if lm is not None and lm.config.cell == "gru" else session.bundled("gru")
                gru_carriers = number_carriers(gru, sentence)
            except RnnTuiError:
                gru_carriers = None
        jac = spec = None
        jac_error = ""
        if lm is not None:
            try:
                # A large state fits fewer tokens: map the last ones that fit, and say so.
                jac = jacobian_map(lm, sentence, window="fit")
                spec = spectrum(lm)
            except RnnTuiError as exc:
                jac_error = str(exc)
        result = GradientsComputed(entries, jac, spec, jac_error, mode, carriers, whose, gru_carriers)
        session.facts["gradients"] = result  # the concepts in ? quote its numbers
        return result

    def _bundled_entry(self, name: str, sentence: str, mode: str) -> ProfileEntry:
        """Worker thread: the bundled model's profile (models and profiles are cached)."""
        from ...engine.probes import gradient_profile

        cache_key = (name, sentence, mode)
        hit = self._bundled_profiles.get(cache_key)
        if hit is not None:
            return hit
        try:
            lm = self.app.session.bundled(name)
            entry = ProfileEntry(name, f"bundled {name}", gradient_profile(lm, sentence, mode=mode), cell=name)
        except RnnTuiError as exc:
            entry = ProfileEntry(name, f"bundled {name}", error=str(exc), cell=name)
        self._bundled_profiles[cache_key] = entry
        return entry

    # ---------------------------------------------------------------- results
    def _show(self, key: tuple, result: GradientsComputed) -> None:
        self.result = result
        self.query_one("#gr-info", Static).update(self._info_text())
        entries, mode = result.entries, result.mode
        self.query_one("#gr-chart", Chart).set_draw(lambda plt, w, h: draw_profiles(plt, w, h, entries, mode))
        self.query_one("#gr-words", Static).update(self.words(result))
        self.query_one("#gr-jac", Static).update(self.jacobian_view(result))
        current = next((e for e in result.entries if e.name == "current"), None)
        if current is not None and current.error:
            self.notify(current.error, severity="error", markup=False)

    def _failed(self, key: tuple, error: BaseException) -> None:
        self.query_one("#gr-info", Static).update(self._info_text())

    def words(self, message: GradientsComputed):
        """The ratios in plain words, one line per model, and why a curve says what it says."""
        return profile_words(message)

    def jacobian_view(self, message: GradientsComputed):
        jac, spec = message.jacobian, message.spectrum
        if message.jacobian_error:
            return Text(f"Jacobian map: {message.jacobian_error}", style="red")
        if jac is None:
            return Text("Jacobian map: no model loaded", style="dim")
        width = max(20, self.query_one("#gr-jacobian").size.width - 2)
        lesson: list = []
        current = next((e for e in message.entries if e.name == "current" and e.profile is not None), None)
        if current is not None:
            p = current.profile
            loss = {"verb": "the verb's letter", "last": "the last token"}.get(message.mode, "every token")
            lesson.append(unrolled_diagram(p.tokens, p.position if message.mode != "sum" else len(p.tokens) - 2,
                                           width, f"loss at {loss}"))
        lesson.append(step_jacobian_words(jac, spec, self.app.lm.config.cell if self.app.lm is not None else "rnn"))
        head = Text()
        state = "(h_t, c_t)" if jac.state == "h,c" else "h_t"
        head.append("Jacobian map ", style="bold")
        head.append(f"‖∂{state}/∂{state.replace('t', 'k')}‖ · layer {jac.layer} · rows t, cols k ≤ t",
                    style="dim")
        if jac.offset:
            head.append(f" · last {len(jac.tokens)} tokens (a state of {jac.dim} fits no more)", style="yellow")
        if jac.method != "exact":
            head.append(f" · {jac.describe_method()}", style="yellow")
        head.append(f"\nFrobenius norm; at k = t the Jacobian is the identity: √{jac.dim} = "
                    f"{math.sqrt(jac.dim):.3g}", style="dim")
        if spec is not None:
            r = spec.radius.get(spec.main, float("nan"))
            head.append("\nspectral radius ", style="dim")
            head.append(f"{r:.3g}", style="bold")
            head.append(f" ({spec.main})", style="dim")
            if math.isfinite(r):
                head.append(" > 1: the recurrence alone expands" if r > 1 else
                            " < 1: the recurrence alone contracts", style="dim")
            others = [f"{k} {v:.2g}" for k, v in spec.radius.items() if k != spec.main]
            if others:
                head.append(" · " + ", ".join(others), style="dim")
        norms = np.asarray(jac.norms, float)
        lower = norms[np.isfinite(norms) & (norms > 0)]
        # Two significant digits, so the legend's end labels stay short.
        vmin = float(f"{lower.min():.2g}") if lower.size else 1e-6
        vmax = float(f"{lower.max():.2g}") if lower.size else 1.0
        if vmax <= vmin:  # a flat map still needs a range
            vmax = vmin * 10 if vmin > 0 else 1.0
        cell = 2 if len(jac.tokens) * 2 + 10 <= width else 1
        key = Text("colour = norm, log scale  ", style="dim")
        key.append_text(legend("log", min(width - key.cell_len, 36), vmin, vmax))
        items = [*lesson, head, key,
                 TriangleHeatmap(norms, jac.tokens, cell_width=cell, vmin=vmin, vmax=vmax, rows=jac.rows)]
        if jac.unknown_message:
            items.append(Text(jac.unknown_message, style="dim"))
        return Group(*items)

    # ---------------------------------------------------------------- keys
    def action_toggle_mode(self) -> None:
        self.loss_mode = LOSSES[(LOSSES.index(self.loss_mode) + 1) % len(LOSSES)]
        self.refresh_inputs()

    def action_cycle_view(self) -> None:
        self.view = VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)]
        self._apply_view()

    def action_recompute(self) -> None:
        self._bundled_profiles.clear()
        if self.app.engine_ready:
            self.inputs_changed(force=True)

    def _apply_view(self) -> None:
        self.query_one("#gr-profile").set_class(self.view == "jacobian", "gr-hidden")
        self.query_one("#gr-jacobian").set_class(self.view == "profile", "gr-hidden")
        if self.result is not None and self.view != "profile":
            self.call_after_refresh(self._refresh_jacobian)

    def _refresh_jacobian(self) -> None:
        if self.result is not None:
            self.query_one("#gr-jac", Static).update(self.jacobian_view(self.result))
