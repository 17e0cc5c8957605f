"""Capacity: the finite-capacity failure. A network reads N random symbols, waits a few blank
steps, then must recall all N in order. One model per hidden size H, trained on every N up to
`max_symbols`; recall is measured per N and set against N/H and against the bits the state
would need to hold (N log2 K).

A gated cell (LSTM by default) is used so that the gradient does reach back over the delay:
what runs out here is room in the state, not gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..model import CELLS, ModelConfig, build_model
from .base import ExperimentResult, RunContext, choose, experiment, fmt

IGNORE = -100


@dataclass(frozen=True)
class CapacitySettings:
    cell: str = "lstm"
    hidden_sizes: tuple = (4, 8, 16, 32)
    symbols: int = 8  # K: each symbol is log2 K bits
    max_symbols: int = 16  # N goes 1..this in training
    tested: tuple = (1, 2, 4, 6, 8, 12, 16)  # the N recall is measured at
    delay: int = 5  # blank steps between the last symbol and the recall cue
    steps: int = 1500
    batch: int = 64
    lr: float = 1e-2
    embed: int = 16
    test_items: int = 256
    seed: int = 0


def symbol_batch(rng: np.random.Generator, batch: int, n: int, k: int, delay: int):
    """(x, y) LongTensors [B, 2n + delay + 1]: n symbols, `delay` blanks, the cue, n blanks to
    recall in; y holds the symbols at the recall steps and IGNORE elsewhere."""
    blank, cue = k, k + 1
    syms = rng.integers(0, k, size=(batch, n))
    T = 2 * n + delay + 1
    x = np.full((batch, T), blank, dtype=np.int64)
    x[:, :n] = syms
    x[:, n + delay] = cue
    y = np.full((batch, T), IGNORE, dtype=np.int64)
    y[:, n + delay + 1:] = syms
    return torch.as_tensor(x), torch.as_tensor(y)


def bits_recalled(accuracy: float, n: int, k: int) -> float:
    """Information in n recalled symbols at a per-symbol accuracy, errors spread evenly over the
    other K-1 symbols: n (log2 K + a log2 a + (1 - a) log2((1 - a) / (K - 1))), at least 0."""
    a = min(max(float(accuracy), 1.0 / k), 1.0)
    info = math.log2(k) + (a * math.log2(a) if a > 0 else 0.0)
    if a < 1.0:
        info += (1 - a) * math.log2((1 - a) / (k - 1))
    return max(0.0, n * info)


class CapacityResult(ExperimentResult):
    cell: str
    hidden: np.ndarray  # [M]
    tested: np.ndarray  # [N]: symbols to recall
    accuracy: np.ndarray  # [M, N]: per-symbol recall accuracy (chance: 1/K)
    exact: np.ndarray  # [M, N]: whole sequences recalled without an error
    bits_needed: np.ndarray  # [N]: N log2 K
    bits: np.ndarray  # [M, N]: bits recalled (bits_recalled)
    capacity_bits: np.ndarray  # [M]: the most bits a model recalled at any N
    symbols: int
    chance: float

    def table(self) -> list[str]:
        rows = [f"{'H':>4}  recall at N = " + " ".join(f"{int(n):>5}" for n in self.tested) + "   max bits"]
        for i, h in enumerate(self.hidden):
            rows.append(f"{int(h):>4}  {'':>13}" + " ".join(f"{fmt(a, 2):>5}" for a in self.accuracy[i])
                        + f"   {fmt(self.capacity_bits[i], 1):>8}")
        rows.append("bits needed   " + " ".join(f"{b:>5.0f}" for b in self.bits_needed))
        return rows

    def findings(self) -> list[str]:
        out = [f"{self.cell}, {self.symbols} symbols ({math.log2(self.symbols):.0f} bits each), chance "
               f"{self.chance:.2f}: recall falls as N grows, and falls later the larger H is"]
        for i, h in enumerate(self.hidden):
            acc = self.accuracy[i]
            if not np.isfinite(acc).any():
                continue
            ok = [int(n) for n, a in zip(self.tested, acc) if a >= 0.9]
            held = (f"holds {max(ok)} symbol{'s' if max(ok) > 1 else ''} ({max(ok) * math.log2(self.symbols):.0f} "
                    "bits) at >= 90%") if ok else "holds no N at >= 90%"
            out.append(f"H = {int(h)}: {held}; at most {self.capacity_bits[i]:.1f} bits recalled "
                       f"({self.capacity_bits[i] / h:.2f} bits per unit)")
        out += self.same_load()
        return out

    def same_load(self) -> list[str]:
        """Recall at the same N/H across hidden sizes: how well the load per unit predicts it."""
        from fractions import Fraction

        by_ratio: dict = {}
        for i, h in enumerate(self.hidden):
            for j, n in enumerate(self.tested):
                if np.isfinite(self.accuracy[i, j]):
                    by_ratio.setdefault(Fraction(int(n), int(h)), []).append((int(h), float(self.accuracy[i, j])))
        out = []
        for ratio in sorted(by_ratio):
            pairs = by_ratio[ratio]
            if len(pairs) >= 3:
                accs = [a for _, a in pairs]
                out.append(f"at N/H = {ratio}: recall {min(accs):.2f}-{max(accs):.2f} over H = "
                           f"{', '.join(str(h) for h, _ in pairs)}")
        return out


@experiment("capacity", CapacitySettings, CapacityResult,
            explanation=("Read N random symbols, wait, recall them all: one model per hidden size H.",
                         "A fixed-size state holds a bounded number of bits: recall falls as N/H grows."),
            quick=dict(hidden_sizes=(8, 32), steps=600, max_symbols=8, tested=(1, 2, 4, 8), test_items=128))
def run_capacity(s: CapacitySettings, ctx: RunContext) -> dict:
    choose("cell", s.cell, CELLS)
    tested = np.asarray(s.tested, dtype=np.int64)
    M, N = len(s.hidden_sizes), len(tested)
    acc, exact, bits = np.full((M, N), np.nan), np.full((M, N), np.nan), np.full((M, N), np.nan)
    for i, h in enumerate(s.hidden_sizes):
        if ctx.stopped:
            break
        part = ctx.part(i, M)
        model = build_model(ModelConfig(vocab_size=s.symbols + 2, cell=s.cell, embed=s.embed, hidden=int(h)),
                            seed=s.seed)
        opt = torch.optim.Adam(model.parameters(), lr=s.lr)
        rng = np.random.default_rng(s.seed + 17 * i)
        for step in range(s.steps):
            if ctx.stopped:
                break
            n = int(rng.integers(1, s.max_symbols + 1))
            x, y = symbol_batch(rng, s.batch, n, s.symbols, s.delay)
            logits, _ = model(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=IGNORE)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if step % max(1, s.steps // 20) == 0:
                part.report(step / s.steps, f"H={h}: step {step}/{s.steps} loss {float(loss.detach()):.3f}")
        if ctx.stopped:
            break
        test_rng = np.random.default_rng(s.seed + 1000)
        with torch.no_grad():
            for j, n in enumerate(tested):
                x, y = symbol_batch(test_rng, s.test_items, int(n), s.symbols, s.delay)
                pred = model(x)[0].argmax(-1)
                mask = y != IGNORE
                hit = (pred == y) | ~mask
                acc[i, j] = float((pred[mask] == y[mask]).float().mean())
                exact[i, j] = float(hit.all(dim=1).float().mean())
                bits[i, j] = bits_recalled(acc[i, j], int(n), s.symbols)
    with np.errstate(all="ignore"):
        cap = np.where(np.isfinite(bits).any(1), np.nanmax(np.where(np.isfinite(bits), bits, -1.0), 1), np.nan)
    return dict(cell=s.cell, hidden=np.asarray(s.hidden_sizes, dtype=np.int64), tested=tested, accuracy=acc,
                exact=exact, bits_needed=tested * math.log2(s.symbols), bits=bits, capacity_bits=cap,
                symbols=int(s.symbols), chance=1.0 / s.symbols)
