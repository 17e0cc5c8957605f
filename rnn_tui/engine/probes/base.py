"""What every probe shares: results as read-only arrays with `to_json()`, and the inputs of a
probe (the text encoded and windowed within a limit, a layer index, a zero state).

Also the base of the unit inspector's, the attribution's and the experiments' results.
"""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np

from ..config import MAX_TRACE_TOKENS  # noqa: F401  (re-exported) the longest text trace and gradient_profile take
from ..errors import ConfigError, ProbeLimitError, VocabError

# Values a trace / gradient pass may hold (logits, hidden states, gates): ~256 MB of float32.
MAX_TRACE_VALUES = 1 << 26


# --------------------------------------------------------------------------- json helpers
def _round(x: float) -> float | None:
    """NaN/inf -> None; otherwise 6 significant digits (tiny gradients stay readable)."""
    if not math.isfinite(x):
        return None
    return float(f"{x:.6g}")


def to_jsonable(value):
    """Numpy arrays, complex numbers and NaN/inf as plain JSON (floats rounded, NaN -> null)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "c":
            return [to_jsonable(v) for v in value.tolist()]
        if value.dtype.kind == "f":
            return to_jsonable(value.tolist())
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, complex):
        return [_round(value.real), _round(value.imag)]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _round(float(value))
    return value


class ProbeResult:
    """Shared by the probe dataclasses: read-only arrays and JSON output."""

    def __post_init__(self) -> None:
        # Frozen means frozen: nobody downstream may edit a shared result in place.
        for f in fields(self):
            value = getattr(self, f.name)
            arrays = value.values() if isinstance(value, dict) else [value]
            for a in arrays:
                if isinstance(a, np.ndarray):
                    a.setflags(write=False)

    def to_json(self) -> dict:
        """A dict of plain lists / numbers / strings; NaN and inf become None."""
        return {f.name: to_jsonable(getattr(self, f.name)) for f in fields(self)}


# ----------------------------------------------------------------------------- inputs
def layer_index(lm, layer: int) -> int:
    n = lm.config.layers
    if not isinstance(layer, (int, np.integer)) or isinstance(layer, bool) or not -n <= layer < n:
        raise ConfigError(f"layer must be between {-n} and {n - 1} for this {n}-layer model, got {layer!r}")
    return int(layer) % n


def encode_text(lm, text: str, on_unknown: str, window: int | None, limit: int, what: str):
    """(ids np.int64[T], tokens, encoded, offset) after skipping/mapping and windowing."""
    if not isinstance(text, str):
        raise VocabError(f"nothing to probe: expected text, got {type(text).__name__}")
    enc = lm.vocab.encode(text, on_unknown=on_unknown)
    ids = np.asarray(enc.ids, dtype=np.int64)
    tokens = tuple(enc.tokens)
    if ids.size == 0:
        why = enc.message() or "the text is empty"
        raise VocabError(f"nothing to probe: {why}")
    offset = 0
    if window is not None:
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
            raise ConfigError(f"window must be a positive number of tokens, got {window!r}")
        offset = max(0, len(ids) - int(window))
        ids, tokens = ids[offset:], tokens[offset:]
    if len(ids) > limit:
        raise ProbeLimitError(
            f"{what}: the text is {len(ids):,} tokens but at most {limit:,} fit: use a shorter text, "
            f"or read only its last {limit:,} tokens", fit=limit)
    return ids, tokens, enc, offset


def check_values(lm, n_tokens: int, per_token: int, what: str) -> None:
    if n_tokens * per_token > MAX_TRACE_VALUES:
        fit = max(1, MAX_TRACE_VALUES // per_token)
        raise ProbeLimitError(
            f"{what}: {n_tokens:,} tokens of a model this size ({lm.label}) would hold "
            f"{n_tokens * per_token:,} values; at most {fit:,} tokens fit: use a shorter text, "
            f"or read only its last {fit:,} tokens", fit=fit)


def zero_state(model):
    """Batch-1 zero state in the model's own dtype (init_state always makes float32)."""
    state = model.init_state(1)
    dtype = model.head.weight.dtype
    return tuple(s.to(dtype) for s in state) if isinstance(state, tuple) else state.to(dtype)


def unknown_of(enc) -> tuple[tuple[str, ...], str | None]:
    return tuple(enc.unknown), enc.message()
