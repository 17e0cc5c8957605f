"""Numbers in a few columns, in words a person reads: durations, rates, losses, step counts."""

from __future__ import annotations

import math

import numpy as np

LN2 = math.log(2.0)


def fmt_duration(seconds: float | None) -> str:
    """'0:42', '12:05', '1:02:03'; '?' when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_rate(value: float | None) -> str:
    """Tokens per second: '850', '12.3k', '1.2M'."""
    if value is None or not math.isfinite(value):
        return "?"
    if value >= 1e6:
        return f"{value / 1e6:.1f}M"
    if value >= 1e4:
        return f"{value / 1e3:.0f}k"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k"
    return f"{value:.0f}"


def fmt_loss(nats: float | None, unit: str) -> str:
    if nats is None or not math.isfinite(nats):
        return "nan" if nats is not None else "–"
    if unit == "bits":
        return f"{nats / LN2:.3f} bits/tok"
    if unit == "ppl":
        return f"ppl {math.exp(min(nats, 700)):.2f}"
    return f"{nats:.3f} nats"


def convert_loss(nats: np.ndarray, unit: str) -> np.ndarray:
    """Nats per token to the unit shown: nats, bits per token or perplexity."""
    if unit == "bits":
        return nats / LN2
    if unit == "ppl":
        with np.errstate(over="ignore", invalid="ignore"):
            return np.exp(np.minimum(nats, 700.0))
    return nats


def fmt_steps(step: int) -> str:
    """A step count in a few columns: 1288, 12.9k, 1.29M (not a tick label's "1.288k")."""
    if step < 10_000:
        return str(step)
    if step < 1_000_000:
        return f"{step / 1e3:.1f}k" if step < 100_000 else f"{step // 1000}k"
    return f"{step / 1e6:.2f}M"
