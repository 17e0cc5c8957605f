"""The concepts the seeds teach, per screen, for the help (`?`): each names the panel whose data
shows it and quotes this app's own number where one was measured in this session (what the
screens put in `session.facts`, the Lab's results); where nothing was measured yet, it says
where the number comes from.

Plain Python over the facts the screens stored: no torch here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Concept:
    name: str
    where: str  # the panel (or experiment) whose data shows it
    text: Callable[[dict, dict], str]  # (facts, lab results) -> one or two sentences


def _g(x) -> str:
    try:
        return f"{float(x):.2g}"
    except (TypeError, ValueError):
        return "?"


# ------------------------------------------------------------------------ stepper
def _recurrence(facts, lab) -> str:
    rows = facts.get("stepper.agreement") or []
    size = ""
    if rows and rows[0][2] is not None:
        size = f" (here one W_hh for all {len(rows[0][2].tokens)} steps)"
    return ("h_t = tanh(W_xh x_t + W_hh h_(t-1) + b). The W_hh h_(t-1) term, the recurrent connection, is the "
            "one change from a feedforward net: without it each column of the heatmap would depend on its own "
            f"token alone; with it every column carries the ones before{size}.")


def _agreement(facts, lab) -> str:
    rows = facts.get("stepper.agreement") or []
    if not rows or rows[0][2] is None:
        return ("The default sentence is a test: 'was' must agree with 'cat', four words back, across a clause "
                "whose pronoun ('we') is plural. The agreement line scores it for every cell; p flips the number.")
    a = rows[0][2]
    scores = ", ".join(f"{label} {va.p_correct:.0%}" for _, label, va, _ in rows if va is not None)
    return (f"'{a.correct}' must agree with '{a.subject}', {a.distance} steps before the step that decides it, "
            f"across a clause with its own nouns and pronouns. The share each model gives the right form: {scores}.")


def _not_infinite(facts, lab) -> str:
    reach = facts.get("stepper.reach")
    here = ""
    if reach is not None:
        tokens, (back, first) = reach
        here = (f" Here the state after the last token depends on the one {back} tokens back at >= 1% of its "
                f"dependence on itself (on the first token: {_g(first)}); what the prediction still uses is "
                "shorter.")
    return ("Memory is not infinite: the state is a fixed-size vector, old inputs fade (the mem row) and are "
            "overwritten." + here + " " + _horizons(facts, lab))


def _horizons(facts, lab) -> str:
    seen = facts.get("dynamics.horizon") or {}
    measured = [(n if n != "current" else "this", c.horizon) for n, c in seen.items() if hasattr(c, "horizon")]
    out = ""
    if measured:
        out = ("Horizon measured on the Dynamics screen (tokens back a replaced token still moves the prediction): "
               + ", ".join(f"{n} {h}" for n, h in measured) + ".")
    r = lab.get("memory-horizon")
    if r is not None:
        done = ", ".join(f"{c} H={h}: {n}" for c, h, n in r.measured_models())
        return (out + " " if out else "") + f"Lab → memory-horizon: {done}."
    return out or "The Dynamics screen (5) and Lab → memory-horizon measure the horizon."


def _not_recording(facts, lab) -> str:
    alias = facts.get("stepper.alias")
    if alias is None:
        return ("The hidden state is not a recording: it is a lossy summary kept for predicting the next token, "
                "and two different histories can leave nearly the same state.")
    return (f"The hidden state is not a recording: after '{alias.text}' and '{alias.partner}' the last states "
            f"are {alias.relative:.0%} of the state's size apart, while two states of the same sentence are "
            f"typically {alias.typical:.0%} apart: two different histories, nearly the same state.")


def _elman(facts, lab) -> str:
    r = lab.get("elman")
    found = ""
    if r is not None and r.splits:
        found = f" Measured: the top split is {r.splits[0][1]} | {r.splits[0][2]}; {r.novel_word} lands with the " \
                f"{r.novel_group}."
    return ("The category tags under the words are the grammar's; the model never sees them. Elman (1990, "
            "'Finding structure in time') trained a network on prediction alone, no labels, and found the "
            "categories in its hidden state: Lab → elman." + found)


# ---------------------------------------------------------------------- gradients
def _gradients(facts):
    return facts.get("gradients")


def _unrolling(facts, lab) -> str:
    g = _gradients(facts)
    depth = ""
    if g is not None:
        current = next((e for e in g.entries if e.profile is not None), None)
        if current is not None:
            depth = f" Here {current.profile.position + 1} steps to the loss: a {current.profile.position + 1}-layer net."
    return ("Unrolled, T steps of one shared cell are a T-layer network whose layers share W_hh and W_xh, so "
            "back-propagation through time is back-propagation through that depth (the diagram under j)." + depth)


def _jacobian(facts, lab) -> str:
    g = _gradients(facts)
    text = ("One step back the gradient is multiplied by J_t = diag(f'(a_t)) W_hh (LSTM: its cell path by "
            "diag(f_t); GRU: diag(z_t) plus the candidate's path).")
    if g is not None and g.jacobian is not None and g.spectrum is not None:
        import numpy as np

        jac, spec = g.jacobian, g.spectrum
        radius = np.asarray(jac.step_radius, float)
        if radius.size and np.isfinite(radius).any():
            text += (f" This model: rho({spec.main}) = {_g(spec.radius[spec.main])}, mean {jac.keep_name} "
                     f"{_g(np.nanmean(jac.step_keep))}, median rho(J_t) {_g(np.nanmedian(radius))}: a radius above 1 "
                     "with a fading gradient is no contradiction when the slopes are small.")
    return text


def _vanish(facts, lab) -> str:
    g = _gradients(facts)
    out = ("Gradients vanish or explode because BPTT multiplies one Jacobian per step: a gain below 1 a step "
           "shrinks the product exponentially, above 1 grows it (clipping caps that: Lab → clipping).")
    if g is not None and g.mode == "verb":
        rnn = next((e.profile for e in g.entries if e.cell == "rnn" and e.profile is not None), None)
        if rnn is not None and rnn.subject is not None and rnn.ratio_subject > 0:
            steps = rnn.position - rnn.subject
            out += (f" The vanilla RNN here: {_g(rnn.ratio_subject)} of the verb's gradient reaches the subject "
                    f"{steps} steps back, {_g(rnn.ratio_subject ** (1 / steps))} a step.")
    return out


def _not_zero(facts, lab) -> str:
    g = _gradients(facts)
    ratios = ""
    if g is not None:
        vals = [(e.name if e.name != "current" else "this", e.profile.ratio_subject if g.mode == "verb"
                 and e.profile.subject is not None else e.profile.ratio_first_last)
                for e in g.entries if e.profile is not None]
        vals = [(n, v) for n, v in vals if math.isfinite(v)]
        if vals:
            ratios = " Measured here: " + ", ".join(f"{n} {_g(v)}" for n, v in vals) + "."
    return ("Vanishing is not zero: the early gradient is exponentially small, not absent, and drowns in the "
            "noise of the nearby terms; only a float32 underflow is an exact zero (drawn ×)." + ratios)


def _highway(facts, lab) -> str:
    g = _gradients(facts)
    out = ("The LSTM's cell state is updated by addition, c_t = f_t c_(t-1) + i_t g_t, so along c the only "
           "factor per step is the forget gate: the gradient highway (cyan curve).")
    nc = g.carriers if g is not None else None
    if nc is not None and nc.knows_number:
        out += (f" Here {nc.unit_names()} carry the subject's number with forget gates near "
                f"{_g(nc.keep_units.mean())} and keep {_g(nc.product_units.max())} of the gradient over "
                f"{nc.distance} steps; the median unit keeps {_g(nc.product_median)}.")
    return out


def _more_units(facts, lab) -> str:
    r = lab.get("memory-horizon")
    cap = lab.get("capacity")
    out = "More units is not proportionally more memory: the decay is multiplicative, per step, whatever H is."
    if r is not None:
        rnn = sorted((h, n) for c, h, n in r.measured_models() if c == "rnn")
        if rnn:
            out += " Measured horizon per H (vanilla RNN): " + ", ".join(f"H={h}: {n}" for h, n in rnn) + "."
    else:
        out += " Lab → memory-horizon measures the horizon per H."
    if cap is not None:
        out += " Capacity: " + ", ".join(f"H={int(h)} holds {b:.1f} bits" for h, b in zip(cap.hidden, cap.capacity_bits)
                                         if math.isfinite(b)) + "."
    return out


def _failure_modes(facts, lab) -> str:
    r = lab.get("failure-modes")
    if r is None:
        return ("Three independent reasons a vanilla RNN fails at long range: vanishing gradients (cannot learn), "
                "finite capacity (cannot represent), the curse of memory (cannot maintain: the sensitivity that "
                "grows as the radius nears 1, Wang & Li 2024). Lab → failure-modes measures all three.")
    return "Three failure modes, as measured: " + "; ".join(f"{m[0]}: {m[2]}" for m in r.modes) + "."


CONCEPTS: dict[str, tuple[Concept, ...]] = {
    "stepper": (
        Concept("recurrence", "hidden state", _recurrence),
        Concept("agreement", "agreement", _agreement),
        Concept("not infinite", "memory", _not_infinite),
        Concept("not a recording", "hidden state", _not_recording),
        Concept("Elman 1990", "sentence", _elman),
    ),
    "gradients": (
        Concept("unrolling", "jacobian", _unrolling),
        Concept("one step back", "jacobian", _jacobian),
        Concept("vanish / explode", "dL/dh_t", _vanish),
        Concept("not zero", "dL/dh_t", _not_zero),
        Concept("gradient highway", "dL/dc_t", _highway),
    ),
    "dynamics": (
        Concept("more units", "memory horizon", _more_units),
    ),
    "lab": (
        Concept("three failures", "failure-modes", _failure_modes),
        Concept("Elman 1990", "elman", _elman),
        Concept("more units", "memory-horizon, capacity", _more_units),
    ),
}


def concept_rows(app, mode: str) -> list[tuple[str, str]]:
    """(name, "panel: text") for the help's concepts section of one screen."""
    session = getattr(app, "session", None)
    facts = getattr(session, "facts", {}) if session is not None else {}
    lab = getattr(session, "lab_results", {}) if session is not None else {}
    rows = []
    for c in CONCEPTS.get(mode, ()):
        try:
            text = c.text(facts, lab)
        except Exception as exc:  # noqa: BLE001 - a concept must never take the help down
            text = f"(cannot say: {type(exc).__name__})"
        rows.append((c.name, f"[{c.where}] {text}"))
    return rows
