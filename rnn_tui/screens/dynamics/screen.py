"""Mode 5, Dynamics: the recurrence as a dynamical system.

- Spectrum: the eigenvalues of the recurrent matrix (the block that writes new content:
  vanilla W_hh, LSTM g, GRU n) on the complex plane with the unit circle and the spectral
  radius; while the training screen trains, the radius of every fresh snapshot is recorded and
  drawn as a sparkline, so its drift is visible.
- Recurrence alone: with no input, h <- tanh(W h) (or the linear map) from a start state; the
  state norm over steps for the model's own W and for W rescaled to a chosen radius
  (0.5, 0.9, 1.0, 1.1, 1.5): decay, the edge of chaos, explosion.
- Lyapunov: ||d state_t / d state_k|| for every k <= t (the finite-time Lyapunov view), for this
  model or the bundled RNN / LSTM / GRU, with the mean growth per step.
- Memory horizon: how many steps back replacing a token still moves the next-token
  distribution by more than a threshold (total variation), for this model and the bundled
  ones; per hidden size once the Lab's memory-horizon experiment has run.

Every computation runs in a thread worker and posts numpy results back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.widgets import Static

from ...engine.errors import RnnTuiError
from ...widgets.chart import Chart
from ...widgets.panel import Panel
from ..base import LOADING_TEXT, APP_INPUTS, KeyedTask, ModeScreen, waiting_text
from . import draw
from .draw import BUNDLED, HORIZON_THRESHOLD, RADII
from ..keymap import keymap

MAPS = ("tanh", "linear")
STARTS = ("random", "sentence")
LYAP_MODELS = ("current", "rnn", "lstm", "gru")
RECURRENCE_STEPS = 60
HORIZON_CONTEXTS = 48
HORIZON_LENGTH = 40
VIEWS = ("all", "dynamics", "memory")
VIEW_PANELS = {
    "all": ("dy-spectrum", "dy-recurrence", "dy-lyapunov", "dy-horizon"),
    "dynamics": ("dy-spectrum", "dy-recurrence"),
    "memory": ("dy-lyapunov", "dy-horizon"),
}


# ------------------------------------------------------------------------ results
@dataclass
class SpectrumView:
    key: tuple = ()
    spectrum: Any = None
    curves: dict = field(default_factory=dict)  # "own"/"chosen" -> norms
    rates: dict = field(default_factory=dict)
    own_radius: float = float("nan")
    error: str = ""


@dataclass
class LyapunovView:
    jacobian: Any = None
    rate: float = float("nan")
    error: str = ""


@dataclass
class HorizonView:
    curves: dict = field(default_factory=dict)  # name -> MemoryCurve or error string


# ------------------------------------------------------------------------ the screen
class DynamicsScreen(ModeScreen):
    """Eigenvalues, the recurrence alone, the Lyapunov map and the memory horizon."""

    MODE, KEY, LABEL, SHORT = "dynamics", "5", "Dynamics", "Dyn"
    TOOLTIP = "Eigenvalues, the recurrence alone, Lyapunov map, memory horizon"
    FOLLOWS = APP_INPUTS + ("radius_samples",)  # ρ while training: recorded by the app
    PANEL_HELP = {
        "eigenvalues": "The eigenvalues of the recurrent matrix on the complex plane, with the unit circle.\n"
                       "Outside the circle the recurrence alone expands; ρ is the largest |λ|. Sparkline: ρ while training.",
        "recurrence alone": "No input: h ← tanh(W h) (t: or W h) from a start state (s). ‖h_t‖ for the model's own W\n"
                            "and W rescaled to ρ (r: 0.5 0.9 1.0 1.1 1.5): below 1 it decays, above it explodes.",
        "lyapunov": "‖∂state_t/∂state_k‖ for every k ≤ t over the sentence (log colours) and the mean growth\n"
                    "per step (finite-time Lyapunov exponent); m: this model or the bundled RNN, LSTM, GRU.",
        "memory horizon": "How much the next-token distribution moves (total variation) when the token k steps back\n"
                          "is replaced; the horizon is the last k above 0.02. Per hidden size: Lab (7).",
    }
    BINDINGS = keymap("""
        r | cycle_radius | ρ           | dynamics.radius    | Rescale W to the next spectral radius: as is, 0.5, 0.9, 1.0, 1.1, 1.5
        t | toggle_map   | tanh/linear | dynamics.map       | Iterate h ← tanh(W h) or the linear map h ← W h
        s | toggle_start | -Start      | dynamics.start     | Start from a random unit vector or from the state after the sentence
        b | cycle_block  | -Block      | dynamics.block     | Show the eigenvalues of another recurrent block (gates)
        m | cycle_model  | Model       | dynamics.model     | Lyapunov map of this model, or of the bundled RNN, LSTM or GRU
        v | cycle_view   | View        | dynamics.view      | Show spectrum + recurrence, Lyapunov + memory horizon, or all four
        R | recompute    | -Recompute  | dynamics.recompute | Compute everything again
        """)
    DEFAULT_CSS = """
    DynamicsScreen #dy-grid { grid-size: 2; grid-gutter: 0 1; height: 1fr; padding: 0 1; }
    DynamicsScreen .dy-panel { height: 1fr; }
    DynamicsScreen .dy-hidden { display: none; }
    DynamicsScreen .dy-note { height: auto; max-height: 4; }
    DynamicsScreen #dy-lyap-map { height: 1fr; }
    DynamicsScreen #dy-info { height: 1; padding: 0 1; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.radius_choice = 0
        self.map = "tanh"
        self.start = "random"
        self.block: str | None = None
        self.lyap_model = "current"
        self.view = "dynamics"
        self.spec: SpectrumView | None = None
        self.lyap: LyapunovView | None = None
        self.horizon: HorizonView | None = None

    def compose_body(self) -> ComposeResult:
        yield Static(LOADING_TEXT, id="dy-info", markup=False)
        with Grid(id="dy-grid"):
            with Vertical(id="dy-spectrum", classes="dy-panel"):
                yield Chart(lambda *a: draw.draw_spectrum(self, *a), fresh_figure=True, id="dy-eig")
                yield Panel(lambda *a: draw.build_spectrum_note(self, *a), id="dy-eig-note", classes="dy-note")
            with Vertical(id="dy-recurrence", classes="dy-panel"):
                yield Chart(lambda *a: draw.draw_recurrence(self, *a), fresh_figure=True, id="dy-rec")
                yield Panel(lambda *a: draw.build_recurrence_note(self, *a), id="dy-rec-note",
                            classes="dy-note")
            with Vertical(id="dy-lyapunov", classes="dy-panel"):
                yield Panel(lambda *a: draw.build_lyapunov(self, *a), id="dy-lyap-map")
            with Vertical(id="dy-horizon", classes="dy-panel"):
                yield Chart(lambda *a: draw.draw_horizon(self, *a), fresh_figure=True, id="dy-hor")
                yield Panel(lambda *a: draw.build_horizon_note(self, *a), id="dy-hor-note", classes="dy-note")

    def on_mount(self) -> None:
        self.view = "all" if self.app.size.height >= 36 else "dynamics"
        self.spectra = KeyedTask(self, "spectrum", self._compute_spectrum, self._show_spectrum)
        self.lyapunov = KeyedTask(self, "lyapunov", self._compute_lyapunov, self._show_lyapunov)
        self.horizons = KeyedTask(self, "horizon", self._compute_horizon, self._show_horizon)
        self._apply_view()

    # ---------------------------------------------------------------- compute
    @property
    def lm(self):
        return self.app.lm

    def _info(self) -> None:
        info = self.query_one("#dy-info", Static)
        waiting = waiting_text(self.app)
        if waiting:
            info.update(waiting)
            return
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append("view ", style="dim")
        t.append(self.view, style="bold")
        t.append(" (v) · ", style="dim")
        t.append(repr(self.app.sentence))
        info.update(t)

    def show_waiting(self, text: str | None) -> None:
        self._info()

    def app_changed(self) -> None:
        self.query_one("#dy-eig-note", Panel).refresh(layout=True)  # a new ρ-while-training sample

    def inputs_changed(self, force: bool = False) -> None:
        lm, version, sentence = self.lm, self.app.model_version, self.app.sentence
        radius = RADII[self.radius_choice]
        key = (version, radius, self.map, self.start, sentence if self.start == "sentence" else "")
        self.spectra.request(key, lm, radius, self.map, self.start, sentence, force=force)
        visible = VIEW_PANELS[self.view]
        if "dy-lyapunov" in visible:
            lkey = (version if self.lyap_model == "current" else -1, self.lyap_model, sentence)
            self.lyapunov.request(lkey, lm, self.lyap_model, sentence, force=force)
        if "dy-horizon" in visible:
            self.horizons.request((version,), lm, force=force)

    def _compute_spectrum(self, lm, radius, nonlinearity: str, start: str, sentence: str) -> SpectrumView:
        from ...engine.dynamics import growth_rate, recurrence_alone
        from ...engine.probes import spectrum, trace

        try:
            spec = spectrum(lm)
        except RnnTuiError as exc:
            return SpectrumView(error=str(exc))
        w = lm.model.recurrent_blocks(-1)[spec.main]
        own = float(spec.radius[spec.main])
        h0 = None
        if start == "sentence":
            tr = trace(lm, sentence, top_k=1)
            if len(tr.tokens):
                h0 = np.asarray(tr.hidden[-1][-1], dtype=np.float64)
                if not np.linalg.norm(h0) > 0:
                    h0 = None
        curves = {"own": recurrence_alone(w, None, RECURRENCE_STEPS, nonlinearity, start=h0)}
        if radius is not None:
            curves["chosen"] = recurrence_alone(w, radius, RECURRENCE_STEPS, nonlinearity, start=h0)
        rates = {k: growth_rate(v) for k, v in curves.items()}
        return SpectrumView((), spec, curves, rates, own)

    def _show_spectrum(self, key: tuple, view: SpectrumView) -> None:
        view.key = key
        self.spec = view
        if view.error:
            self.notify(view.error, severity="warning", markup=False)
        if view.spectrum is not None and self.block not in view.spectrum.eigenvalues:
            self.block = view.spectrum.main
        for wid in ("#dy-eig", "#dy-rec"):
            self.query_one(wid, Chart).refresh()
        for wid in ("#dy-eig-note", "#dy-rec-note"):
            self.query_one(wid, Panel).refresh(layout=True)

    def _compute_lyapunov(self, lm, which: str, sentence: str) -> LyapunovView:
        from ...engine.dynamics import lyapunov_rate
        from ...engine.probes import jacobian_map

        try:
            model = lm if which == "current" else self.app.session.bundled(which)
            jac = jacobian_map(model, sentence, window="fit")
        except RnnTuiError as exc:
            return LyapunovView(error=str(exc))
        return LyapunovView(jac, lyapunov_rate(jac))

    def _show_lyapunov(self, key: tuple, view: LyapunovView) -> None:
        self.lyap = view
        self.query_one("#dy-lyap-map", Panel).refresh(layout=True)

    def _compute_horizon(self, lm) -> HorizonView:
        from ...engine.dynamics import context_windows, horizon_ids, memory_horizon
        from ..base import stop_event

        stop = stop_event()  # a newer request (or leaving) stops this one between lags

        curves: dict[str, Any] = {}
        models: list[tuple[str, Any]] = [("current", lm)]
        for name in BUNDLED:
            try:
                models.append((name, self.app.session.bundled(name)))
            except RnnTuiError as exc:
                curves[name] = str(exc)
        for name, model in models:
            try:
                ids = horizon_ids(model)
                ctx = context_windows(ids, HORIZON_CONTEXTS, HORIZON_LENGTH, seed=0)
                curves[name] = memory_horizon(model, ctx, threshold=HORIZON_THRESHOLD, seed=0, stop=stop)
            except RnnTuiError as exc:
                curves[name] = str(exc)
        self.app.session.facts["dynamics.horizon"] = curves  # the concepts in ? quote them
        return HorizonView(curves)

    def _show_horizon(self, key: tuple, view: HorizonView) -> None:
        self.horizon = view
        self.query_one("#dy-hor", Chart).refresh()
        self.query_one("#dy-hor-note", Panel).refresh(layout=True)

    # ---------------------------------------------------------------- actions
    def action_cycle_radius(self) -> None:
        self.radius_choice = (self.radius_choice + 1) % len(RADII)
        self.refresh_inputs()

    def action_toggle_map(self) -> None:
        self.map = MAPS[(MAPS.index(self.map) + 1) % len(MAPS)]
        self.refresh_inputs()

    def action_toggle_start(self) -> None:
        self.start = STARTS[(STARTS.index(self.start) + 1) % len(STARTS)]
        self.refresh_inputs()

    def action_cycle_block(self) -> None:
        if self.spec is None or self.spec.spectrum is None:
            return
        names = list(self.spec.spectrum.eigenvalues)
        i = names.index(self.block) if self.block in names else -1
        self.block = names[(i + 1) % len(names)]
        self.query_one("#dy-eig", Chart).refresh()
        self.query_one("#dy-eig-note", Panel).refresh(layout=True)

    def action_cycle_model(self) -> None:
        self.lyap_model = LYAP_MODELS[(LYAP_MODELS.index(self.lyap_model) + 1) % len(LYAP_MODELS)]
        if "dy-lyapunov" not in VIEW_PANELS[self.view]:
            self.view = "memory"
            self._apply_view()
        self.lyap = None
        self.query_one("#dy-lyap-map", Panel).refresh(layout=True)
        self.refresh_inputs()

    def action_cycle_view(self) -> None:
        order = VIEWS if self.app.size.height >= 36 else ("dynamics", "memory", "all")
        self.view = order[(order.index(self.view) + 1) % len(order)] if self.view in order else order[0]
        self._apply_view()
        self.refresh_inputs()

    def action_recompute(self) -> None:
        if waiting_text(self.app) is None:
            self.inputs_changed(force=True)

    def _apply_view(self) -> None:
        visible = VIEW_PANELS[self.view]
        for pid in VIEW_PANELS["all"]:
            self.query_one(f"#{pid}").set_class(pid not in visible, "dy-hidden")
        self._info()

