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

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from rich.console import Group, RenderableType
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Static
from textual.worker import Worker, get_current_worker
from textual_plotext import PlotextPlot

from ..render.colors import legend
from ..render.heatmap import TriangleHeatmap
from ..render.ticks import log_ticks
from . import LOADING_TEXT, ModeBar, report_worker_error, waiting_text
from .stepper import Panel

RADII = (None, 0.5, 0.9, 1.0, 1.1, 1.5)  # None: the model's W as it is
MAPS = ("tanh", "linear")
STARTS = ("random", "sentence")
LYAP_MODELS = ("current", "rnn", "lstm", "gru")
BUNDLED = ("rnn", "lstm", "gru")
COLORS = {
    "current": (255, 215, 95),
    "rnn": (250, 100, 100),
    "lstm": (86, 156, 255),
    "gru": (96, 206, 120),
    "decay": (86, 156, 255),
    "edge": (96, 206, 120),
    "grow": (250, 100, 100),
    "circle": (110, 110, 110),
}
SPARK = "▁▂▃▄▅▆▇█"
RECURRENCE_STEPS = 60
HORIZON_THRESHOLD = 0.02
VIEWS = ("all", "dynamics", "memory")
VIEW_PANELS = {
    "all": ("dy-spectrum", "dy-recurrence", "dy-lyapunov", "dy-horizon"),
    "dynamics": ("dy-spectrum", "dy-recurrence"),
    "memory": ("dy-lyapunov", "dy-horizon"),
}


def load_bundled(name: str):
    """The bundled default model `name` on the CPU (tests replace this)."""
    from ..engine.checkpoint import load_model

    return load_model(name, device="cpu")


def sparkline(values, width: int) -> str:
    """The last ``width`` values as block characters, scaled between their min and max."""
    v = np.asarray(values, dtype=float)[-max(1, width):]
    v = v[np.isfinite(v)]
    if not v.size:
        return ""
    lo, hi = float(v.min()), float(v.max())
    if hi - lo < 1e-12:
        return SPARK[3] * len(v)
    idx = np.clip(((v - lo) / (hi - lo) * (len(SPARK) - 1)).round().astype(int), 0, len(SPARK) - 1)
    return "".join(SPARK[i] for i in idx)


def regime(rate: float, norms=None) -> tuple[str, str]:
    """(words, colour key) for a growth rate of ln||h|| per step (after the transient), and
    the norms themselves to tell a saturated explosion from the edge of chaos."""
    if not math.isfinite(rate):
        return "n/a", "edge"
    if rate < -0.01:
        return "decays", "decay"
    if rate > 0.01:
        return "explodes", "grow"
    if norms is not None and len(norms) > 2:
        n = np.asarray(norms, dtype=float)
        if n[-1] > 2 * n[0]:
            return "grew, then tanh saturates", "grow"
        if n[-1] < n[0] / 2:
            return "decayed, then settles", "decay"
    return "holds: the edge of chaos", "edge"


def _hex(rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


class Chart(PlotextPlot):
    """A plotext chart drawn by a function at every render (plotext's build() logs its data in
    place, so the data is plotted again each time); errors are shown, never raised."""

    DEFAULT_CSS = "Chart { width: 1fr; height: 1fr; min-height: 5; }"

    def __init__(self, draw: Callable | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._draw = draw

    def set_draw(self, draw: Callable | None) -> None:
        self._draw = draw
        self.refresh()

    def render(self):
        try:
            # A full reset: titles, labels, ticks and limits of the last drawing go too (the
            # widget applies its size and theme again on render).
            self.plt.clf()
            if self._draw is not None and self.size.width > 4 and self.size.height > 3:
                self._draw(self.plt, self.size.width, self.size.height)
            return super().render()
        except Exception as exc:  # plotext has corner cases; never a traceback on screen
            self.plt.clear_data()
            return Text(f"(this chart could not be drawn: {type(exc).__name__}: {exc})", style="dim")


# ------------------------------------------------------------------------ messages
@dataclass
class SpectrumReady(Message):
    key: tuple
    spectrum: Any = None
    curves: dict = field(default_factory=dict)  # "own"/"chosen" -> norms
    rates: dict = field(default_factory=dict)
    own_radius: float = float("nan")
    error: str = ""


@dataclass
class RadiusSample(Message):
    step: int
    radius: float
    version: int


@dataclass
class LyapunovReady(Message):
    key: tuple
    jacobian: Any = None
    rate: float = float("nan")
    error: str = ""


@dataclass
class HorizonReady(Message):
    key: tuple
    curves: dict = field(default_factory=dict)  # name -> MemoryCurve or error string


# ------------------------------------------------------------------------ the screen
class DynamicsScreen(Screen):
    """Eigenvalues, the recurrence alone, the Lyapunov map and the memory horizon."""

    MODE, KEY, LABEL, SHORT = "dynamics", "5", "Dynamics", "Dyn"
    TOOLTIP = "Eigenvalues, the recurrence alone, Lyapunov map, memory horizon"
    AUTO_FOCUS = ""
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
    BINDINGS = [
        Binding("r", "cycle_radius", "ρ", id="dynamics.radius",
                tooltip="Rescale W to the next spectral radius: as is, 0.5, 0.9, 1.0, 1.1, 1.5"),
        Binding("t", "toggle_map", "tanh/linear", id="dynamics.map",
                tooltip="Iterate h ← tanh(W h) or the linear map h ← W h"),
        Binding("s", "toggle_start", "Start", id="dynamics.start", show=False,
                tooltip="Start from a random unit vector or from the state after the sentence"),
        Binding("b", "cycle_block", "Block", id="dynamics.block", show=False,
                tooltip="Show the eigenvalues of another recurrent block (gates)"),
        Binding("m", "cycle_model", "Model", id="dynamics.model",
                tooltip="Lyapunov map of this model, or of the bundled RNN, LSTM or GRU"),
        Binding("v", "cycle_view", "View", id="dynamics.view",
                tooltip="Show spectrum + recurrence, Lyapunov + memory horizon, or all four"),
        Binding("R", "recompute", "Recompute", id="dynamics.recompute", show=False,
                tooltip="Compute everything again"),
    ]
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
        self.spec: SpectrumReady | None = None
        self.lyap: LyapunovReady | None = None
        self.horizon: HorizonReady | None = None
        self.history: list[tuple[int, float]] = []  # (training step, radius)
        self._history_version = -1
        self._spec_key: tuple | None = None
        self._lyap_key: tuple | None = None
        self._horizon_key: tuple | None = None
        self._bundled: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield ModeBar("dynamics")
        yield Static(LOADING_TEXT, id="dy-info", markup=False)
        with Grid(id="dy-grid"):
            with Vertical(id="dy-spectrum", classes="dy-panel"):
                yield Chart(self._draw_spectrum, id="dy-eig")
                yield Panel(self._build_spectrum_note, id="dy-eig-note", classes="dy-note")
            with Vertical(id="dy-recurrence", classes="dy-panel"):
                yield Chart(self._draw_recurrence, id="dy-rec")
                yield Panel(self._build_recurrence_note, id="dy-rec-note", classes="dy-note")
            with Vertical(id="dy-lyapunov", classes="dy-panel"):
                yield Panel(self._build_lyapunov, id="dy-lyap-map")
            with Vertical(id="dy-horizon", classes="dy-panel"):
                yield Chart(self._draw_horizon, id="dy-hor")
                yield Panel(self._build_horizon_note, id="dy-hor-note", classes="dy-note")
        yield Footer()

    def on_mount(self) -> None:
        self.view = "all" if self.app.size.height >= 36 else "dynamics"
        self._apply_view()
        for name in ("model_version", "sentence_version", "engine_ready"):
            self.watch(self.app, name, self._inputs_changed, init=False)
        self._sample_radius()
        self._maybe_compute()

    def on_screen_resume(self) -> None:
        self._maybe_compute()

    def _inputs_changed(self, _value=None) -> None:
        self._sample_radius()
        if self.is_current:
            self._maybe_compute()

    # ---------------------------------------------------------------- compute
    @property
    def lm(self):
        return getattr(self.app, "lm", None)

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
        t.append(repr(getattr(self.app, "sentence", "")))
        info.update(t)

    def _maybe_compute(self, force: bool = False) -> None:
        self._info()
        lm = self.lm
        if not getattr(self.app, "engine_ready", False) or lm is None:
            return
        version = self.app.model_version
        sentence = self.app.sentence
        radius = RADII[self.radius_choice]
        key = (version, radius, self.map, self.start, sentence if self.start == "sentence" else "")
        if force or key != self._spec_key:
            self._spec_key = key
            self._spectrum_worker(lm, radius, self.map, self.start, sentence, key)
        visible = VIEW_PANELS[self.view]
        if "dy-lyapunov" in visible:
            lkey = (version if self.lyap_model == "current" else -1, self.lyap_model, sentence)
            if force or lkey != self._lyap_key:
                self._lyap_key = lkey
                self._lyapunov_worker(lm, self.lyap_model, sentence, lkey)
        if "dy-horizon" in visible:
            hkey = (version,)
            if force or hkey != self._horizon_key:
                self._horizon_key = hkey
                self._horizon_worker(lm, hkey)

    @work(thread=True, exclusive=True, exit_on_error=False, group="dynamics-spectrum")
    def _spectrum_worker(self, lm, radius, nonlinearity: str, start: str, sentence: str, key: tuple) -> None:
        from ..engine.dynamics import growth_rate, recurrence_alone
        from ..engine.errors import RnnTuiError
        from ..engine.probes import spectrum

        try:
            spec = spectrum(lm)
        except RnnTuiError as exc:
            self.post_message(SpectrumReady(key, error=str(exc)))
            return
        w = lm.model.recurrent_blocks(-1)[spec.main]
        own = float(spec.radius[spec.main])
        h0 = None
        if start == "sentence":
            from ..engine.probes import trace

            tr = trace(lm, sentence, top_k=1)
            if len(tr.tokens):
                h0 = np.asarray(tr.hidden[-1][-1], dtype=np.float64)
                if not np.linalg.norm(h0) > 0:
                    h0 = None
        curves = {"own": recurrence_alone(w, None, RECURRENCE_STEPS, nonlinearity, start=h0)}
        if radius is not None:
            curves["chosen"] = recurrence_alone(w, radius, RECURRENCE_STEPS, nonlinearity, start=h0)
        rates = {k: growth_rate(v) for k, v in curves.items()}
        if not get_current_worker().is_cancelled:
            self.post_message(SpectrumReady(key, spec, curves, rates, own))

    def on_spectrum_ready(self, message: SpectrumReady) -> None:
        if message.key != self._spec_key:
            return
        self.spec = message
        if message.error:
            self.notify(message.error, severity="warning", markup=False)
        if message.spectrum is not None and self.block not in message.spectrum.eigenvalues:
            self.block = message.spectrum.main
        for wid in ("#dy-eig", "#dy-rec"):
            self.query_one(wid, Chart).refresh()
        for wid in ("#dy-eig-note", "#dy-rec-note"):
            self.query_one(wid, Panel).refresh(layout=True)

    def _sample_radius(self) -> None:
        """While the training screen trains, record the radius of each new snapshot."""
        app = self.app
        lm = getattr(app, "lm", None)
        if getattr(app, "trainer", None) is None or lm is None:
            return
        version = getattr(app, "model_version", 0)
        if version == self._history_version:
            return
        self._history_version = version
        metrics = lm.meta.get("metrics") or {}
        step = int(metrics.get("step", len(self.history)))
        self._radius_worker(lm, step, version)

    @work(thread=True, exit_on_error=False, group="dynamics-radius")
    def _radius_worker(self, lm, step: int, version: int) -> None:
        from ..engine.probes import spectrum

        spec = spectrum(lm)
        self.post_message(RadiusSample(step, float(spec.radius[spec.main]), version))

    def on_radius_sample(self, message: RadiusSample) -> None:
        if self.history and message.step <= self.history[-1][0]:
            if message.step < self.history[-1][0]:
                self.history.clear()  # a new run started
            else:
                return
        self.history.append((message.step, message.radius))
        self.query_one("#dy-eig-note", Panel).refresh(layout=True)

    @work(thread=True, exclusive=True, exit_on_error=False, group="dynamics-lyapunov")
    def _lyapunov_worker(self, lm, which: str, sentence: str, key: tuple) -> None:
        from ..engine.errors import RnnTuiError
        from ..engine.probes import jacobian_map

        try:
            model = lm if which == "current" else self._bundled_model(which)
            jac = jacobian_map(model, sentence, window="fit")
        except RnnTuiError as exc:
            self.post_message(LyapunovReady(key, error=str(exc)))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(LyapunovReady(key, jac, lyapunov_rate(jac)))

    def _bundled_model(self, name: str):
        lm = self._bundled.get(name)
        if lm is None:
            lm = self._bundled[name] = load_bundled(name)
        return lm

    def on_lyapunov_ready(self, message: LyapunovReady) -> None:
        if message.key != self._lyap_key:
            return
        self.lyap = message
        self.query_one("#dy-lyap-map", Panel).refresh(layout=True)

    @work(thread=True, exclusive=True, exit_on_error=False, group="dynamics-horizon")
    def _horizon_worker(self, lm, key: tuple) -> None:
        from ..engine.dynamics import context_windows, memory_horizon
        from ..engine.errors import RnnTuiError

        worker = get_current_worker()
        curves: dict[str, Any] = {}
        models: list[tuple[str, Any]] = [("current", lm)]
        for name in BUNDLED:
            try:
                models.append((name, self._bundled_model(name)))
            except RnnTuiError as exc:
                curves[name] = str(exc)
        for name, model in models:
            if worker.is_cancelled:
                return
            try:
                ids = horizon_ids(model)
                ctx = context_windows(ids, HORIZON_CONTEXTS, HORIZON_LENGTH, seed=0)
                curves[name] = memory_horizon(model, ctx, threshold=HORIZON_THRESHOLD, seed=0)
            except RnnTuiError as exc:
                curves[name] = str(exc)
        if not worker.is_cancelled:
            self.post_message(HorizonReady(key, curves))

    def on_horizon_ready(self, message: HorizonReady) -> None:
        if message.key != self._horizon_key:
            return
        self.horizon = message
        self.query_one("#dy-hor", Chart).refresh()
        self.query_one("#dy-hor-note", Panel).refresh(layout=True)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if report_worker_error(self, event):
            group = event.worker.group
            if group == "dynamics-spectrum":
                self._spec_key = None
            elif group == "dynamics-lyapunov":
                self._lyap_key = None
            elif group == "dynamics-horizon":
                self._horizon_key = None

    # ---------------------------------------------------------------- actions
    def action_cycle_radius(self) -> None:
        self.radius_choice = (self.radius_choice + 1) % len(RADII)
        self._maybe_compute()

    def action_toggle_map(self) -> None:
        self.map = MAPS[(MAPS.index(self.map) + 1) % len(MAPS)]
        self._maybe_compute()

    def action_toggle_start(self) -> None:
        self.start = STARTS[(STARTS.index(self.start) + 1) % len(STARTS)]
        self._maybe_compute()

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
        self._maybe_compute()

    def action_cycle_view(self) -> None:
        order = VIEWS if self.app.size.height >= 36 else ("dynamics", "memory", "all")
        self.view = order[(order.index(self.view) + 1) % len(order)] if self.view in order else order[0]
        self._apply_view()
        self._maybe_compute()

    def action_recompute(self) -> None:
        self._maybe_compute(force=True)

    def _apply_view(self) -> None:
        visible = VIEW_PANELS[self.view]
        for pid in VIEW_PANELS["all"]:
            self.query_one(f"#{pid}").set_class(pid not in visible, "dy-hidden")
        self._info()

    # ---------------------------------------------------------------- drawing
    def _draw_spectrum(self, plt, width: int, height: int) -> None:
        s = self.spec
        plt.title("eigenvalues of W (complex plane)")
        theta = np.linspace(0, 2 * np.pi, 121)
        if s is None or s.spectrum is None:
            plt.plot(np.cos(theta).tolist(), np.sin(theta).tolist(), color=COLORS["circle"], marker="braille")
            return
        spec = s.spectrum
        block = self.block if self.block in spec.eigenvalues else spec.main
        ev = np.asarray(spec.eigenvalues[block])
        rho = float(spec.radius[block])
        lim = max(1.15, rho * 1.1)
        # Terminal cells are about twice as tall as wide: widen the x range to keep circles round.
        plot_w, plot_h = max(1, width - 8), max(1, height - 4)
        xlim = max(lim, lim * plot_w / (2.0 * plot_h))
        plt.plot(np.cos(theta).tolist(), np.sin(theta).tolist(), color=COLORS["circle"], marker="braille")
        if rho > 0 and abs(rho - 1) > 0.02:
            plt.plot((rho * np.cos(theta)).tolist(), (rho * np.sin(theta)).tolist(),
                     color=(150, 120, 40), marker="braille")
        outside = np.abs(ev) > 1
        if (~outside).any():
            plt.scatter(ev.real[~outside].tolist(), ev.imag[~outside].tolist(), color=COLORS["lstm"], marker="•")
        if outside.any():
            plt.scatter(ev.real[outside].tolist(), ev.imag[outside].tolist(), color=COLORS["grow"], marker="•")
        plt.xlim(-xlim, xlim)
        plt.ylim(-lim, lim)
        plt.title(f"eigenvalues of {block} · ρ = {rho:.3g}")

    def _build_spectrum_note(self, width: int, height: int) -> RenderableType:
        s = self.spec
        t = Text(no_wrap=True, overflow="ellipsis")
        if s is None or s.spectrum is None:
            t.append("computing…" if not (s and s.error) else s.error, style="dim")
            return t
        spec = s.spectrum
        block = self.block if self.block in spec.eigenvalues else spec.main
        rho = float(spec.radius[block])
        n_out = int((np.abs(spec.eigenvalues[block]) > 1).sum())
        t.append(f"ρ({block}) ", style="dim")
        t.append(f"{rho:.3f}", style="bold")
        t.append(f" · {n_out}/{len(spec.eigenvalues[block])} with |λ|>1", style="dim")
        if len(spec.eigenvalues) > 1 and width >= 50:
            t.append(" · b: block", style="dim")
        lines: list = [t]
        h = Text(no_wrap=True, overflow="ellipsis")
        if len(self.history) >= 1:
            steps = [s_ for s_, _ in self.history]
            radii = [r for _, r in self.history]
            h.append("ρ training ", style="dim")
            spark = sparkline(radii, max(4, width - 32))
            h.append(spark, style=_hex(COLORS["current"]))
            h.append(f" {radii[0]:.2f}→{radii[-1]:.2f} @{steps[-1]}", style="dim")
        elif getattr(self.app, "trainer", None) is not None:
            h.append("ρ while training: waiting for the next snapshot…", style="dim")
        else:
            h.append("ρ while training: press 2 to train", style="dim")
        lines.append(h)
        return Group(*lines)

    def _draw_recurrence(self, plt, width: int, height: int) -> None:
        s = self.spec
        plt.title(f"recurrence alone: ‖h_t‖, h ← {'tanh(W h)' if self.map == 'tanh' else 'W h'}")
        plt.xlabel("step t")
        if s is None or not s.curves:
            return
        series = []
        own = s.curves.get("own")
        if own is not None:
            series.append((f"ρ={s.own_radius:.2f} (model)", own, COLORS["current"]))
        chosen = s.curves.get("chosen")
        if chosen is not None:
            r = RADII[self.radius_choice]
            words, colour = regime(s.rates.get("chosen", float("nan")), chosen)
            series.append((f"ρ={r:g}", chosen, COLORS[colour]))
        lo, hi = math.inf, -math.inf
        for label, norms, colour in series:
            n = np.asarray(norms, dtype=float)
            t = np.arange(len(n))
            ok = np.isfinite(n) & (n > 0)
            if not ok.any():
                continue
            y = np.log10(n[ok])
            lo, hi = min(lo, float(y.min())), max(hi, float(y.max()))
            plt.plot(t[ok].tolist(), y.tolist(), color=colour, marker="braille")
        if lo <= hi:
            if hi - lo < 0.3:
                mid = (hi + lo) / 2
                lo, hi = mid - 0.3, mid + 0.3
            plt.yticks(*log_ticks(lo, hi, max_ticks=max(2, (height - 4) // 2)))
            plt.ylim(lo, hi)

    def _build_recurrence_note(self, width: int, height: int) -> RenderableType:
        s = self.spec
        t = Text(no_wrap=True, overflow="ellipsis")
        r = RADII[self.radius_choice]
        t.append("r ", style="bold")
        t.append("ρ: ", style="dim")
        for i, choice in enumerate(RADII):
            label = "own" if choice is None else f"{choice:g}"
            t.append(label, style="bold reverse" if i == self.radius_choice else "dim")
            t.append(" ")
        keys = Text(no_wrap=True, overflow="ellipsis")
        keys.append("t ", style="dim")
        keys.append(self.map, style="bold")
        keys.append(" · s ", style="dim")
        keys.append(self.start, style="bold")
        if t.cell_len + 2 + keys.cell_len <= width:
            t.append("· ", style="dim")
            t.append_text(keys)
            lines: list = [t]
        else:  # narrow (80 columns): two short lines rather than one cut off
            lines = [t, keys]
        if s is not None and s.rates:
            key = "chosen" if "chosen" in s.rates else "own"
            rate = s.rates[key]
            words, colour = regime(rate, s.curves[key])
            w = Text(no_wrap=True, overflow="ellipsis")
            w.append("━ ", style=_hex(COLORS[colour] if key == "chosen" else COLORS["current"]))
            w.append(f"ρ={r:g}" if key == "chosen" else f"ρ={s.own_radius:.2f}", style="bold")
            norms = np.asarray(s.curves[key], dtype=float)
            if words.startswith(("grew", "decayed")) and norms.size > 1:
                # The late rate is ~0 once tanh saturates (or the state settles): say what
                # the norm did instead of printing a "+0.00/step" next to "grew".
                w.append(f" ‖h‖ {norms[0]:.2g}→{norms[-1]:.2g} ", style="dim")
                words = "tanh saturates" if words.startswith("grew") else "settles"
            else:
                w.append(f" {rate:+.2f}/step ", style="dim")
            w.append(words, style=f"bold {_hex(COLORS[colour])}")
            if key == "chosen":
                w.append(" · ", style="dim")
                w.append("━ ", style=_hex(COLORS["current"]))
                w.append(f"model ρ={s.own_radius:.2f}", style="dim")
            lines.append(w)
        return Group(*lines)

    def _build_lyapunov(self, width: int, height: int) -> RenderableType:
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append("Lyapunov ", style="bold")
        name = "this model" if self.lyap_model == "current" else f"bundled {self.lyap_model}"
        head.append(name, style=f"bold {_hex(COLORS[self.lyap_model])}")
        head.append(" (m)", style="dim")
        ly = self.lyap
        if ly is None:
            return Group(head, Text("computing…", style="dim"))
        if ly.error:
            return Group(head, Text(ly.error, style="red"))
        jac = ly.jacobian
        head.append(" · ‖∂s_t/∂s_k‖, k ≤ t", style="dim")
        if jac.offset:
            head.append(f" · last {len(jac.tokens)} tokens", style="yellow")
        rate = Text(no_wrap=True, overflow="ellipsis")
        rate.append("λ ≈ ", style="dim")
        rate.append(f"{ly.rate:+.3f}" if math.isfinite(ly.rate) else "n/a", style="bold")
        rate.append(" ln/step: ", style="dim")
        words, colour = ("memory fades", "decay") if ly.rate < -0.01 else \
            ("perturbations grow", "grow") if ly.rate > 0.01 else ("marginal: the edge", "edge")
        rate.append(words if math.isfinite(ly.rate) else "", style=_hex(COLORS[colour]))
        norms = np.asarray(jac.norms, float)
        lower = norms[np.isfinite(norms) & (norms > 0)]
        vmin = float(f"{lower.min():.2g}") if lower.size else 1e-6
        vmax = float(f"{lower.max():.2g}") if lower.size else 1.0
        if vmax <= vmin:
            vmax = vmin * 10 if vmin > 0 else 1.0
        key = Text("log colour ", style="dim", no_wrap=True, overflow="crop")
        key.append_text(legend("log", max(12, min(width - 12, 30)), vmin, vmax))
        cell = 2 if len(jac.tokens) * 2 + 10 <= width else 1
        rows = max(1, height - 6) if height < 1000 else None
        heat = TriangleHeatmap(norms, jac.tokens, cell_width=cell, vmin=vmin, vmax=vmax, max_rows=rows,
                               row_offset=max(0, len(jac.tokens) - (rows or len(jac.tokens))))
        return Group(head, rate, key, heat)

    def _draw_horizon(self, plt, width: int, height: int) -> None:
        plt.title("memory: TV of p(next) when token k back changes")
        plt.xlabel("k steps back")
        h = self.horizon
        if h is None:
            return
        lo, hi = math.inf, -math.inf
        for name in ("current", *BUNDLED):
            curve = h.curves.get(name)
            if curve is None or isinstance(curve, str):
                continue
            tv = np.asarray(curve.tv, dtype=float)
            ok = np.isfinite(tv) & (tv > 0)
            if not ok.any():
                continue
            y = np.log10(tv[ok])
            lo, hi = min(lo, float(y.min())), max(hi, float(y.max()))
            plt.plot(curve.lags[ok].tolist(), y.tolist(), color=COLORS[name], marker="braille")
        if lo <= hi:
            thr = math.log10(HORIZON_THRESHOLD)
            lo, hi = min(lo, thr), max(hi, thr)
            plt.horizontal_line(thr, color=COLORS["circle"])
            plt.yticks(*log_ticks(lo, hi, max_ticks=max(2, (height - 4) // 2)))

    def _build_horizon_note(self, width: int, height: int) -> RenderableType:
        h = self.horizon
        t = Text(no_wrap=True, overflow="ellipsis")
        if h is None:
            t.append("computing…", style="dim")
            return t
        t.append("horizon ", style="dim")
        for name in ("current", *BUNDLED):
            curve = h.curves.get(name)
            if curve is None:
                continue
            label = "this" if name == "current" else name
            t.append("━", style=_hex(COLORS[name]))
            if isinstance(curve, str):
                t.append(f"{label} n/a ", style="dim")
            else:
                t.append(f"{label} ", style="dim")
                t.append(f"{curve.horizon} ", style="bold")
        lines: list = [t]
        sizes = lab_horizon_table(self.app.session.lab_results)
        if sizes:
            lines.append(Text(sizes, style="dim", no_wrap=True, overflow="ellipsis"))
        else:
            lines.append(Text("steps with TV ≥ 0.02 · per size: Lab (7)", style="dim",
                              no_wrap=True, overflow="ellipsis"))
        return Group(*lines)


# ------------------------------------------------------------------ pure helpers
HORIZON_CONTEXTS = 48
HORIZON_LENGTH = 40


def horizon_ids(lm) -> np.ndarray:
    """Token ids of the model's corpus (validation part) to cut contexts from."""
    from ..engine.corpus import BUNDLED_CORPORA, load_corpus

    name = str(lm.meta.get("corpus") or "grammar").lower()
    if name not in BUNDLED_CORPORA:
        name = "grammar"
    corpus = load_corpus(name, level=lm.vocab.level, size=2000)
    text = corpus.vocab.decode(corpus.val)
    return np.asarray(lm.vocab.encode(text, on_unknown="skip").ids, dtype=np.int64)


def lyapunov_rate(jac) -> float:
    """Mean growth of ln ||d s_t / d s_k|| per step of lag, over all pairs (a finite-time
    Lyapunov exponent of the driven recurrence); the identity's norm is taken off first."""
    logs = np.asarray(jac.log10_norms, dtype=float) * math.log(10.0)
    T = logs.shape[0]
    if T < 2:
        return float("nan")
    base = 0.5 * math.log(jac.dim)
    t_idx, k_idx = np.tril_indices(T, -1)
    vals = logs[t_idx, k_idx] - base
    lags = (t_idx - k_idx).astype(float)
    ok = np.isfinite(vals)
    if not ok.any():
        return float("nan")
    return float(np.sum(vals[ok]) / np.sum(lags[ok]))


def lab_horizon_table(results: dict) -> str:
    """'per hidden size: rnn 16:3 32:4 · lstm 16:9 …' from the Lab's memory-horizon result."""
    result = results.get("memory-horizon")
    if result is None:
        return ""
    try:
        return "per hidden size: " + summarize_horizon(result)
    except Exception:
        return ""


def summarize_horizon(result) -> str:
    """'rnn H32:3 H64:4 · lstm H64:12' from a MemoryResult (cells, hidden, horizon)."""
    by_cell: dict[str, list[str]] = {}
    for cell, hidden, horizon in zip(result.cells, result.hidden, result.horizon):
        by_cell.setdefault(str(cell), []).append(f"H{int(hidden)}:{int(horizon)}")
    return " · ".join(f"{cell} " + " ".join(parts) for cell, parts in by_cell.items())
