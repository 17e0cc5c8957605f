"""Memory horizon: replace the token k steps back and measure how much the next-token
distribution moves, per cell and hidden size; how many tokens back still count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import dynamics
from ..corpus import load_corpus
from ..errors import ConfigError
from ..model import CELLS
from ..train import TrainConfig
from .base import ExperimentResult, RunContext, choose, experiment, final_loss, fmt


@dataclass(frozen=True)
class MemorySettings:
    models: tuple = (("rnn", 32), ("rnn", 64), ("rnn", 128), ("lstm", 64), ("gru", 64))
    embed: int = 32
    steps: int = 400  # the same budget for every model
    seq_len: int = 64
    batch: int = 32
    lr: float = 3e-3
    corpus: str = "grammar"
    max_lag: int = 40
    contexts: int = 128
    threshold: float = 0.02  # mean total variation that still counts as "changes the prediction"
    perturb: str = "random"
    seed: int = 0
    device: str = "cpu"


class MemoryResult(ExperimentResult):
    labels: tuple[str, ...]  # "rnn H=64", ...
    cells: tuple[str, ...]
    hidden: np.ndarray  # [M]
    lags: np.ndarray  # [K]
    tv: np.ndarray  # [M, K]: mean total variation between next-token distributions
    tv_sem: np.ndarray  # [M, K]
    kl: np.ndarray  # [M, K]
    horizon: np.ndarray  # int [M]: lags (tokens back) that still move the prediction by >= threshold
    threshold: float
    val_loss: np.ndarray  # [M]
    parameters: np.ndarray  # int [M]
    measured: np.ndarray  # bool [M]: False for the models a stopped run never reached

    def table(self) -> list[str]:
        shown = [k for k in (1, 2, 5, 10, 15, 20, 30, 40) if k <= len(self.lags)]
        rows = [f"{'model':<10} {'params':>7} {'val':>6} {'horizon':>7}  TV at lag " + " ".join(f"{k:>6}" for k in shown)]
        for i, lab in enumerate(self.labels):
            if not self.measured[i]:
                rows.append(f"{lab:<10} {int(self.parameters[i]):>7}  not measured (the run was stopped first)")
                continue
            rows.append(f"{lab:<10} {int(self.parameters[i]):>7} {fmt(self.val_loss[i]):>6} {int(self.horizon[i]):>7}  "
                        f"{'':>9} " + " ".join(f"{self.tv[i, k - 1]:>6.3f}" for k in shown))
        return rows

    def measured_models(self) -> list[tuple[str, int, int]]:
        """(cell, hidden, horizon) of every model this result measured."""
        return [(str(c), int(h), int(n)) for c, h, n, ok in zip(self.cells, self.hidden, self.horizon, self.measured)
                if ok]

    def findings(self) -> list[str]:
        out = [f"horizon = how many tokens back a replaced token still moves the next-token "
               f"distribution by total variation >= {self.threshold:g} (mean over contexts)"]
        done = self.measured_models()
        rnn = sorted((h, n) for c, h, n in done if c == "rnn")
        for (h1, n1), (h2, n2) in zip(rnn, rnn[1:]):
            out.append(f"vanilla RNN H={h1} -> H={h2}: horizon {n1} -> {n2} ({n2 - n1:+d} tokens)")
        base = dict(rnn)
        for c, h, n in done:
            if c != "rnn" and h in base:
                out.append(f"{c} H={h}: horizon {n} vs {base[h]} for the vanilla RNN of that size")
        missing = [lab for lab, ok in zip(self.labels, self.measured) if not ok]
        if missing:
            out.append(f"not measured (stopped first): {', '.join(missing)}")
        return out


@experiment("memory-horizon", MemorySettings, MemoryResult,
            explanation=("Replace the token k steps back and measure how much the next-token "
                         "distribution moves (total variation).",
                         "The memory horizon per cell and hidden size: doubling H buys the vanilla RNN little."),
            quick=dict(steps=100, models=(("rnn", 32), ("lstm", 32)), max_lag=20, contexts=32))
def run_memory(s: MemorySettings, ctx: RunContext) -> dict:
    choose("perturbation", s.perturb, dynamics.PERTURBATIONS)
    models = []
    for m in s.models:
        if not (isinstance(m, tuple) and len(m) == 2 and m[0] in CELLS and isinstance(m[1], int) and m[1] > 0):
            raise ConfigError(f"each model must be (cell, hidden) like ('rnn', 64), got {m!r}")
        models.append(m)
    corpus = load_corpus(s.corpus, "char", seed=s.seed)
    ctxs = dynamics.context_windows(corpus.val, s.contexts, s.max_lag + 1, seed=s.seed)
    pool = np.unique(corpus.train)  # replacements are tokens the model has seen in training
    M, K = len(models), s.max_lag
    tv, sem, kl = np.full((M, K), np.nan), np.full((M, K), np.nan), np.full((M, K), np.nan)
    hor, vals, params = np.zeros(M, dtype=np.int64), np.full(M, np.nan), np.zeros(M, dtype=np.int64)
    measured = np.zeros(M, dtype=bool)
    for i, (cell, hidden) in enumerate(models):
        cfg = TrainConfig(corpus=s.corpus, cell=cell, hidden=hidden, embed=s.embed, steps=s.steps,
                          seq_len=s.seq_len, batch=s.batch, lr=s.lr, eval_every=0, eval_batches=4,
                          seed=s.seed, device=s.device)
        params[i] = cfg.model_config(len(corpus.vocab)).parameter_count()
        if ctx.stopped:
            continue
        part = ctx.part(i, M)
        tr = part.span(0, 0.9).train(cfg, corpus, f"{cell} H={hidden}")
        vals[i] = final_loss(tr)
        part.report(0.9, f"{cell} H={hidden}: perturbing")
        lags = part.span(0.9, 1.0)
        curve = dynamics.memory_horizon(
            tr.snapshot(), ctxs, s.max_lag, s.threshold, s.perturb, tokens=pool, seed=s.seed, stop=ctx.stop,
            progress=lambda k, n, lags=lags, label=f"{cell} H={hidden}": lags.report(k / n, f"{label}: lag {k}/{n}"))
        tv[i], sem[i], kl[i], hor[i] = curve.tv, curve.tv_sem, curve.kl, curve.horizon
        measured[i] = not ctx.stopped  # a stop inside the perturbation loop leaves it part-done
    return dict(labels=tuple(f"{c} H={h}" for c, h in models), cells=tuple(c for c, _ in models),
                hidden=np.asarray([h for _, h in models]), lags=np.arange(1, K + 1), tv=tv, tv_sem=sem, kl=kl,
                horizon=hor, threshold=float(s.threshold), val_loss=vals, parameters=params, measured=measured)
