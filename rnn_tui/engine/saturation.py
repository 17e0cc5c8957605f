"""Gate saturation (Karpathy, Johnson & Fei-Fei 2015, "Visualizing and understanding recurrent
networks"): for every gate unit, the fraction of steps it spends below 0.1 (left-saturated:
shut) and above 0.9 (right-saturated: open), over a text. Forget gates that sit right-saturated
are the LSTM's long memory: a unit that keeps f near 1 carries its cell across many steps.

`gate_saturation(lm, text)` measures a trained model; `SaturationRecorder` is a Trainer callback
(like `dynamics.RadiusRecorder`) that records the fraction of right-saturated forget gates (GRU:
update gates, whose "open" keeps the old state) every `every` steps, in the training thread,
for a live chart on the training screen or in the `saturation` experiment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .errors import ConfigError
from .probes.base import ProbeResult, zero_state

LOW, HIGH = 0.1, 0.9
GATES = {"lstm": ("i", "f", "o"), "gru": ("r", "z")}
KEEP_GATE = {"lstm": "f", "gru": "z"}  # the gate whose open (right-saturated) state keeps memory


@dataclass(frozen=True, eq=False)
class GateSaturation(ProbeResult):
    cell: str
    gates: tuple[str, ...]
    left: dict  # gate -> float64 [L, H]: fraction of steps < LOW
    right: dict  # gate -> float64 [L, H]: fraction of steps > HIGH
    mean: dict  # gate -> float64 [L, H]: mean value
    steps: int  # tokens read

    def right_saturated(self, gate: str, share: float = 0.5) -> float:
        """The fraction of the gate's units (all layers) that are > HIGH more than `share` of the time."""
        return float((np.asarray(self.right[gate]) > share).mean())


def _gate_values(model, ids: np.ndarray) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        x = torch.as_tensor(ids, device=model.device)[None]
        out = model.stepwise(x, zero_state(model))
    return {n: v[:, 0].double() for n, v in out.internals.items()}  # [L, T, H]


def saturation_of_ids(model, ids: np.ndarray) -> GateSaturation:
    cell = model.config.cell
    if cell not in GATES:
        raise ConfigError("gate saturation needs a gated cell (lstm or gru): a vanilla RNN has no gates")
    values = _gate_values(model, np.asarray(ids, dtype=np.int64))
    names = GATES[cell]
    return GateSaturation(
        cell=cell, gates=names,
        left={g: (values[g] < LOW).double().mean(1).cpu().numpy() for g in names},
        right={g: (values[g] > HIGH).double().mean(1).cpu().numpy() for g in names},
        mean={g: values[g].mean(1).cpu().numpy() for g in names},
        steps=int(len(ids)),
    )


def gate_saturation(lm, text: str) -> GateSaturation:
    """Per gate unit of every layer: how often it is shut (< 0.1) and open (> 0.9) over `text`."""
    ids = np.asarray(lm.vocab.encode(text, on_unknown="skip").ids, dtype=np.int64)
    if ids.size == 0:
        raise ConfigError("gate saturation: nothing left of the text after encoding")
    return saturation_of_ids(lm.model, ids)


def open_keep_fraction(model, ids: np.ndarray, share: float = 0.5) -> float:
    """The fraction of keep-gate units (LSTM forget, GRU update) right-saturated more than
    `share` of the time over `ids`: one number a live chart can plot per step."""
    return saturation_of_ids(model, ids).right_saturated(KEEP_GATE[model.config.cell], share)


class SaturationRecorder:
    """A Trainer callback: every `every` steps, the fraction of right-saturated keep gates over
    a fixed probe text (read in the training thread, between two steps, from the live weights).

        rec = SaturationRecorder(trainer.model, probe_ids, every=50)
        trainer.on_metrics = rec      # or call rec(metrics) from your own callback
        trainer.run(); rec.steps, rec.fraction, rec.time_open
    """

    def __init__(self, model, ids: np.ndarray, every: int = 50, share: float = 0.5):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ConfigError(f"every must be a positive whole number, got {every!r}")
        if model.config.cell not in GATES:
            raise ConfigError("gate saturation needs a gated cell (lstm or gru)")
        self.model, self.ids, self.every, self.share = model, np.asarray(ids, dtype=np.int64), every, share
        self.steps: list[int] = []
        self.fraction: list[float] = []  # units right-saturated more than `share` of the time
        self.time_open: list[float] = []  # the share of (unit, step) pairs above HIGH
        self.record(0)

    def record(self, step: int) -> None:
        sat = saturation_of_ids(self.model, self.ids)
        gate = KEEP_GATE[self.model.config.cell]
        self.fraction.append(sat.right_saturated(gate, self.share))
        self.time_open.append(float(np.mean(sat.right[gate])))
        self.steps.append(int(step))

    def __call__(self, metrics) -> None:
        step = int(metrics.step)
        if step % self.every == 0 and (not self.steps or self.steps[-1] != step):
            self.record(step)
