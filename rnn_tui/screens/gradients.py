"""Mode 3, Gradients: how far back does the gradient reach?

Top: the norm of dL/dh_t (and dL/dx_t) at every position of the current sentence, log y,
for the current model and overlaid for the bundled vanilla RNN, LSTM and GRU, so the
central claim (vanilla gradients vanish, gated ones do not) is visible at a glance. A
gradient that underflowed to exactly zero cannot sit on a log axis: it is drawn at a floor
value with its own marker and counted in words. Under it, the ratio between the gradient at
the first and the last position in plain words.

Bottom: the Jacobian product map ||d state_t / d state_k|| for every k <= t (log colour
scale, with a legend) and the spectral radius of the recurrent matrix.

Everything is computed in a thread worker when the screen is shown and whenever the model or
the sentence changes; the worker posts numpy results back as one message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from ..engine.config import BUNDLED_MODELS as BUNDLED
from ..engine.errors import RnnTuiError
from ..render.colors import CURRENT_RGB, DX_RGB, MODEL_RGB, UNDERFLOW_RGB, hex_code as _hex, legend
from ..render.heatmap import TriangleHeatmap, token_label
from ..widgets.chart import Chart
from .base import LOADING_TEXT, KeyedTask, ModeScreen

MODEL_COLORS = {"current": CURRENT_RGB, **MODEL_RGB}
DX_COLOR = DX_RGB
UNDERFLOW_COLOR = UNDERFLOW_RGB
UNDERFLOW_MARKER = "×"
VIEWS = ("both", "profile", "jacobian")


def ratio_words(ratio: float, underflow_first: bool) -> str:
    """A ratio of gradient norms, first / last, in a few words."""
    if underflow_first:
        return "exactly 0 (underflow)"
    if not math.isfinite(ratio) or ratio <= 0:
        return "0"
    if ratio >= 0.1:
        verdict = "kept"
    elif ratio >= 1e-3:
        verdict = "fades"
    else:
        verdict = "vanishes"
    if ratio > 10:
        verdict = "grows"
    return f"{ratio:.2g} ({verdict})"


def underflow_floor(values: np.ndarray) -> float:
    """Where exact zeros are drawn on a log axis: a decade below the smallest positive value."""
    pos = values[np.isfinite(values) & (values > 0)]
    return float(pos.min()) / 10.0 if pos.size else 1e-45


# ------------------------------------------------------------------------ results
@dataclass
class ProfileEntry:
    """One model's curve: its gradient profile, or why there is none."""

    name: str  # "current", "rnn", "lstm", "gru"
    label: str
    profile: Any = None  # GradientProfile
    error: str = ""


@dataclass(frozen=True)
class GradientsComputed:
    """Everything the screen shows for one (model, sentence, loss)."""

    entries: list[ProfileEntry] = field(default_factory=list)
    jacobian: Any = None  # JacobianMap
    spectrum: Any = None  # Spectrum
    jacobian_error: str = ""


@dataclass(frozen=True)
class ProfileDrawn:
    underflow_points: int  # how many exact zeros the last draw marked


def draw_profiles(plt, width: int, height: int, entries: list[ProfileEntry], mode: str) -> ProfileDrawn:
    """||dL/dh_t|| over t, log y, one line per model; underflow drawn at a floor value."""
    plt.title(f"‖dL/dh_t‖ by position · loss: {'last token' if mode == 'last' else 'sum of all'}")
    plt.xlabel("position t (token)")
    profiles = [e for e in entries if e.profile is not None]
    plt.yscale("log" if profiles else "linear")  # plotext cannot build an empty log chart
    # One floor for every curve, so the underflow marks line up.
    all_vals = np.concatenate([np.ravel(e.profile.dh[-1]) for e in profiles] +
                              [np.ravel(e.profile.dx) for e in profiles if e.name == "current"]) \
        if profiles else np.array([])
    floor = underflow_floor(all_vals)
    zeros_x: list[float] = []
    longest: tuple[str, ...] = ()
    for e in profiles:
        p = e.profile
        ok = np.asarray(p.affects_loss, bool)
        colour = MODEL_COLORS.get(e.name, (200, 200, 200))
        t = np.arange(len(p.tokens))
        dh = np.asarray(p.dh[-1], float)
        under = np.asarray(p.underflow_h[-1], bool)
        _curve(plt, t, np.where(ok & ~under, dh, np.nan), colour)
        if under.any():
            zeros_x.extend(t[under].tolist())
            plt.scatter(t[under].tolist(), [floor] * int(under.sum()), color=UNDERFLOW_COLOR,
                        marker=UNDERFLOW_MARKER)
        if e.name == "current":
            dx = np.asarray(p.dx, float)
            ux = np.asarray(p.underflow_x, bool)
            _curve(plt, t, np.where(ok & ~ux, dx, np.nan), DX_COLOR)
            if ux.any():
                zeros_x.extend(t[ux].tolist())
                plt.scatter(t[ux].tolist(), [floor] * int(ux.sum()), color=UNDERFLOW_COLOR,
                            marker=UNDERFLOW_MARKER)
        if len(p.tokens) > len(longest):
            longest = p.tokens
    shown = all_vals[np.isfinite(all_vals) & (all_vals > 0)]
    if shown.size:
        lo = math.floor(math.log10(min(float(shown.min()), floor if zeros_x else math.inf)))
        hi = math.ceil(math.log10(float(shown.max())))
        step = max(1, math.ceil((hi - lo) / max(2, (height - 5) // 2)))
        exps = list(range(lo, hi + 1, step))
        plt.yticks([10.0 ** e for e in exps], [f"1e{e}" if e else "1" for e in exps])
    if zeros_x:
        plt.horizontal_line(floor, color=(120, 60, 60))
    if longest:
        n = len(longest)
        every = max(1, math.ceil(n / max(2, width // 6)))
        ticks = list(range(0, n, every))
        plt.xticks(ticks, [token_label(longest[i], 4) for i in ticks])
    return ProfileDrawn(len(zeros_x))


def _curve(plt, t: np.ndarray, y: np.ndarray, colour) -> None:
    keep = np.isfinite(y) & (y > 0)
    if keep.sum() == 0:
        return
    if keep.sum() == 1:
        plt.scatter(t[keep].tolist(), y[keep].tolist(), color=colour, marker="•")
    else:
        plt.plot(t[keep].tolist(), y[keep].tolist(), color=colour, marker="braille")


# ------------------------------------------------------------------------ the screen
class GradientsScreen(ModeScreen):
    """Gradient norm by timestep for RNN / LSTM / GRU, the Jacobian map, the spectrum."""

    MODE, KEY, LABEL, SHORT = "gradients", "3", "Gradients", "Grads"
    TOOLTIP = "How far back gradients reach: dL/dh_t over time, Jacobians, spectrum"
    NEEDS_MODEL = False  # the bundled models' curves are drawn with no model loaded too
    AUTO_FOCUS = None  # the Jacobian map's scroll takes the focus, so ↑↓ scroll it
    PANEL_HELP = {
        "dL/dh_t": "How much the loss at the last token (m: or summed over all) depends on each earlier\n"
                   "hidden state, log scale, for this model and the bundled RNN, LSTM and GRU. × = exactly 0.",
        "jacobian": "||d state_t / d state_k|| for every k <= t (log colours) and the spectral radius of the\n"
                    "recurrent matrix: colour fading away from the diagonal is memory fading. j switches views.",
    }

    BINDINGS = [
        Binding("m", "toggle_mode", "Loss: last/sum", id="gradients.mode",
                tooltip="Differentiate the loss at the last token only, or the loss summed over all tokens"),
        Binding("j", "cycle_view", "View", id="gradients.view",
                tooltip="Show the gradient curves, the Jacobian map, or both"),
        Binding("r", "recompute", "Recompute", id="gradients.recompute",
                tooltip="Compute again for the current model and sentence"),
    ]

    DEFAULT_CSS = """
    GradientsScreen #gr-info { height: 1; padding: 0 1; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    GradientsScreen #gr-profile { height: 1fr; }
    GradientsScreen #gr-words { height: auto; max-height: 6; padding: 0 1; }
    GradientsScreen #gr-jacobian { height: 1fr; padding: 0 1; }
    GradientsScreen #gr-jacobian:focus { background: $boost; }
    GradientsScreen .gr-hidden { display: none; }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.loss_mode = "last"
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
        t.append(self.loss_mode, style="bold")
        t.append(" (m) · ", style="dim")
        t.append(repr(self.app.sentence), style="")
        return t

    # ---------------------------------------------------------------- worker
    def _compute(self, lm, sentence: str, mode: str) -> GradientsComputed:
        """Worker thread: this model's profile, the bundled ones', the Jacobian map, the spectrum."""
        from ..engine.probes import gradient_profile, jacobian_map, spectrum

        entries: list[ProfileEntry] = []
        current_bundled = None
        if lm is not None:
            current_bundled = self.app.session.bundled_name(lm)
            try:
                prof = gradient_profile(lm, sentence, mode=mode)
                entries.append(ProfileEntry("current", f"this model ({lm.label})", prof))
            except RnnTuiError as exc:
                entries.append(ProfileEntry("current", f"this model ({lm.label})", error=str(exc)))
        for name in BUNDLED:
            if name == current_bundled:
                continue  # the current model is this one: drawn once, as "current"
            entries.append(self._bundled_entry(name, sentence, mode))
        jac = spec = None
        jac_error = ""
        if lm is not None:
            try:
                # A large state fits fewer tokens: map the last ones that fit, and say so.
                jac = jacobian_map(lm, sentence, window="fit")
                spec = spectrum(lm)
            except RnnTuiError as exc:
                jac_error = str(exc)
        return GradientsComputed(entries, jac, spec, jac_error)

    def _bundled_entry(self, name: str, sentence: str, mode: str) -> ProfileEntry:
        """Worker thread: the bundled model's profile (models and profiles are cached)."""
        from ..engine.probes import gradient_profile

        cache_key = (name, sentence, mode)
        hit = self._bundled_profiles.get(cache_key)
        if hit is not None:
            return hit
        try:
            lm = self.app.session.bundled(name)
            entry = ProfileEntry(name, f"bundled {name}", gradient_profile(lm, sentence, mode=mode))
        except RnnTuiError as exc:
            entry = ProfileEntry(name, f"bundled {name}", error=str(exc))
        self._bundled_profiles[cache_key] = entry
        return entry

    # ---------------------------------------------------------------- results
    def _show(self, key: tuple, result: GradientsComputed) -> None:
        self.result = result
        self.query_one("#gr-info", Static).update(self._info_text())
        entries, mode = result.entries, key[3]
        self.query_one("#gr-chart", Chart).set_draw(lambda plt, w, h: draw_profiles(plt, w, h, entries, mode))
        self.query_one("#gr-words", Static).update(self.words(result))
        self.query_one("#gr-jac", Static).update(self.jacobian_view(result))
        current = next((e for e in result.entries if e.name == "current"), None)
        if current is not None and current.error:
            self.notify(current.error, severity="error", markup=False)

    def _failed(self, key: tuple, error: BaseException) -> None:
        self.query_one("#gr-info", Static).update(self._info_text())

    def words(self, message: GradientsComputed) -> Text:
        """The ratio between first and last position in plain words, one line per model."""
        t = Text()
        current = next((e for e in message.entries if e.name == "current"), None)
        if current is None:
            t.append("no model loaded: ctrl+p to load one, or train one (2)\n", style="dim")
        elif current.profile is not None:
            p = current.profile
            t.append("■ ", style=_hex(MODEL_COLORS["current"]))
            t.append(p.describe().capitalize(), style="bold")
            t.append(".")
            if p.unknown_message:
                t.append(f" ({p.unknown_message})", style="dim")
            t.append("\n")
        elif current.error:
            t.append(f"this model: {current.error}\n", style="red")
        parts = []
        for e in message.entries:
            if e.profile is None and e.name == "current":
                continue
            piece = Text()
            piece.append("■ ", style=_hex(MODEL_COLORS.get(e.name, (200, 200, 200))))
            name = "this" if e.name == "current" else e.name
            if e.profile is None:
                piece.append(f"{name}: n/a", style="dim")
            else:
                p = e.profile
                piece.append(f"{name} ")
                piece.append(ratio_words(p.ratio_first_last, bool(p.underflow_h[-1, 0])), style="bold")
            parts.append(piece)
        if parts:
            t.append("first/last: ", style="dim")
            for i, piece in enumerate(parts):
                if i:
                    t.append("  ")
                t.append_text(piece)
            t.append("\n")
        zeros = 0
        if current is not None and current.profile is not None:
            p = current.profile
            zeros = int(np.sum(p.underflow_h[-1])) + int(np.sum(p.underflow_x))
        others = sum(int(np.sum(e.profile.underflow_h[-1])) for e in message.entries
                     if e.profile is not None and e.name != "current")
        if zeros or others:
            t.append(f"{UNDERFLOW_MARKER} ", style=f"bold {_hex(UNDERFLOW_COLOR)}")
            t.append(f"= exactly 0 in float32 (underflow), drawn at a floor: "
                     f"{zeros + others} point(s)", style=_hex(UNDERFLOW_COLOR))
            t.append("\n")
        t.append("── ‖dL/dh_t‖ top layer", style="dim")
        if current is not None and current.profile is not None:  # dL/dx is drawn for a loaded model only
            t.append("   ── ‖dL/dx_t‖ this model", style=_hex(DX_COLOR))
        t.rstrip()
        missing = [e for e in message.entries if e.profile is None and e.name != "current"]
        if missing:
            names = ", ".join(e.name for e in missing)
            note = Text(f"{names} not drawn: {missing[0].error}", style="dim", no_wrap=True,
                        overflow="ellipsis")
            return Group(t, note)
        return t

    def jacobian_view(self, message: GradientsComputed):
        jac, spec = message.jacobian, message.spectrum
        if message.jacobian_error:
            return Text(f"Jacobian map: {message.jacobian_error}", style="red")
        if jac is None:
            return Text("Jacobian map: no model loaded", style="dim")
        head = Text()
        state = "(h_t, c_t)" if jac.state == "h,c" else "h_t"
        head.append("Jacobian map ", style="bold")
        head.append(f"‖∂{state}/∂{state.replace('t', 'k')}‖ · layer {jac.layer} · rows t, cols k ≤ t",
                    style="dim")
        if jac.offset:
            head.append(f" · last {len(jac.tokens)} tokens (a state of {jac.dim} fits no more)", style="yellow")
        if jac.method != "exact":
            head.append(f" · {jac.describe_method()}", style="yellow")
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
        width = max(20, self.query_one("#gr-jacobian").size.width - 2)
        cell = 2 if len(jac.tokens) * 2 + 10 <= width else 1
        key = Text("colour = norm, log scale  ", style="dim")
        key.append_text(legend("log", min(width - key.cell_len, 36), vmin, vmax))
        items = [head, key,
                 TriangleHeatmap(norms, jac.tokens, cell_width=cell, vmin=vmin, vmax=vmax, rows=jac.rows)]
        if jac.unknown_message:
            items.append(Text(jac.unknown_message, style="dim"))
        return Group(*items)

    # ---------------------------------------------------------------- keys
    def action_toggle_mode(self) -> None:
        self.loss_mode = "sum" if self.loss_mode == "last" else "last"
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
