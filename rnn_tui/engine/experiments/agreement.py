"""Agreement: vanilla RNN, LSTM and GRU trained on subject-verb agreement with the same budget,
and how often each picks the right verb form as the distractor clause grows.

`train_agreement_models` keeps the trained models too: the Compare screen's entry point.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ..model import CELLS
from ..train import TrainConfig
from .agreement_tools import DEFAULT_DISTRACTORS, agreement_corpus, agreement_curve, recurrent_parameters
from .base import (ExperimentResult, Progress, RunContext, choose, experiment, final_loss, fmt, nanmean, per_step,
                   stack_padded)


@dataclass(frozen=True)
class AgreementSettings:
    cells: tuple = ("rnn", "lstm", "gru")
    hidden: int = 64
    embed: int = 32
    steps: int = 600  # the same budget for every cell
    seq_len: int = 32
    batch: int = 32
    lr: float = 3e-3
    level: str = "word"
    corpus: str = "balanced"  # or "bundled"
    distractors: tuple = DEFAULT_DISTRACTORS
    pairs: int = 20
    param_sizes: tuple = (32, 64, 128, 256)
    seed: int = 0
    device: str = "cpu"


class AgreementResult(ExperimentResult):
    cells: tuple[str, ...]
    distractors: np.ndarray  # [D]
    p_correct: np.ndarray  # [C, D]
    accuracy: np.ndarray  # [C, D]
    accuracy_incongruent: np.ndarray  # [C, D]
    accuracy_congruent: np.ndarray  # [C, D]
    val_loss: np.ndarray  # [C]
    loss: np.ndarray  # [C, S]
    parameters: np.ndarray  # int [C]: whole model at the chosen size
    param_sizes: np.ndarray  # [P]
    recurrent_parameters: np.ndarray  # int [C, P]: one recurrent layer with input = hidden
    level: str
    corpus: str

    def table(self) -> list[str]:
        rows = [f"{'cell':<5} {'params':>7} {'val':>6}  accuracy by distractor "
                + " ".join(f"{d:>4}" for d in self.distractors)]
        for i, c in enumerate(self.cells):
            rows.append(f"{c:<5} {int(self.parameters[i]):>7} {fmt(self.val_loss[i]):>6}  {'':>22} "
                        + " ".join(f"{fmt(a, 2):>4}" for a in self.accuracy[i]))
        rows.append("recurrent parameters, one layer (input = hidden): "
                    + "; ".join(f"H={int(h)}: " + ", ".join(f"{c} {int(self.recurrent_parameters[i, j])}"
                                                           for i, c in enumerate(self.cells))
                                for j, h in enumerate(self.param_sizes)))
        return rows

    def findings(self) -> list[str]:
        far = self.distractors >= 15
        out = []
        if far.any():
            for i, c in enumerate(self.cells):
                if np.isfinite(self.accuracy[i, far]).any():
                    out.append(f"{c}: mean accuracy {nanmean(self.accuracy[i, far]):.2f} at distractor length "
                               f">= 15 (p(right verb) {nanmean(self.p_correct[i, far]):.2f})")
        return out


@dataclass(frozen=True, eq=False)
class AgreementModels:
    """The cells trained on one agreement corpus with one budget, and what each learned.

    Cells the stop flag cut off before their first step are absent from every dict but
    `parameters`; `steps` says how far each of the others got.
    """

    models: dict  # cell -> LoadedModel (a CPU snapshot)
    curves: dict  # cell -> AgreementCurve
    loss: dict  # cell -> float64 [steps done]: training loss per step
    val_loss: dict  # cell -> float (NaN when there was no validation)
    steps: dict  # cell -> int
    parameters: dict  # cell -> int: the whole model at the chosen size, for every cell


def train_agreement_models(s: AgreementSettings, stop: threading.Event | None = None,
                           progress: Progress | None = None) -> AgreementModels:
    """Train every cell of `s.cells` on the same agreement corpus and measure agreement.

    Shared by the `agreement` experiment and the Compare screen (which keeps the models)."""
    return _train_agreement(s, RunContext(stop, progress))


def _train_agreement(s: AgreementSettings, ctx: RunContext) -> AgreementModels:
    choose("level", s.level, ("char", "word"))
    choose("agreement corpus", s.corpus, ("balanced", "bundled"))
    for c in s.cells:
        choose("cell", c, CELLS)
    corpus = agreement_corpus(s.corpus, s.level, s.seed)
    out = AgreementModels({}, {}, {}, {}, {}, {})
    for i, cell in enumerate(s.cells):
        cfg = TrainConfig(corpus="agreement", level=s.level, cell=cell, hidden=s.hidden, embed=s.embed,
                          seq_len=s.seq_len, batch=s.batch, steps=s.steps, lr=s.lr, eval_every=0,
                          eval_batches=2, seed=s.seed, device=s.device)
        out.parameters[cell] = cfg.model_config(len(corpus.vocab)).parameter_count()
        if ctx.stopped:
            continue
        part = ctx.part(i, len(s.cells))
        tr = part.span(0, 0.9).train(cfg, corpus, cell)
        if tr.step == 0:  # stopped before its first step: nothing to measure
            continue
        out.loss[cell], out.val_loss[cell], out.steps[cell] = per_step(tr), final_loss(tr), tr.step
        out.models[cell] = lm = tr.snapshot()
        part.report(0.9, f"{cell}: measuring agreement")
        out.curves[cell] = agreement_curve(lm, s.distractors, s.pairs, seed=1000 + s.seed, stop=ctx.stop)
    return out


@experiment("agreement", AgreementSettings, AgreementResult,
            explanation=("Vanilla RNN, LSTM and GRU trained on subject-verb agreement with the same budget.",
                         "P(right verb: was/were) and accuracy against distractor length 0..30; parameters per cell."),
            quick=dict(steps=150, distractors=(0, 4, 8, 15), pairs=8, cells=("rnn", "lstm")))
def run_agreement(s: AgreementSettings, ctx: RunContext) -> dict:
    trained = _train_agreement(s, ctx)
    C, D = len(s.cells), len(s.distractors)
    res = {k: np.full((C, D), np.nan) for k in ("p_correct", "accuracy", "accuracy_incongruent", "accuracy_congruent")}
    for i, cell in enumerate(s.cells):
        curve = trained.curves.get(cell)
        if curve is not None:  # None: stopped before this cell trained (its row stays NaN)
            for k in res:
                res[k][i] = getattr(curve, k)
    vals = np.array([trained.val_loss.get(c, np.nan) for c in s.cells], dtype=np.float64)
    losses = [trained.loss.get(c, np.zeros(0)) for c in s.cells]
    params = np.array([trained.parameters[c] for c in s.cells], dtype=np.int64)
    sizes = np.asarray(s.param_sizes, dtype=np.int64)
    rec = np.array([[recurrent_parameters(c, int(h), int(h)) for h in sizes] for c in s.cells], dtype=np.int64)
    return dict(cells=tuple(s.cells), distractors=np.asarray(s.distractors), val_loss=vals,
                loss=stack_padded(losses, s.steps), parameters=params, param_sizes=sizes, recurrent_parameters=rec,
                level=s.level, corpus=s.corpus, **res)
