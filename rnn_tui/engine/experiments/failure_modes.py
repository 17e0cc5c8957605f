"""The three failure modes of a vanilla RNN at long range, each measured here, each row naming
the experiment or screen that shows it in full:

- vanishing gradients (optimisation: cannot learn): how much of the verb decision's gradient
  reaches the subject of the default sentence, for the bundled vanilla RNN (Bengio et al. 1994,
  Pascanu et al. 2013). In full: the Gradients screen, `spectral`, `init-schemes`.
- finite capacity (information: cannot represent): the most bits a small network recalls of a
  list of random symbols (a quick `capacity` run). In full: `capacity`, `memory-horizon`.
- the curse of memory (dynamics: cannot maintain; Wang & Li, ICML 2024): a recurrence that
  remembers needs its spectral radius near 1, and there the final state's sensitivity to the
  recurrent weights grows with the memory. Measured on the linear recurrence Wang & Li analyse,
  h_t = lambda Q h_(t-1) + x_t with Q orthogonal; the chart is this experiment's own view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..corpus import DEFAULT_SENTENCE
from ..probes import gradient_profile
from .base import ExperimentResult, RunContext, experiment, fmt
from .capacity import CapacitySettings, run_capacity


@dataclass(frozen=True)
class FailureSettings:
    model: str = "rnn"  # the vanilla RNN whose gradient is measured (bundled or a run directory)
    text: str = DEFAULT_SENTENCE
    capacity_hidden: tuple = (8, 32)
    capacity_steps: int = 1000
    lambdas: tuple = (0.5, 0.8, 0.9, 0.95, 0.99, 0.993, 0.999)
    hidden: int = 32  # the curse-of-memory recurrence
    length: int = 100  # its T
    seed: int = 0


def curse_of_memory(lambdas, hidden: int, length: int, seed: int = 0, samples: int = 8):
    """For the linear recurrence h_t = lam Q h_(t-1) + x_t (Q orthogonal, random inputs), the
    model class Wang & Li analyse: the memory ||d h_T / d h_0|| (= lam^T) and the sensitivity of
    the output to the recurrent weight, as an elasticity: |d ln ||h_T|| / d ln lam|, a 1% change
    of lam moves h_T by that many %. Autograd in float64, mean over `samples` input draws."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(hidden, hidden, generator=g, dtype=torch.float64))
    xs = torch.randn(samples, length, hidden, generator=g, dtype=torch.float64) / math.sqrt(hidden)
    memory, sens = [], []
    for lam in lambdas:
        lam_t = torch.tensor(float(lam), dtype=torch.float64, requires_grad=True)
        h0 = torch.zeros(samples, hidden, dtype=torch.float64, requires_grad=True)
        h = h0
        for t in range(length):
            h = lam_t * (h @ q.T) + xs[:, t]
        norm = h.norm(dim=1)
        (d_lam,) = torch.autograd.grad(norm.log().sum(), lam_t, retain_graph=True)
        (d_h0,) = torch.autograd.grad(h[0, 0], h0)  # one row of d h_T / d h_0: its norm is lam^T
        memory.append(float(d_h0[0].norm()))
        sens.append(abs(float(d_lam)) * float(lam) / samples)
    return np.asarray(memory), np.asarray(sens)


class FailureResult(ExperimentResult):
    modes: tuple  # rows: (mode, domain, this app's number, what breaks, reference, shown in full by)
    gradient_at_subject: float
    steps_back: int
    per_step: float
    capacity_hidden: np.ndarray
    capacity_bits: np.ndarray
    lambdas: np.ndarray
    memory: np.ndarray  # ||d h_T / d h_0||
    sensitivity: np.ndarray  # |d ln ||h_T|| / d ln lambda|: % change of the output per 1% of lambda
    length: int

    def table(self) -> list[str]:
        rows = [f"{'failure mode':<19} {'domain':<13} this app's number"]
        for mode, domain, number, *_ in self.modes:
            rows.append(f"{mode:<19} {domain:<13} {number}")
        rows.append("")
        rows.append(f"{'lambda':>7} {'memory':>10} {'sensitivity':>12}   (linear RNN, T = {self.length})")
        for lam, m, s in zip(self.lambdas, self.memory, self.sensitivity):
            rows.append(f"{lam:>7g} {m:>10.3g} {s:>12.3g}")
        return rows

    def findings(self) -> list[str]:
        out = []
        for mode, _, number, breaks, ref, shown in self.modes:
            out.append(f"{mode}: {number}; {breaks} ({ref}); in full: {shown}")
        return out


@experiment("failure-modes", FailureSettings, FailureResult,
            explanation=("Why a vanilla RNN fails at long range, three ways, each measured here.",
                         "Vanishing gradients, finite capacity, and the curse of memory (Wang & Li 2024: the "
                         "sensitivity that grows as the radius nears 1)."),
            quick=dict(capacity_hidden=(8,), capacity_steps=150, lambdas=(0.5, 0.9, 0.99), length=60))
def run_failure_modes(s: FailureSettings, ctx: RunContext) -> dict:
    from ..checkpoint import load_model

    ctx.report(0.0, "vanishing: the bundled RNN's gradient at the subject")
    lm = load_model(s.model, device="cpu")
    gp = gradient_profile(lm, s.text, mode="verb")
    steps = gp.position - (gp.subject or 0)
    ratio = gp.ratio_subject
    per_step = ratio ** (1.0 / steps) if ratio > 0 and steps > 0 else float("nan")
    cap = run_capacity(CapacitySettings(hidden_sizes=tuple(s.capacity_hidden), steps=s.capacity_steps,
                                        max_symbols=8, tested=(1, 2, 4, 6, 8), seed=s.seed),
                       ctx.span(0.1, 0.8))
    ctx.report(0.85, "the curse of memory: sensitivity against the radius")
    memory, sens = curse_of_memory(s.lambdas, s.hidden, s.length, s.seed)
    lam = np.asarray(s.lambdas, dtype=np.float64)
    lo, hi = int(np.argmin(lam)), int(np.argmax(lam))
    bits = cap["capacity_bits"]
    best = int(np.nanargmax(bits)) if np.isfinite(bits).any() else 0
    h = int(s.capacity_hidden[best])
    modes = (
        ("vanishing gradients", "optimisation",
         f"{s.model}: {fmt(ratio, 4)} of the verb's gradient reaches the subject {steps} steps back "
         f"({fmt(per_step, 2)} a step)",
         "cannot learn long-range dependencies", "Bengio et al. 1994, Pascanu et al. 2013",
         "Gradients screen (3), spectral, init-schemes"),
        ("finite capacity", "information",
         f"H = {h} recalls at most {fmt(bits[best], 1)} bits of a list of random symbols after "
         f"{s.capacity_steps} training steps ({fmt(bits[best] / h, 2)} per unit)",
         "cannot represent distant information", "a fixed-size state: the data processing inequality",
         "capacity, memory-horizon"),
        ("curse of memory", "dynamics",
         f"lambda {lam[lo]:g} -> {lam[hi]:g}, T = {s.length}: memory ||dh_T/dh_0|| {memory[lo]:.2g} -> "
         f"{memory[hi]:.2g}, and a 1% change of lambda moves h_T by {sens[lo]:.2g}% -> {sens[hi]:.3g}% "
         f"(x{sens[hi] / max(sens[lo], 1e-300):.3g})",
         "cannot stably maintain memory", "Wang & Li, ICML 2024", "failure-modes (its chart), spectral"),
    )
    ctx.report(1.0, "failure modes: done")
    return dict(modes=modes, gradient_at_subject=float(ratio), steps_back=int(steps), per_step=float(per_step),
                capacity_hidden=np.asarray(s.capacity_hidden, dtype=np.int64), capacity_bits=np.asarray(bits),
                lambdas=lam, memory=memory, sensitivity=sens, length=int(s.length))
