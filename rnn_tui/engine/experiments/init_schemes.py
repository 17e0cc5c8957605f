"""Init schemes: default, orthogonal, Xavier, identity (IRNN) and echo-state recurrent matrices
trained on the same task: loss curves, the spectral radius while training, and how far back
the gradient reaches before and after.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import dynamics
from ..corpus import load_corpus
from ..model import LoadedModel, build_model
from ..probes import gradient_profile
from ..train import TrainConfig
from .base import (PROBE_TEXT, ExperimentResult, RunContext, choose, experiment, final_loss, fmt, pad_1d, pad_rows,
                   per_step, stack_padded)


@dataclass(frozen=True)
class InitSettings:
    schemes: tuple = ("default", "orthogonal", "xavier", "identity", "echo")
    cell: str = "rnn"
    hidden: int = 64
    embed: int = 32
    steps: int = 300
    seq_len: int = 64
    batch: int = 32
    lr: float = 3e-3
    clip: float = 1.0
    corpus: str = "grammar"
    radius_every: int = 25
    probe_text: str = PROBE_TEXT
    seed: int = 0
    device: str = "cpu"


class InitResult(ExperimentResult):
    schemes: tuple[str, ...]
    steps: np.ndarray  # [S]
    loss: np.ndarray  # [R, S] training loss per step (NaN after a divergence)
    val_loss: np.ndarray  # [R]
    diverged: np.ndarray  # bool [R]
    tokens: tuple[str, ...]  # the probe text's tokens
    grad_init: np.ndarray  # [R, T]: ||dL/dh_t|| before training (loss at the last token)
    grad_final: np.ndarray  # [R, T]: the same after training
    ratio_init: np.ndarray  # [R]: first/last position of grad_init
    ratio_final: np.ndarray  # [R]
    radius_steps: np.ndarray  # [P]
    radius: np.ndarray  # [R, P]: spectral radius of the main recurrent block while training

    def table(self) -> list[str]:
        rows = [f"{'scheme':<11} {'val loss':>8} {'|g1|/|gT| init':>15} {'after':>10} {'radius 0->end':>15}"]
        for i, name in enumerate(self.schemes):
            r = self.radius[i][np.isfinite(self.radius[i])]
            rad = f"{r[0]:.2f}->{r[-1]:.2f}" if len(r) else "-"
            div = " (diverged)" if self.diverged[i] else ""
            rows.append(f"{name:<11} {fmt(self.val_loss[i]):>8} {self.ratio_init[i]:>15.2e} "
                        f"{self.ratio_final[i]:>10.2e} {rad:>15}{div}")
        return rows

    def findings(self) -> list[str]:
        ok = np.isfinite(self.val_loss)
        out = []
        if ok.any():
            best = int(np.nanargmin(self.val_loss))
            out.append(f"lowest validation loss: {self.schemes[best]} ({self.val_loss[best]:.3f} nats)")
        if np.isfinite(self.ratio_init).any():
            keep = int(np.nanargmax(self.ratio_init))
            out.append(f"at initialisation the gradient reaching the first token is largest for "
                       f"{self.schemes[keep]} ({self.ratio_init[keep]:.2g} of the last token's)")
        for name, loss, diverged in zip(self.schemes, self.loss, self.diverged):
            ok = np.isfinite(loss)
            if diverged:
                out.append(f"{name}: the loss diverged (training stopped on a non-finite loss)")
            elif ok.sum() > 1 and np.nanmax(loss) > 1.5 * loss[ok][0]:  # worse than where it started
                at = int(np.nanargmax(loss))
                out.append(f"{name} blew up: its loss peaked at {loss[at]:.3g} (step {at + 1}, from "
                           f"{loss[ok][0]:.2f} at the start) and ended at {loss[ok][-1]:.2f}")
        moved = [(n, r[np.isfinite(r)]) for n, r in zip(self.schemes, self.radius)]
        moved = [f"{n} {r[0]:.2f}->{r[-1]:.2f}" for n, r in moved if len(r) > 1]
        if moved:
            out.append("spectral radius of W_hh while training: " + ", ".join(moved))
        return out


@experiment("init-schemes", InitSettings, InitResult,
            explanation=("Default, orthogonal, Xavier, identity+ReLU (IRNN) and frozen echo-state "
                         "recurrent matrices on the same task.",
                         "Loss curves, spectral radius while training and gradient by timestep, together."),
            quick=dict(steps=60, hidden=32, radius_every=20))
def run_init_schemes(s: InitSettings, ctx: RunContext) -> dict:
    for name in s.schemes:
        choose("init scheme", name, ("default", "orthogonal", "xavier", "identity", "spectral", "echo"))
    corpus = load_corpus(s.corpus, "char", seed=s.seed)
    R = len(s.schemes)
    losses, vals, div, g0, g1, radii = [], np.full(R, np.nan), np.zeros(R, bool), [], [], []
    n_rad = s.steps // s.radius_every + 1
    radius_steps = np.arange(n_rad) * s.radius_every
    tokens: tuple[str, ...] = ()
    for i, scheme in enumerate(s.schemes):
        if ctx.stopped:
            break
        cfg = TrainConfig(corpus=s.corpus, cell=s.cell, hidden=s.hidden, embed=s.embed, init=scheme,
                          steps=s.steps, seq_len=s.seq_len, batch=s.batch, lr=s.lr, clip=s.clip,
                          eval_every=0, eval_batches=4, seed=s.seed, device=s.device)
        model = build_model(cfg.model_config(len(corpus.vocab)), seed=s.seed)
        lm0 = LoadedModel(model=model, vocab=corpus.vocab)
        gp0 = gradient_profile(lm0, s.probe_text)
        tokens = gp0.tokens
        rec = dynamics.RadiusRecorder(model, every=s.radius_every)
        tr = ctx.part(i, R).train(cfg, corpus, f"init {scheme}", model=model, on_metrics=rec)
        gp1 = gradient_profile(tr.snapshot(), s.probe_text)
        hist = rec.history()
        losses.append(per_step(tr))
        vals[i] = final_loss(tr)
        div[i] = tr.result.diverged
        g0.append(gp0.dh[-1])
        g1.append(gp1.dh[-1])
        r = np.full(n_rad, np.nan)
        idx = hist.steps // s.radius_every
        keep = idx < n_rad
        r[idx[keep]] = hist.radius[hist.main][keep]
        radii.append(r)
    T = len(tokens)
    grad_init, grad_final = stack_padded(g0, T), stack_padded(g1, T)
    while len(losses) < R:
        losses.append(np.zeros(0))
        radii.append(np.full(n_rad, np.nan))

    def ratio(g):
        with np.errstate(divide="ignore", invalid="ignore"):
            return g[:, 0] / g[:, T - 2] if T >= 2 else np.full(len(g), np.nan)

    return dict(schemes=tuple(s.schemes), steps=np.arange(1, s.steps + 1), loss=stack_padded(losses, s.steps),
                val_loss=vals, diverged=div, tokens=tokens,
                grad_init=pad_rows(grad_init, R), grad_final=pad_rows(grad_final, R),
                ratio_init=pad_1d(ratio(grad_init), R), ratio_final=pad_1d(ratio(grad_final), R),
                radius_steps=radius_steps, radius=np.stack(radii))
