"""What the Gradients screen draws, as pure functions of what its worker computed: the curves
(‖dL/dh_t‖ per model, an LSTM's ‖dL/dc_t‖, the subject and the loss marked), the words under
them, the unrolled network and the one-step Jacobian in words."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.console import Group
from rich.text import Text

from ...render.colors import (CELL_STATE_RGB, CURRENT_RGB, DX_RGB, MARK_RGB, MODEL_RGB, UNDERFLOW_RGB,
                              hex_code as _hex)
from ...render.heatmap import token_label

MODEL_COLORS = {"current": CURRENT_RGB, **MODEL_RGB}
DX_COLOR = DX_RGB
DC_COLOR = CELL_STATE_RGB
UNDERFLOW_COLOR = UNDERFLOW_RGB
UNDERFLOW_MARKER = "×"
LOSS_TITLE = {"verb": "loss: the verb's number", "last": "loss: last token", "sum": "loss: sum of all"}


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
    cell: str = ""  # "rnn", "lstm", "gru"


@dataclass(frozen=True)
class GradientsComputed:
    """Everything the screen shows for one (model, sentence, loss)."""

    entries: list[ProfileEntry] = field(default_factory=list)
    jacobian: Any = None  # JacobianMap
    spectrum: Any = None  # Spectrum
    jacobian_error: str = ""
    mode: str = "last"  # the loss actually taken (a "verb" choice without a verb falls back to "last")
    carriers: Any = None  # NumberCarriers of the LSTM on show (verb mode), or None
    carriers_of: str = ""  # whose: "this" or "lstm"
    gru_carriers: Any = None  # NumberCarriers of the GRU (this model or the bundled one), or None


@dataclass(frozen=True)
class ProfileDrawn:
    underflow_points: int  # how many exact zeros the last draw marked


def dc_entry(entries: list[ProfileEntry]) -> ProfileEntry | None:
    """The one LSTM whose cell-state gradient is drawn: this model if it is one, else the bundled LSTM."""
    lstms = [e for e in entries if e.profile is not None and e.profile.dc is not None]
    return next((e for e in lstms if e.name == "current"), lstms[0] if lstms else None)


def draw_profiles(plt, width: int, height: int, entries: list[ProfileEntry], mode: str) -> ProfileDrawn:
    """||dL/dh_t|| over t, log y, one line per model; an LSTM's ||dL/dc_t||; underflow at a floor."""
    plt.title(f"‖dL/dh_t‖ by position · {LOSS_TITLE.get(mode, mode)}")
    plt.xlabel("position t (token)")
    profiles = [e for e in entries if e.profile is not None]
    plt.yscale("log" if profiles else "linear")  # plotext cannot build an empty log chart
    highway = dc_entry(entries)
    # One floor for every curve, so the underflow marks line up.
    all_vals = np.concatenate([np.ravel(e.profile.dh[-1]) for e in profiles] +
                              [np.ravel(e.profile.dx) for e in profiles if e.name == "current"] +
                              ([np.ravel(highway.profile.dc[-1])] if highway is not None else [])) \
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
        if e is highway:
            dc = np.asarray(p.dc[-1], float)
            uc = np.asarray(p.underflow_c[-1], bool)
            _curve(plt, t, np.where(ok & ~uc, dc, np.nan), DC_COLOR)
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
    marked = next((e.profile for e in profiles if e.profile.subject is not None), None)
    if marked is not None:  # where the number is known, and the prediction that needs it
        plt.vertical_line(marked.subject, color=MARK_RGB)
        plt.vertical_line(marked.position, color=MARK_RGB)
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


# ------------------------------------------------------------------------ words
def _swatch(t: Text, name: str) -> None:
    t.append("■ ", style=_hex(MODEL_COLORS.get(name, (200, 200, 200))))


def profile_words(message: GradientsComputed) -> Text | Group:
    """Under the chart: this model's profile in a sentence, every model's ratio, and (loss at
    the verb) why a curve says what it says."""
    t = Text()
    current = next((e for e in message.entries if e.name == "current"), None)
    if current is None:
        t.append("no model loaded: ctrl+p to load one, or train one (2)\n", style="dim")
    elif current.profile is not None and message.mode == "verb" and current.profile.subject is not None:
        pass  # the ratios line below says it, model by model
    elif current.profile is not None:
        p = current.profile
        _swatch(t, "current")
        t.append(p.describe().capitalize(), style="bold")
        t.append(".")
        if p.unknown_message:
            t.append(f" ({p.unknown_message})", style="dim")
        t.append("\n")
    elif current.error:
        t.append(f"this model: {current.error}\n", style="red")
    verb = message.mode == "verb"
    parts = []
    for e in message.entries:
        if e.profile is None and e.name == "current":
            continue
        piece = Text()
        _swatch(piece, e.name)
        name = "this" if e.name == "current" else e.name
        if e.profile is None:
            piece.append(f"{name}: n/a", style="dim")
        elif verb and e.profile.subject is not None:
            p = e.profile
            piece.append(f"{name} ")
            piece.append(ratio_words(p.ratio_subject, bool(p.underflow_h[-1, p.subject])), style="bold")
            if p.dc is not None and math.isfinite(p.ratio_subject_c):
                piece.append(f" c {p.ratio_subject_c:.2g}", style=_hex(DC_COLOR))
        else:
            p = e.profile
            piece.append(f"{name} ")
            piece.append(ratio_words(p.ratio_first_last, bool(p.underflow_h[-1, 0])), style="bold")
        parts.append(piece)
    if parts:
        marked = next((e.profile for e in message.entries if e.profile is not None and e.profile.subject is not None),
                      None)
        if verb and marked is not None:
            t.append(f"of the verb's gradient, the subject {marked.subject_word!r} "
                     f"({marked.position - marked.subject} back) gets: ", style="dim")
        else:
            t.append("first/last: ", style="dim")
        for i, piece in enumerate(parts):
            if i:
                t.append("  ")
            t.append_text(piece)
        t.append("\n")
    why = verdict_words(message)
    if why is not None:
        t.append_text(why)
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
    highway = dc_entry(message.entries)
    if highway is not None:
        who = "this lstm" if highway.name == "current" else "lstm"
        t.append(f"  ── ‖dL/dc_t‖ {who}'s cell state", style=_hex(DC_COLOR))
    if current is not None and current.profile is not None:  # dL/dx is drawn for a loaded model only
        t.append("  ── ‖dL/dx_t‖ this", style=_hex(DX_COLOR))
    if verb:
        t.append("  │ subject · loss", style=_hex(MARK_RGB))
    t.rstrip()
    missing = [e for e in message.entries if e.profile is None and e.name != "current"]
    if missing:
        names = ", ".join(e.name for e in missing)
        note = Text(f"{names} not drawn: {missing[0].error}", style="dim", no_wrap=True, overflow="ellipsis")
        return Group(t, note)
    return t


def _share(x: float) -> str:
    """A fraction as a share a newcomer reads at once: 22%, 0.4%, or 3e-05 when tiny."""
    if x >= 0.1:
        return f"{min(x, 1.0) * 100:.0f}%"
    return f"{x * 100:.2g}%" if x >= 1e-3 else f"{x:.1g}"


def verdict_words(message: GradientsComputed) -> Text | None:
    """With the loss at the verb: which model keeps the most gradient at the subject, and, where
    the LSTM's curve keeps less than it remembers, why (the units that carry the number)."""
    if message.mode != "verb":
        return None
    ratios = {e.name: e.profile.ratio_subject for e in message.entries
              if e.profile is not None and e.profile.subject is not None}
    nc = message.carriers
    if not ratios or nc is None or not nc.knows_number:
        return None  # an LSTM that does not know the number has no memory of it to explain
    t = Text()
    lstm = "current" if message.carriers_of == "this" else "lstm"
    rnn = next((e.name for e in message.entries if e.cell == "rnn" and e.name in ratios), None)
    rnn_ratio = ratios[rnn] if rnn is not None else None
    lstm_h = ratios.get(lstm, float("nan"))
    if rnn_ratio is not None and math.isfinite(lstm_h) and lstm_h < rnn_ratio:
        t.append(f"the RNN keeps more of the whole gradient here ({rnn_ratio:.2g} vs {lstm_h:.2g}), but that "
                 "total is mostly units that guess the next letter and forget within a few steps. ",
                 style="yellow")
    else:
        t.append("how the LSTM keeps it: ", style="dim")
    keep = float(nc.keep_units.mean())
    lo, hi = float(nc.product_units.min()), float(nc.product_units.max())
    n = len(nc.units)
    t.append(f"{n} unit{'s' if n != 1 else ''} ({nc.unit_names()}) carry the number, forget gates ≈ {keep:.2f} "
             f"(all units {nc.keep_all:.2f}), so along their cell path {_share(lo)}-{_share(hi)} of the "
             f"gradient survives the {nc.distance} steps, where a typical unit keeps {nc.product_median:.1g}",
             style="dim")
    g = message.gru_carriers
    gru_ratio = next((ratios[e.name] for e in message.entries if e.cell == "gru" and e.name in ratios), None)
    if g is not None and g.knows_number and gru_ratio is not None and math.isfinite(lstm_h) and gru_ratio < lstm_h:
        t.append(f". The GRU's curve fades more ({gru_ratio:.2g}), yet it puts at least "
                 f"{min(g.p_correct, g.p_correct_twin):.0%} on the right verb form for either subject number: a "
                 f"small gradient back to the subject is not a lost memory (Compare, 6, tests every distance)",
                 style="dim")
    return t


# ------------------------------------------------------------------ the unrolled net
def unrolled_diagram(tokens: tuple[str, ...], position: int, width: int, loss_name: str) -> Text:
    """The recurrence drawn unrolled over this sentence up to the loss: one box per step, every
    box the same cell (the same W), so T steps are a T-layer network with tied weights and BPTT
    is back-propagation through that depth."""
    n = max(1, min(len(tokens), position + 1))
    room = max(4, (width - 14) // 2)  # two columns per step
    shown = list(range(n)) if n <= room else list(range(room // 2)) + [-1] + list(range(n - (room - room // 2 - 1), n))
    top, mid, arrows = Text("x  "), Text("h  "), Text("   ")
    for k in shown:
        if k < 0:
            top.append("… ")
            arrows.append("  ")
            mid.append("…→")
            continue
        top.append(token_label(tokens[k], 1)[:1] + " ", style="bold" if k == position else "")
        arrows.append("↓ ")
        mid.append("■" + ("→" if k < n - 1 else ""), style=_hex(CURRENT_RGB) if k == position else "")
    boxes = len(mid.plain) - 3
    mid.append(f" → {loss_name}", style="dim")
    t = Text()
    t.append("unrolled: ", style="bold")
    t.append(f"{n} steps of one cell = a {n}-layer network whose layers share W_hh, W_xh; "
             f"BPTT is back-propagation through those {n} layers", style="dim")
    t.append("\n")
    for line in (top, arrows, mid):
        t.append_text(line)
        t.append("\n")
    label = " BPTT: the gradient goes back through every step"
    back = "◀" + "━" * max(2, boxes - 2)
    t.append("   " + back + (label if 3 + len(back) + len(label) <= width else ""), style="dim")
    return t


def step_jacobian_words(jac, spec, cell: str) -> Text:
    """One step back in words: what J_t is for this cell, ρ(W) against the measured ρ(J_t)."""
    t = Text()
    radius = np.asarray(getattr(jac, "step_radius", []), float)
    keep = np.asarray(getattr(jac, "step_keep", []), float)
    if not radius.size:
        return t
    rho_j = float(np.nanmedian(radius)) if np.isfinite(radius).any() else float("nan")
    k = float(np.nanmean(keep)) if keep.size else float("nan")
    rho_w = spec.radius.get(spec.main, float("nan")) if spec is not None else float("nan")
    t.append("one step back: ", style="bold")
    if cell == "rnn":
        t.append("Jₜ = ∂hₜ/∂hₜ₋₁ = diag(1−hₜ²)·W_hh. ", style="")
        t.append(f"ρ(W_hh) = {rho_w:.2g}", style="bold")
        t.append(f", but the tanh slope 1−hₜ² averages {k:.2f} on this sentence (saturated units pass "
                 f"little back), so ρ(Jₜ) has median {rho_j:.2g}: ", style="dim")
        t.append("ρ(W) > 1 and a fading gradient are no contradiction" if rho_w > 1 else
                 "both below 1: the gradient fades", style="dim")
    elif cell == "lstm":
        t.append("for (hₜ, cₜ), the c→c block of Jₜ is diag(fₜ): ", style="")
        t.append(f"the forget gate averages {k:.2f}", style="bold")
        t.append(f" here, and a unit whose f stays near 1 passes its gradient back almost whole (the "
                 f"gradient highway); median ρ(Jₜ) {rho_j:.2g}, ρ of the candidate block {rho_w:.2g}", style="dim")
    else:
        t.append("Jₜ = diag(zₜ) + the candidate's path (through diag(1−nₜ²), W_hn and the gates): ", style="")
        t.append(f"the update gate z averages {k:.2f}", style="bold")
        t.append(f" here (z near 1 copies a unit through); median ρ(Jₜ) {rho_j:.2g}, ρ(W_hn) {rho_w:.2g}",
                 style="dim")
    return t
