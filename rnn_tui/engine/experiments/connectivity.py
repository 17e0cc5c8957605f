"""Connectivity (Distill, "Memorization in RNNs", 2019): for one output position, the norm of
d output / d x_k over every earlier input k, for the bundled RNN, LSTM and GRU side by side,
and the whole map over every output position. The default output is the verb's decision on the
default sentence (the letter after the "w" of "was"), so the row says how much of the subject,
23 steps back, that prediction still sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..corpus import DEFAULT_SENTENCE
from ..errors import ConfigError
from ..probes import connectivity, token_slot
from .base import ExperimentResult, RunContext, experiment, fmt


@dataclass(frozen=True)
class ConnectivitySettings:
    models: tuple = ("rnn", "lstm", "gru")  # bundled models or run directories
    text: str = DEFAULT_SENTENCE
    output: str = "verb"  # the output position: "verb" (its decision; the last prediction without one), "last", or a number
    floor: float = 0.01  # an input "still seen" when its connectivity is >= this share of the output's own input's
    seed: int = 0  # unused (nothing is random); kept for the common settings checks


class ConnectivityResult(ExperimentResult):
    models: tuple[str, ...]
    cells: tuple[str, ...]
    tokens: tuple[str, ...]
    position: int
    subject: int  # the position just after the subject noun, -1 without one
    norms: np.ndarray  # [M, T, T]: ||d logits_t / d x_k||_F
    row: np.ndarray  # [M, position + 1]: output `position`'s connectivity relative to its own input
    reach: np.ndarray  # int [M]: tokens back still seen at >= floor
    at_subject: np.ndarray  # [M]: the row at the subject (NaN without one)
    floor: float

    def table(self) -> list[str]:
        rows = [f"{'model':<8} {'reach':>6} {'at subject':>11}  relative connectivity k tokens back: "
                + " ".join(f"{k:>6}" for k in (1, 5, 10, 20))]
        for i, name in enumerate(self.models):
            r = self.row[i]
            back = [r[len(r) - 1 - k] if k < len(r) else np.nan for k in (1, 5, 10, 20)]
            rows.append(f"{name:<8} {int(self.reach[i]):>6} {fmt(self.at_subject[i], 4):>11}  {'':>37}"
                        + " ".join(f"{fmt(b, 4):>6}" for b in back))
        return rows

    def findings(self) -> list[str]:
        tok = self.tokens[self.position] if 0 <= self.position < len(self.tokens) else "?"
        out = [f"output at position {self.position} (after {tok!r}): ||d logits / d x_k|| relative to its own "
               f"input; 'reach' = tokens back still >= {self.floor:g} of it"]
        for i, name in enumerate(self.models):
            line = f"{name}: sees {int(self.reach[i])} tokens back"
            if self.subject >= 0:
                line += f"; the subject, {self.position - self.subject} back, at {self.at_subject[i]:.2g}"
            out.append(line)
        return out


@experiment("connectivity", ConnectivitySettings, ConnectivityResult,
            explanation=("Distill's connectivity: how much one output depends on every earlier input, "
                         "||d output_t / d x_k||.",
                         "The bundled RNN, LSTM and GRU side by side, at the verb of the default sentence."),
            quick=dict(models=("rnn", "lstm")))
def run_connectivity(s: ConnectivitySettings, ctx: RunContext) -> dict:
    from ..checkpoint import load_model

    if not s.text.strip():
        raise ConfigError("connectivity needs a text")
    maps, cells, tokens = [], [], None
    for i, name in enumerate(s.models):
        if ctx.stopped:
            break
        ctx.report(i / len(s.models), f"connectivity: {name}")
        lm = load_model(name, device="cpu")
        c = connectivity(lm, s.text)
        if tokens is not None and c.tokens != tokens:
            raise ConfigError(f"{name} reads the text as other tokens than {s.models[0]}: compare models "
                              "with the same vocabulary")
        tokens = c.tokens
        maps.append(c)
        cells.append(lm.config.cell)
    if tokens is None:
        raise ConfigError("connectivity: no model was read (stopped before the first)")
    T = len(tokens)
    slot = token_slot(tokens, "char" if all(len(t) == 1 for t in tokens) else "word")
    if s.output in ("verb", "last"):
        verb = slot is not None and slot.has_target and s.output == "verb"
        position = slot.decision if verb else T - 2
    else:
        try:
            position = int(s.output)
        except ValueError:
            raise ConfigError(f"output must be 'verb', 'last' or a position number, got {s.output!r}") from None
    if not 0 <= position < T:
        raise ConfigError(f"the output position must be between 0 and {T - 1} for this text, got {position}")
    subject = slot.subject if slot is not None and slot.subject <= position else -1
    rows = np.stack([m.row(position) for m in maps])
    return dict(models=tuple(s.models[:len(maps)]), cells=tuple(cells), tokens=tokens, position=int(position),
                subject=int(subject), norms=np.stack([m.norms for m in maps]), row=rows,
                reach=np.asarray([m.reach(position, s.floor) for m in maps], dtype=np.int64),
                at_subject=rows[:, subject] if subject >= 0 else np.full(len(maps), np.nan), floor=float(s.floor))
