"""`number_carriers`: which units carry the subject's number to the verb, what their gates do
on the way, and how much of the verb decision's gradient they bring back to the subject.

A norm over every unit can hide a gated model's memory: the few units that hold the number
(their forget gates near 1, so their gradient comes back almost whole) are outweighed at the
verb by the many units that only predict the next letter and forget fast. This probe reads the
sentence and its twin with the other subject number (`agreement_text.flip_subject`), takes
the units whose state differs most between the two over the stretch from the subject to the
verb's decision, and measures them alone.

`aliasing`: the other side of the same lesson. The hidden state is a lossy summary, not a
recording: two different histories that end alike leave nearly the same state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..agreement_text import alias_partner, flip_subject
from .agreement import token_slot, verb_agreement
from .base import MAX_TRACE_TOKENS, ProbeResult, encode_text, zero_state
from .tracing import _bptt, trace

# What each cell's per-unit "keep" factor is along the way back (the diagonal of the step's
# Jacobian that carries a unit to itself): the forget gate, the update gate, the tanh slope.
KEEP = {"lstm": ("f", "forget gate f"), "gru": ("z", "update gate z (the share kept)"),
        "rnn": ("slope", "tanh slope 1 - h^2")}


@dataclass(frozen=True, eq=False)
class NumberCarriers(ProbeResult):
    cell: str
    state: str  # "c" (LSTM cell state) or "h"
    subject: str
    twin_subject: str
    units: np.ndarray  # int [K]: the units that differ most between the twins, most first
    difference: np.ndarray  # [K]: mean |state(text) - state(twin)| over the stretch
    keep_name: str
    keep_units: np.ndarray  # [K]: their mean keep factor over the stretch
    keep_all: float  # mean keep factor of every unit over the stretch
    product_units: np.ndarray  # [K]: the keep factor multiplied over the stretch (the path's gain)
    product_median: float  # the same product for the median unit
    ratio_all: float  # ||grad at the subject|| / ||grad at the decision|| over every unit (the curve)
    share_subject: float  # the K units' share of ||grad||^2 at the subject
    share_decision: float  # their share at the decision
    distance: int  # steps from the subject to the decision
    hidden: int
    p_correct: float = float("nan")  # the model's share of the right verb form (verb_agreement)
    p_correct_twin: float = float("nan")  # the same on the twin: a model that knows the number gets both

    @property
    def knows_number(self) -> bool:
        return min(self.p_correct, self.p_correct_twin) >= 0.8

    def unit_names(self) -> str:
        return ", ".join(f"{self.state}{u}" for u in self.units.tolist())

    def describe(self) -> str:
        keep = self.keep_units.mean() if self.keep_units.size else float("nan")
        lo, hi = float(self.product_units.min()), float(self.product_units.max())
        span = _g(hi) if _g(lo) == _g(hi) else f"{_g(lo)}-{_g(hi)}"
        head = (f"{self.unit_names()} carry the number ({self.subject!r} vs {self.twin_subject!r} moves them by "
                f"{self.difference.mean():.2f}): their {self.keep_name} averages {keep:.2f} over the "
                f"{self.distance} steps (all {self.hidden} units: {self.keep_all:.2f})")
        if self.state == "c":
            return (f"{head}, so their cell-state path keeps {span} of the gradient (the median unit's: "
                    f"{_g(self.product_median)}). The highway is there, in {len(self.units)} of {self.hidden} "
                    f"units; at the verb the norm is the units that predict the next letter and forget, "
                    f"so the curve over all units falls to {_g(self.ratio_all)}")
        return (f"{head}; multiplied over the steps that is {span}: no unit keeps the number on a path of "
                f"its own, so its gradient fades with every step (over all units: {_g(self.ratio_all)})")


def _states(lm, text):
    ids, tokens, _, _ = encode_text(lm, text, "skip", None, MAX_TRACE_TOKENS, "number carriers")
    model = lm.model
    with torch.no_grad():
        out = model.stepwise(torch.as_tensor(ids, device=model.device)[None], zero_state(model))
    h = out.hidden_stack()[-1, 0].double().cpu().numpy()  # [T, H] top layer
    inner = {n: v[-1, 0].double().cpu().numpy() for n, v in out.internals.items()}
    return ids, tokens, h, inner


def number_carriers(lm, text: str, k: int = 3) -> NumberCarriers | None:
    """The K units that carry the subject's number to the verb (None without a twin)."""
    twin = flip_subject(text)
    if twin is None:
        return None
    cfg = lm.config
    ids, tokens, h, inner = _states(lm, text)
    _, tokens_b, h_b, inner_b = _states(lm, twin)
    slot, slot_b = token_slot(tokens, lm.vocab.level), token_slot(tokens_b, lm.vocab.level)
    if slot is None or slot_b is None or not slot.has_target:
        return None
    a0, b0, n = slot.subject, slot_b.subject, slot.decision - slot.subject
    if slot_b.decision - slot_b.subject != n or n < 1:
        return None
    state = "c" if cfg.cell == "lstm" else "h"
    sa = inner["c"] if state == "c" else h
    sb = inner_b["c"] if state == "c" else h_b
    diff = np.abs(sa[a0:a0 + n + 1] - sb[b0:b0 + n + 1]).mean(0)
    k = max(1, min(int(k), cfg.hidden))
    units = np.argsort(-diff, kind="stable")[:k]
    span = slice(a0 + 1, a0 + n + 1)
    gate, keep_name = KEEP[cfg.cell]
    keep = 1.0 - h[span] ** 2 if gate == "slope" else inner[gate][span]
    # Per-unit gradients of the verb decision's loss (the Gradients screen's default loss).
    model = lm.model
    y = torch.as_tensor(ids, device=model.device)
    with torch.no_grad():
        x = model.embed(y).unsqueeze(0)
        gh, _, gc, _ = _bptt(model, y, x, torch.tensor([slot.decision], device=model.device))
    g = (gc if state == "c" else gh)[-1].double().cpu().numpy()  # [T, H]
    at_s, at_d = g[slot.subject], g[slot.decision]

    def share(g_t):
        total = float((g_t ** 2).sum())
        return float((g_t[units] ** 2).sum()) / total if total > 0 else 0.0

    na, nd = float(np.linalg.norm(at_s)), float(np.linalg.norm(at_d))
    with np.errstate(divide="ignore"):
        log_prod = np.log(np.clip(keep, 1e-300, None)).sum(0)  # [H]
    return NumberCarriers(
        cell=cfg.cell, state=state, subject=slot.slot.subject, twin_subject=slot_b.slot.subject,
        units=units.astype(np.int64), difference=diff[units], keep_name=keep_name,
        keep_units=keep[:, units].mean(0), keep_all=float(keep.mean()),
        product_units=np.exp(log_prod[units]), product_median=float(np.exp(np.median(log_prod))),
        ratio_all=na / nd if na > 0 and nd > 0 else 0.0, share_subject=share(at_s), share_decision=share(at_d),
        distance=n, hidden=cfg.hidden, p_correct=verb_agreement(lm, text).p_correct,
        p_correct_twin=verb_agreement(lm, twin).p_correct,
    )


def _g(x: float) -> str:
    return f"{x:.2g}"


# ------------------------------------------------------------------------ aliasing
@dataclass(frozen=True, eq=False)
class Aliasing(ProbeResult):
    """Two different histories, nearly the same state: the text and a partner that differs in
    subject, number and clause but ends alike, and how far apart the last states are."""

    text: str
    partner: str
    distance: float  # ||h_last(text) - h_last(partner)||, top layer
    relative: float  # distance / ||h_last(text)||
    typical: float  # median distance between two states of the text, over ||h_last||: the scale


def aliasing(lm, text: str) -> Aliasing | None:
    """How close the states after `text` and after its `alias_partner` are (None without one)."""
    partner = alias_partner(text)
    if partner is None:
        return None
    a = trace(lm, text, top_k=1).hidden[-1].astype(np.float64)
    b = trace(lm, partner, top_k=1).hidden[-1].astype(np.float64)
    size = float(np.linalg.norm(a[-1])) or 1.0
    dist = float(np.linalg.norm(a[-1] - b[-1]))
    pairs = np.linalg.norm(a[:, None] - a[None], axis=-1)[np.triu_indices(len(a), 1)]
    typical = float(np.median(pairs)) / size if pairs.size else float("nan")
    return Aliasing(text=text, partner=partner, distance=dist, relative=dist / size, typical=typical)
