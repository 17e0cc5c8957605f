"""What the Dynamics screen draws: the four panels as functions of the screen's state.

Each ``draw_*`` plots into a plotext figure (a `Chart`), each ``build_*`` returns a Rich
renderable (a `Panel`); ``v`` is the DynamicsScreen, read only (its spec, lyap, horizon,
block, map, start, radius_choice and lyap_model, and the app's session).
"""

from __future__ import annotations

import math
import numpy as np
from rich.console import Group, RenderableType
from rich.text import Text

from ...render.colors import CURRENT_RGB, MODEL_RGB, hex_code as _hex, legend
from ...render.heatmap import TriangleHeatmap
from ...render.ticks import integer_ticks, log_ticks

RADII = (None, 0.5, 0.9, 1.0, 1.1, 1.5)  # None: the model's W as it is
BUNDLED = ("rnn", "lstm", "gru")
COLORS = {
    "current": CURRENT_RGB,
    **MODEL_RGB,
    "decay": MODEL_RGB["lstm"],
    "edge": MODEL_RGB["gru"],
    "grow": MODEL_RGB["rnn"],
    "circle": (110, 110, 110),
}
SPARK = "▁▂▃▄▅▆▇█"
HORIZON_THRESHOLD = 0.02


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


def draw_spectrum(v, plt, width: int, height: int) -> None:
    s = v.spec
    plt.title("eigenvalues of W (complex plane)")
    theta = np.linspace(0, 2 * np.pi, 121)
    if s is None or s.spectrum is None:
        plt.plot(np.cos(theta).tolist(), np.sin(theta).tolist(), color=COLORS["circle"], marker="braille")
        return
    spec = s.spectrum
    block = v.block if v.block in spec.eigenvalues else spec.main
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

def build_spectrum_note(v, width: int, height: int) -> RenderableType:
    s = v.spec
    t = Text(no_wrap=True, overflow="ellipsis")
    if s is None or s.spectrum is None:
        t.append("computing…" if not (s and s.error) else s.error, style="dim")
        return t
    spec = s.spectrum
    block = v.block if v.block in spec.eigenvalues else spec.main
    rho = float(spec.radius[block])
    n_out = int((np.abs(spec.eigenvalues[block]) > 1).sum())
    t.append(f"ρ({block}) ", style="dim")
    t.append(f"{rho:.3f}", style="bold")
    t.append(f" · {n_out}/{len(spec.eigenvalues[block])} with |λ|>1", style="dim")
    if len(spec.eigenvalues) > 1 and width >= 50:
        t.append(" · b: block", style="dim")
    lines: list = [t]
    h = Text(no_wrap=True, overflow="ellipsis")
    if len(v.app.session.radius_history) >= 1:
        steps = [s_ for s_, _ in v.app.session.radius_history]
        radii = [r for _, r in v.app.session.radius_history]
        h.append("ρ training ", style="dim")
        spark = sparkline(radii, max(4, width - 32))
        h.append(spark, style=_hex(COLORS["current"]))
        h.append(f" {radii[0]:.2f}→{radii[-1]:.2f} @{steps[-1]}", style="dim")
    elif v.app.trainer is not None:
        h.append("ρ while training: waiting for the next snapshot…", style="dim")
    else:
        h.append("ρ while training: press 2 to train", style="dim")
    lines.append(h)
    return Group(*lines)

def draw_recurrence(v, plt, width: int, height: int) -> None:
    s = v.spec
    plt.title(f"recurrence alone: ‖h_t‖, h ← {'tanh(W h)' if v.map == 'tanh' else 'W h'}")
    plt.xlabel("step t")
    if s is None or not s.curves:
        return
    series = []
    own = s.curves.get("own")
    if own is not None:
        series.append((f"ρ={s.own_radius:.2f} (model)", own, COLORS["current"]))
    chosen = s.curves.get("chosen")
    if chosen is not None:
        r = RADII[v.radius_choice]
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

def build_recurrence_note(v, width: int, height: int) -> RenderableType:
    s = v.spec
    t = Text(no_wrap=True, overflow="ellipsis")
    r = RADII[v.radius_choice]
    t.append("r ", style="bold")
    t.append("ρ: ", style="dim")
    for i, choice in enumerate(RADII):
        label = "own" if choice is None else f"{choice:g}"
        t.append(label, style="bold reverse" if i == v.radius_choice else "dim")
        t.append(" ")
    keys = Text(no_wrap=True, overflow="ellipsis")
    keys.append("t ", style="dim")
    keys.append(v.map, style="bold")
    keys.append(" · s ", style="dim")
    keys.append(v.start, style="bold")
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
        w = Text()  # wraps: cut at 80 columns it said nothing
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

def build_lyapunov(v, width: int, height: int) -> RenderableType:
    head = Text()  # wraps: cut at 80 columns it said nothing
    head.append("Lyapunov ", style="bold")
    name = "this model" if v.lyap_model == "current" else f"bundled {v.lyap_model}"
    head.append(name, style=f"bold {_hex(COLORS[v.lyap_model])}")
    head.append(" (m)", style="dim")
    ly = v.lyap
    if ly is None:
        return Group(head, Text("computing…", style="dim"))
    if ly.error:
        return Group(head, Text(ly.error, style="red"))
    jac = ly.jacobian
    head.append(" · ‖∂s_t/∂s_k‖, k ≤ t", style="dim")
    if jac.offset:
        head.append(f" · last {len(jac.tokens)} tokens", style="yellow")
    if jac.method != "exact":
        head.append(f" · {jac.describe_method()}", style="yellow")
    rate = Text()  # wraps: cut at 80 columns it said nothing
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
    shown = len(jac.computed_rows)
    heat = TriangleHeatmap(norms, jac.tokens, cell_width=cell, vmin=vmin, vmax=vmax, max_rows=rows,
                           row_offset=max(0, shown - (rows or shown)), rows=jac.rows)
    return Group(head, rate, key, heat)

def draw_horizon(v, plt, width: int, height: int) -> None:
    plt.title("memory: TV of p(next) when token k back changes")
    plt.xlabel("k steps back")
    h = v.horizon
    if h is None:
        return
    lo, hi = math.inf, -math.inf
    last_lag = 0
    for name in ("current", *BUNDLED):
        curve = h.curves.get(name)
        if curve is None or isinstance(curve, str):
            continue
        last_lag = max(last_lag, int(np.max(curve.lags)) if len(curve.lags) else 0)
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
    if last_lag:
        integer_ticks(plt, 1, last_lag, width)

def build_horizon_note(v, width: int, height: int) -> RenderableType:
    h = v.horizon
    t = Text()  # wraps: cut at 80 columns it said nothing
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
    sizes = lab_horizon_table(v.app.session.lab_results)
    if sizes:
        lines.append(Text(sizes, style="dim"))
    else:
        lines.append(Text("steps with TV ≥ 0.02 · per size: Lab (7)", style="dim"))
    return Group(*lines)


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
    """'rnn H32:3 H64:4 · lstm H64:12' from a MemoryResult: the models it measured."""
    by_cell: dict[str, list[str]] = {}
    for cell, hidden, horizon in result.measured_models():
        by_cell.setdefault(cell, []).append(f"H{hidden}:{horizon}")
    return " · ".join(f"{cell} " + " ".join(parts) for cell, parts in by_cell.items())
