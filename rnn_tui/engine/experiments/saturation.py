"""Saturation: Karpathy, Johnson & Fei-Fei (2015)'s view of the gates. Two-layer LSTM and GRU
language models train on the grammar; for every gate unit, the fraction of steps it is shut
(< 0.1) against the fraction it is open (> 0.9), per gate type and layer, and how the share of
right-saturated forget gates (GRU: update gates) grows while they train.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..corpus import load_corpus
from ..errors import ConfigError
from ..saturation import GATES, HIGH, KEEP_GATE, LOW, SaturationRecorder, saturation_of_ids
from ..train import TrainConfig, Trainer
from .base import ExperimentResult, RunContext, experiment, final_loss, fmt


@dataclass(frozen=True)
class SaturationSettings:
    cells: tuple = ("lstm", "gru")
    hidden: int = 64
    layers: int = 2
    embed: int = 32
    steps: int = 600
    seq_len: int = 64
    batch: int = 32
    lr: float = 3e-3
    record_every: int = 50
    probe_tokens: int = 2000  # validation characters the gates are read over
    seed: int = 0
    device: str = "cpu"


class SaturationResult(ExperimentResult):
    cells: tuple[str, ...]
    layers: int
    gates: tuple  # per cell, its gate names
    left: dict  # "lstm.f.1" -> float64 [H]: fraction of steps < 0.1, per unit of layer 1
    right: dict  # the same, > 0.9
    steps: np.ndarray  # [S]: the training steps the keep gates were read at
    open_units: np.ndarray  # [C, S]: keep-gate units open (> 0.9) more than half the time
    time_open: np.ndarray  # [C, S]: share of (unit, step) pairs with the keep gate open
    val_loss: np.ndarray  # [C]
    measured: np.ndarray  # bool [C]

    def table(self) -> list[str]:
        rows = [f"{'gate':<10} {'open > 0.9':>10} {'shut < 0.1':>10} {'units open > half':>17}"]
        for key in self.left:
            left, right = np.asarray(self.left[key]), np.asarray(self.right[key])
            rows.append(f"{key:<10} {fmt(right.mean(), 2):>10} {fmt(left.mean(), 2):>10} "
                        f"{fmt((right > 0.5).mean(), 2):>17}")
        return rows

    def findings(self) -> list[str]:
        out = [f"each point of the scatter is one gate unit: how often it is shut (< {LOW}) against open "
               f"(> {HIGH}) over the validation text"]
        for i, cell in enumerate(self.cells):
            if not self.measured[i]:
                out.append(f"{cell}: not measured (stopped first)")
                continue
            keep = KEEP_GATE[cell]
            name = "forget" if keep == "f" else "update"
            series = self.open_units[i]
            ok = np.isfinite(series)
            if ok.any():
                out.append(f"{cell}: {name} gates open more than half the time: {series[ok][0]:.0%} of units at "
                           f"step {int(self.steps[ok][0])}, {series[ok][-1]:.0%} at step {int(self.steps[ok][-1])}")
            for layer in range(1, self.layers + 1):
                key = f"{cell}.{keep}.{layer}"
                if key in self.right:
                    right, left = np.asarray(self.right[key]), np.asarray(self.left[key])
                    out.append(f"{cell} layer {layer}: {name} gates open {right.mean():.0%} and shut "
                               f"{left.mean():.0%} of the time")
        return out


@experiment("saturation", SaturationSettings, SaturationResult,
            explanation=("Karpathy, Johnson & Fei-Fei 2015: per gate unit, how often it is shut (< 0.1) "
                         "and open (> 0.9).",
                         "Two-layer LSTM and GRU on the grammar; open forget gates grow while they train."),
            quick=dict(cells=("lstm",), layers=1, hidden=32, steps=150, record_every=25, probe_tokens=600))
def run_saturation(s: SaturationSettings, ctx: RunContext) -> dict:
    for cell in s.cells:
        if cell not in GATES:
            raise ConfigError(f"saturation needs gated cells (lstm, gru), got {cell!r}")
    corpus = load_corpus("grammar", "char", seed=s.seed)
    probe = np.asarray(corpus.val[:s.probe_tokens], dtype=np.int64)
    C = len(s.cells)
    n_rec = s.steps // s.record_every + 1
    steps = np.arange(n_rec) * s.record_every
    open_units, time_open = np.full((C, n_rec), np.nan), np.full((C, n_rec), np.nan)
    vals, measured = np.full(C, np.nan), np.zeros(C, dtype=bool)
    left: dict = {}
    right: dict = {}
    for i, cell in enumerate(s.cells):
        if ctx.stopped:
            break
        cfg = TrainConfig(corpus="grammar", cell=cell, hidden=s.hidden, layers=s.layers, embed=s.embed,
                          steps=s.steps, seq_len=s.seq_len, batch=s.batch, lr=s.lr, eval_every=0, eval_batches=4,
                          seed=s.seed, device=s.device)
        part = ctx.part(i, C)
        trainer = Trainer(cfg, corpus=corpus)  # the model exists once the trainer does: step 0 is read on it
        rec = SaturationRecorder(trainer.model, probe, every=s.record_every)
        every = max(1, s.steps // 20)

        def progress(m, rec=rec, part=part, cell=cell, every=every):
            rec(m)
            if m.step % every == 0:
                part.report(m.step / s.steps, f"{cell}: step {m.step}/{s.steps} loss {m.loss:.3f}")

        part.report(0.0, f"{cell}: training")
        trainer.on_metrics = progress
        trainer.run(stop=ctx.stop)
        for k, step in enumerate(rec.steps):
            j = step // s.record_every
            if j < n_rec:
                open_units[i, j], time_open[i, j] = rec.fraction[k], rec.time_open[k]
        vals[i] = final_loss(trainer)
        sat = saturation_of_ids(trainer.model, probe)
        for gate in sat.gates:
            for layer in range(s.layers):
                left[f"{cell}.{gate}.{layer + 1}"] = np.asarray(sat.left[gate][layer])
                right[f"{cell}.{gate}.{layer + 1}"] = np.asarray(sat.right[gate][layer])
        measured[i] = not ctx.stopped
    return dict(cells=tuple(s.cells), layers=int(s.layers), gates=tuple(GATES[c] for c in s.cells), left=left,
                right=right, steps=steps, open_units=open_units, time_open=time_open, val_loss=vals,
                measured=measured)
