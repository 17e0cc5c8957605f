"""Truncated BPTT: one LSTM trained with windows of 8, 32 and 128 tokens on the same data, and
the longest subject-verb dependency each window lets it learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..train import TrainConfig
from .agreement_tools import DEFAULT_DISTRACTORS, agreement_corpus, agreement_curve, longest_solved
from .base import ExperimentResult, RunContext, choose, experiment, final_loss, fmt, per_step, stack_padded


@dataclass(frozen=True)
class TbpttSettings:
    cell: str = "lstm"
    hidden: int = 64
    embed: int = 32
    seq_lens: tuple = (8, 32, 128)
    tokens_per_step: int = 1024  # batch = tokens_per_step / seq_len: every run sees the same data
    steps: int = 600
    lr: float = 3e-3
    level: str = "word"
    corpus: str = "balanced"  # or "bundled" (see balanced_agreement_corpus for the difference)
    distractors: tuple = DEFAULT_DISTRACTORS
    pairs: int = 20
    solved_at: float = 0.9
    seed: int = 0
    device: str = "cpu"


class TbpttResult(ExperimentResult):
    seq_lens: np.ndarray  # [R]
    distractors: np.ndarray  # [D]
    accuracy: np.ndarray  # [R, D]
    p_correct: np.ndarray  # [R, D]
    longest_solved: np.ndarray  # int [R]: longest distractor solved at every length up to it
    val_loss: np.ndarray  # [R]
    loss: np.ndarray  # [R, S]
    level: str

    def table(self) -> list[str]:
        rows = ["seq_len  longest solved  val loss  accuracy by distractor " + " ".join(f"{d:>4}" for d in self.distractors)]
        for i, L in enumerate(self.seq_lens):
            rows.append(f"{int(L):>7}  {int(self.longest_solved[i]):>14}  {fmt(self.val_loss[i]):>8}  "
                        f"{'':>22} " + " ".join(f"{fmt(a, 2):>4}" for a in self.accuracy[i]))
        return rows

    def findings(self) -> list[str]:
        unit = "words" if self.level == "word" else "characters"
        out = []
        for L, n in zip(self.seq_lens, self.longest_solved):
            L, n = int(L), int(n)
            if n < 0:
                out.append(f"seq_len {L}: not measured (the run was stopped first)")
                continue
            line = (f"seq_len {L} (gradients flow back at most {L} {unit}): accuracy >= "
                    f"{self.settings.get('solved_at', 0.9):g} up to {n} distractor words")
            if self.level == "word" and n + 2 > L:  # subject, clause, verb: more than one window
                line += (f"; beyond its window because the hidden state is carried from window to window "
                         f"(only the gradient is cut at {L}): keeping the subject's number, learned on "
                         f"short clauses, holds over longer ones")
            out.append(line)
        return out


@experiment("tbptt", TbpttSettings, TbpttResult,
            explanation=("One LSTM trained with truncated BPTT windows of 8, 32 and 128 tokens, same data.",
                         "Agreement accuracy by distractor length: the longest dependency each window lets it learn."),
            quick=dict(steps=150, distractors=(0, 4, 8, 12), pairs=8, seq_lens=(8, 32)))
def run_tbptt(s: TbpttSettings, ctx: RunContext) -> dict:
    choose("level", s.level, ("char", "word"))
    choose("agreement corpus", s.corpus, ("balanced", "bundled"))
    corpus = agreement_corpus(s.corpus, s.level, s.seed)
    R, D = len(s.seq_lens), len(s.distractors)
    acc, pc = np.full((R, D), np.nan), np.full((R, D), np.nan)
    longest, vals, losses = np.full(R, -1, dtype=np.int64), np.full(R, np.nan), []
    for i, L in enumerate(s.seq_lens):
        if ctx.stopped:
            break
        if not isinstance(L, int) or L < 1:
            raise ConfigError(f"seq_lens must be positive whole numbers, got {L!r}")
        cfg = TrainConfig(corpus="agreement", level=s.level, cell=s.cell, hidden=s.hidden, embed=s.embed,
                          seq_len=L, batch=max(1, s.tokens_per_step // L), steps=s.steps, lr=s.lr,
                          eval_every=0, eval_batches=2, seed=s.seed, device=s.device)
        part = ctx.part(i, R)
        tr = part.span(0, 0.9).train(cfg, corpus, f"seq_len {L}")
        losses.append(per_step(tr))
        vals[i] = final_loss(tr)
        part.report(0.9, f"seq_len {L}: measuring agreement")
        curve = agreement_curve(tr.snapshot(), s.distractors, s.pairs, seed=1000 + s.seed, stop=ctx.stop)
        acc[i], pc[i] = curve.accuracy, curve.p_correct
        longest[i] = longest_solved(curve.distractors, curve.accuracy, s.solved_at)
    while len(losses) < R:
        losses.append(np.zeros(0))
    return dict(seq_lens=np.asarray(s.seq_lens, dtype=np.int64), distractors=np.asarray(s.distractors),
                accuracy=acc, p_correct=pc, longest_solved=longest, val_loss=vals,
                loss=stack_padded(losses, s.steps), level=s.level)
