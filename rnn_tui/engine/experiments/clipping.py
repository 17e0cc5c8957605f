"""Clipping: plain SGD at a learning rate that blows a vanilla RNN up, with and without
gradient-norm clipping; gradient-norm spikes, the loss, and which run survived.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..corpus import load_corpus
from ..train import TrainConfig
from .base import ExperimentResult, RunContext, experiment, final_loss, fmt, per_step, stack_padded


@dataclass(frozen=True)
class ClippingSettings:
    cell: str = "rnn"
    hidden: int = 64
    embed: int = 32
    optimizer: str = "sgd"
    lr: float = 6.0  # large on purpose: unclipped, it blows up for seeds 0-2 (5.0 only for seed 0)
    clip: float = 1.0
    steps: int = 300
    seq_len: int = 64
    batch: int = 32
    corpus: str = "grammar"
    spike_factor: float = 10.0  # a spike: grad norm > this x the median of the steps before it
    seed: int = 0
    device: str = "cpu"


def count_spikes(norms: np.ndarray, factor: float = 10.0, warmup: int = 5) -> int:
    """Steps whose gradient norm exceeds `factor` times the median of all earlier steps."""
    g = np.asarray(norms, dtype=np.float64)
    n = 0
    for t in range(warmup, len(g)):
        med = np.median(g[:t])
        if not np.isfinite(g[t]) or g[t] > factor * med:
            n += 1
    return n


class ClippingResult(ExperimentResult):
    runs: tuple[str, ...]  # ("no clipping", "clip at 1")
    steps: np.ndarray  # [S]
    loss: np.ndarray  # [2, S]
    grad_norm: np.ndarray  # [2, S]: before clipping
    clipped_fraction: np.ndarray  # [2]: steps whose norm was above the clip
    max_grad_norm: np.ndarray  # [2]
    max_grad_step: np.ndarray  # int [2]: the step where the gradient norm peaked
    peak_loss: np.ndarray  # [2]: the run's highest training loss (the chart's "peaks at")
    peak_loss_step: np.ndarray  # int [2]: where it was
    spikes: np.ndarray  # int [2]
    final_loss: np.ndarray  # [2]: mean training loss of the last 20 steps
    val_loss: np.ndarray  # [2]
    diverged: np.ndarray  # bool [2]: the trainer stopped on a non-finite or overflowing loss
    blew_up: np.ndarray  # bool [2]: diverged, or ended worse than a uniform guess
    uniform_loss: float  # ln(vocabulary size)
    stop_reason: tuple[str, ...]

    def table(self) -> list[str]:
        rows = [f"{'run':<14} {'final loss':>10} {'val':>7} {'max |g|':>9} {'spikes':>6} {'clipped':>8} outcome"]
        for i, name in enumerate(self.runs):
            outcome = "diverged" if self.diverged[i] else ("blew up" if self.blew_up[i] else "fine")
            rows.append(f"{name:<14} {fmt(self.final_loss[i]):>10} {fmt(self.val_loss[i]):>7} "
                        f"{self.max_grad_norm[i]:>9.3g} {int(self.spikes[i]):>6} "
                        f"{self.clipped_fraction[i]:>8.0%} {outcome}")
        return rows

    def findings(self) -> list[str]:
        out = []
        for i, name in enumerate(self.runs):
            if not math.isfinite(self.final_loss[i]):
                continue
            out.append(f"{name}: gradient norm peaked at {self.max_grad_norm[i]:.3g} (step {int(self.max_grad_step[i])}), "
                       f"loss peaked at {self.peak_loss[i]:.3g} (step {int(self.peak_loss_step[i])}) and ended "
                       f"at {self.final_loss[i]:.3f} nats (a uniform guess: {self.uniform_loss:.2f})")
        if len(self.runs) == 2 and np.isfinite(self.final_loss).all():
            if self.blew_up[0] and not self.blew_up[1]:
                out.append("without clipping the run blew up; clipping kept it learning")
            elif not self.blew_up.any():
                out.append("neither run blew up at this learning rate")
        return out


@experiment("clipping", ClippingSettings, ClippingResult,
            explanation=("Plain SGD with a large learning rate on a vanilla RNN, with and without "
                         "gradient-norm clipping.",
                         "Without it the gradient norm spikes and the loss blows up; with it training goes on."),
            quick=dict(steps=80))
def run_clipping(s: ClippingSettings, ctx: RunContext) -> dict:
    corpus = load_corpus(s.corpus, "char", seed=s.seed)
    uniform = math.log(len(corpus.vocab))
    runs = ("no clipping", f"clip at {s.clip:g}")
    L, G, cf, mx, sp, fin, val, div, blew, why = [], [], [], [], [], [], [], [], [], []
    mstep, peak, pstep = [], [], []
    for i, clip in enumerate((None, s.clip)):
        if ctx.stopped:
            break
        cfg = TrainConfig(corpus=s.corpus, cell=s.cell, hidden=s.hidden, embed=s.embed, optimizer=s.optimizer,
                          lr=s.lr, clip=clip, steps=s.steps, seq_len=s.seq_len, batch=s.batch,
                          eval_every=0, eval_batches=4, seed=s.seed, device=s.device)
        tr = ctx.part(i, 2).train(cfg, corpus, runs[i])
        loss, g = per_step(tr), per_step(tr, "grad_norm")
        L.append(loss)
        G.append(g)
        cf.append(float((g > s.clip).mean()) if len(g) else float("nan"))
        mx.append(float(np.nanmax(g)) if len(g) else float("nan"))
        at = int(np.nanargmax(g)) if len(g) else 0
        mstep.append(at + 1)
        peak.append(float(np.nanmax(loss)) if np.isfinite(loss).any() else float("nan"))
        pstep.append(int(np.nanargmax(loss)) + 1 if np.isfinite(loss).any() else 0)
        sp.append(count_spikes(g, s.spike_factor))
        fin.append(float(np.mean(loss[-20:])) if len(loss) else float("nan"))
        val.append(final_loss(tr))
        d = tr.result.diverged
        div.append(d)
        blew.append(bool(d or not (fin[-1] < uniform)))
        why.append(tr.result.stopped_reason or "" if d else "")
    n = len(L)
    pad = lambda xs, fill=np.nan: np.asarray(xs + [fill] * (2 - n))  # noqa: E731
    return dict(runs=runs, steps=np.arange(1, s.steps + 1), loss=stack_padded(L + [np.zeros(0)] * (2 - n), s.steps),
                grad_norm=stack_padded(G + [np.zeros(0)] * (2 - n), s.steps), clipped_fraction=pad(cf),
                max_grad_norm=pad(mx), max_grad_step=np.asarray(mstep + [0] * (2 - n), dtype=np.int64),
                peak_loss=pad(peak), peak_loss_step=np.asarray(pstep + [0] * (2 - n), dtype=np.int64), spikes=np.asarray(sp + [0] * (2 - n), dtype=np.int64),
                final_loss=pad(fin), val_loss=pad(val), diverged=np.asarray(div + [False] * (2 - n)),
                blew_up=np.asarray(blew + [False] * (2 - n)), uniform_loss=uniform,
                stop_reason=tuple(why + [""] * (2 - n)))
