"""Unit inspector: which units fire together, where else they do, and which inputs matter.

What LSTMVis (Strobelt et al. 2017) does, as plain numpy/torch for a terminal front end:

- `encode_corpus_states`: run a model over a whole corpus once and keep one value (hidden
  state, LSTM cell state or a gate) of one layer for every token, quantised to uint8.
- `select_units`: the units that stay at or above a threshold across a span of a sentence
  (optionally below it just before and just after the span).
- `find_matches`: every place in the corpus where the same units are all on together for at
  least as long, ranked LSTMVis-style, with a decoded snippet around each.
- `attribution`: how much each earlier token counts for one prediction, by gradient x input
  or by occlusion; `Attribution.words` sums it per word for drawing under the sentence.

Memory of a `CorpusStates`: N tokens x H units x 1 byte for the default uint8 storage
(tinyshakespeare, 1.03 M known chars, H=64: 63 MiB), 2 bytes for float16, 4 for float32, plus
4 bytes a token for the ids. Values with a known range (sigmoid gates [0, 1]; tanh-bounded
hidden states, g and n [-1, 1]) are quantised on that fixed grid (error <= 1/510 for gates,
1/255 for [-1, 1]). Unbounded ones (LSTM cell, ReLU hidden) start on a per-unit range
calibrated on the first chunk; a unit whose values leave it has its range doubled and its
stored codes re-quantised (error <= one step of the final grid; nothing is clipped).
The array is stored unit-major (Fortran order, shape [N, H]) so that the rows of the
selected units, which the search reads, are contiguous.
"""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from .corpus import Vocab, word_spans
from .errors import ConfigError, ProbeLimitError, VocabError
from .model import INTERNALS
from .probes import MAX_TRACE_TOKENS, encode_text, to_jsonable, layer_index, ProbeResult, zero_state

# Bytes the stored [N, H] values may take; beyond it, ask for max_tokens.
MAX_CORPUS_BYTES = 1 << 30
# Default number of parallel streams: 1 M tokens then take ~4 k steps.
DEFAULT_STREAMS = 256
# Tokens each stream (but the first) reads before its own segment, so it does not start cold.
DEFAULT_WARMUP = 128
# Steps of all streams run per fused call; bounds the [B, S, 4H] gate tensor (~32 MB at H=64).
DEFAULT_CHUNK = 128
# Token-steps occlusion may run (n (n + 1) / 2 for n tokens: 2047 tokens): a few seconds of
# one CPU core at H=64.
MAX_OCCLUSION_WORK = 1 << 21
# Occlusion runs up to this many occluded copies side by side, in windows of this many steps,
# within this many floats of inputs, outputs and gates.
_OCCLUSION_ROWS = 256
_OCCLUSION_WINDOW = 128
_OCCLUSION_BATCH_FLOATS = 1 << 24

STORAGES = ("uint8", "float16", "float32")
METHODS = ("grad_x_input", "occlusion")
NEUTRALS = ("auto", "space", "zero")
# Up to this many runs, covering most of the stretch they span, find_matches reduces over the
# corpus in place rather than gathering the runs' positions.
_FEW_RUNS = 2048
_ALIASES = {"h": "hidden", "c": "cell", "state": "hidden"}
_SIGMOID = ("i", "f", "o", "r", "z")
_TANH = ("g", "n")


def values_for(cell: str) -> tuple[str, ...]:
    """The values that can be inspected for a cell type, for menus."""
    extra = ("cell",) if cell == "lstm" else ()
    return ("hidden",) + extra + tuple(n for n in INTERNALS[cell] if n != "c")


def _check_value(lm, value: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"value must be a name such as 'hidden', got {value!r}")
    name = _ALIASES.get(value.strip().lower(), value.strip().lower())
    allowed = values_for(lm.config.cell)
    if name not in allowed:
        why = " (only an LSTM has a cell state)" if name == "cell" else ""
        raise ConfigError(f"cannot inspect {value!r} of a {lm.config.cell} model{why}: "
                          f"choose one of {', '.join(allowed)}")
    return name


def _fixed_range(cell: str, nonlinearity: str, value: str) -> tuple[float, float] | None:
    """The value's range where the cell's equations bound it, else None (calibrate)."""
    if value in _SIGMOID:
        return 0.0, 1.0
    if value in _TANH:
        return -1.0, 1.0
    if value == "hidden" and not (cell == "rnn" and nonlinearity == "relu"):
        return -1.0, 1.0  # tanh, o * tanh(c), or a convex mix of tanh values
    return None


def _whole(x, name: str, low: int = 0) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < low:
        raise ConfigError(f"{name} must be a whole number >= {low}, got {x!r}")
    return int(x)


def _display(text: str) -> str:
    """One line per snippet: newline and tab become one visible character each (offsets kept)."""
    return text.replace("\n", "⏎").replace("\r", "⏎").replace("\t", " ")


# ------------------------------------------------------------------------ corpus states
@dataclass(frozen=True, eq=False)
class CorpusStates(ProbeResult):
    """One value of one layer for every token of a corpus. N tokens, H units.

    Position p of the corpus was computed in stream b = p // stream_len, which started from a
    zero state at token max(0, b * stream_len - warmup): the first stream is exact, the others
    have `warmup` tokens of context before their first token instead of the whole text.
    """

    ids: np.ndarray  # int32 [N]: the encoded corpus (after skipping unknown tokens)
    vocab: Vocab
    value: str  # "hidden", "cell" or a gate name
    layer: int
    cell: str
    storage: str  # "uint8", "float16" or "float32"
    data: np.ndarray  # [N, H] in Fortran order: uint8 codes, or the values themselves
    lo: np.ndarray  # float32 [H]: value of code 0 (uint8); 0 otherwise
    step: np.ndarray  # float32 [H]: value of one code step (uint8); 1 otherwise
    widened: int  # times a unit's calibrated range had to double (0 for fixed ranges)
    streams: int
    stream_len: int
    warmup: int
    steps_done: int  # steps of all streams actually run (< steps_total when stopped)
    steps_total: int
    seconds: float
    lowercased: bool = False
    unknown: tuple[str, ...] = ()
    unknown_message: str | None = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_array(cls, values: np.ndarray, ids: np.ndarray, vocab: Vocab, value: str = "hidden",
                   layer: int = 0, cell: str = "lstm", storage: str = "float32",
                   value_range: tuple[float, float] | None = None) -> "CorpusStates":
        """Wrap values [N, H] computed elsewhere (or made up, for tests); uint8 quantises them on
        value_range, or on the values' own per-unit range."""
        v = np.asarray(values, dtype=np.float32)
        ids = np.asarray(ids)
        if v.ndim != 2 or ids.shape != (v.shape[0],):
            raise ConfigError(f"values must be [N, H] and ids [N], got {v.shape} and {ids.shape}")
        if storage not in STORAGES:
            raise ConfigError(f"unknown storage {storage!r}: choose one of {', '.join(STORAGES)}")
        H = v.shape[1]
        lo, step = np.zeros(H, dtype=np.float32), np.ones(H, dtype=np.float32)
        if storage == "uint8":
            if value_range is not None:
                lo[:] = value_range[0]
                step[:] = (value_range[1] - value_range[0]) / 255.0
            else:
                lo = v.min(0)
                step = np.maximum(v.max(0) - lo, 1e-6) / 255.0
            data = np.clip(np.round((v - lo) / step), 0, 255).astype(np.uint8)
        else:
            data = v.astype(storage)
        N = v.shape[0]
        return cls(ids=ids.astype(np.int32), vocab=vocab, value=value, layer=layer, cell=cell,
                   storage=storage, data=np.asfortranarray(data), lo=lo.astype(np.float32),
                   step=step.astype(np.float32), widened=0, streams=1, stream_len=N, warmup=0,
                   steps_done=N, steps_total=N, seconds=0.0)

    @property
    def n_tokens(self) -> int:
        return int(self.ids.shape[0])

    @property
    def hidden_size(self) -> int:
        return int(self.data.shape[1])

    @property
    def complete(self) -> bool:
        return self.steps_done >= self.steps_total

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes + self.ids.nbytes)

    def stream_start(self, b: np.ndarray | int):
        """Token where stream b began reading (its warmup included)."""
        return np.maximum(0, np.asarray(b) * self.stream_len - self.warmup)

    def covered(self) -> np.ndarray:
        """bool [N]: positions computed (all of them unless the encode was stopped)."""
        if self.complete:
            return np.ones(self.n_tokens, dtype=bool)
        if "covered" not in self._cache:
            pos = np.arange(self.n_tokens)
            t = pos - self.stream_start(pos // self.stream_len)
            self._cache["covered"] = t < self.steps_done
        return self._cache["covered"]

    def values(self, start: int = 0, end: int | None = None, units=None) -> np.ndarray:
        """float32 [n, H'] values of positions start..end-1 (dequantised)."""
        end = self.n_tokens if end is None else end
        cols = slice(None) if units is None else np.asarray(units, dtype=np.int64)
        block = self.data[start:end][:, cols].astype(np.float32)
        if self.storage != "uint8":
            return block
        lo, step = (self.lo, self.step) if units is None else (self.lo[cols], self.step[cols])
        return lo + step * block

    def codes(self, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Per-unit thresholds in the storage's own terms, and which units can never be on.

        uint8: a unit is on where lo + step * code >= threshold, i.e. code >= ceil((t - lo) / step).
        """
        thr = float(threshold)
        if self.storage != "uint8":
            dt = self.data.dtype
            return np.full(self.hidden_size, thr, dtype=dt), np.zeros(self.hidden_size, dtype=bool)
        # A hair of slack so a threshold exactly on a grid point counts that code as on.
        raw = np.ceil((thr - self.lo.astype(np.float64)) / self.step - 1e-6)
        never = raw > 255
        return np.clip(raw, 0, 255).astype(np.uint8), never

    def snippet(self, start: int, end: int, context: int = 30) -> tuple[str, int, int]:
        """(text around positions start..end-1, where the span starts and ends in it)."""
        a, b = max(0, start - context), min(self.n_tokens, end + context)
        tokens = self.vocab._token_array[self.ids[a:b]]
        sep = "" if self.vocab.level == "char" else " "
        pieces = [_display(t) for t in tokens]
        text = sep.join(pieces)
        m0 = sum(map(len, pieces[: start - a])) + len(sep) * (start - a)
        m1 = m0 + sum(map(len, pieces[start - a: end - a])) + len(sep) * max(0, end - start - 1)
        return text, m0, m1

    def to_json(self) -> dict:
        """A summary: the [N, H] array itself is far too big for JSON."""
        return to_jsonable({
            "value": self.value, "layer": self.layer, "cell": self.cell, "storage": self.storage,
            "n_tokens": self.n_tokens, "hidden_size": self.hidden_size, "nbytes": self.nbytes,
            "lo": self.lo, "step": self.step, "widened": self.widened, "streams": self.streams,
            "stream_len": self.stream_len, "warmup": self.warmup, "steps_done": self.steps_done,
            "steps_total": self.steps_total, "complete": self.complete, "seconds": self.seconds,
            "lowercased": self.lowercased, "unknown": self.unknown,
            "unknown_message": self.unknown_message,
        })


def _widen(store: np.ndarray, lo: np.ndarray, step: np.ndarray, vmin: np.ndarray,
           vmax: np.ndarray) -> int:
    """Double the range of every unit whose new values fall outside it, in place.

    Each doubling grows the range by half of itself on both sides; the codes already stored
    are re-quantised once onto the final grid, so a stored value is off by at most one step
    of its final grid (half a step from each rounding) and nothing is ever clipped.
    """
    count = 0
    for u in np.flatnonzero((vmin < lo) | (vmax > lo + 255 * step)):
        old_lo, old_step = float(lo[u]), float(step[u])
        new_lo, new_step = old_lo, old_step
        while vmin[u] < new_lo or vmax[u] > new_lo + 255 * new_step:
            new_lo -= 128 * new_step
            new_step *= 2
            count += 1
        row = store[u].astype(np.float32) * old_step + (old_lo - new_lo)
        store[u] = np.clip(np.round(row / new_step), 0, 255).astype(np.uint8)
        lo[u], step[u] = new_lo, new_step
    return count


def _layer_modules(model, upto: int) -> list[nn.Module]:
    """Single-layer fused modules holding layers 0..upto's weights, to read any layer fast."""
    cfg = model.config
    if cfg.layers == 1:
        return [model.rnn]
    mods = []
    p = next(model.parameters())
    for k in range(upto + 1):
        inp = cfg.embed if k == 0 else cfg.hidden
        if cfg.cell == "rnn":
            m = nn.RNN(inp, cfg.hidden, 1, nonlinearity=cfg.nonlinearity, batch_first=True)
        elif cfg.cell == "lstm":
            m = nn.LSTM(inp, cfg.hidden, 1, batch_first=True)
        else:
            m = nn.GRU(inp, cfg.hidden, 1, batch_first=True)
        m = m.to(device=p.device, dtype=p.dtype)
        with torch.no_grad():
            for name, w in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"),
                               model.layer_weights(k)):
                getattr(m, name).copy_(w)
        m.eval()
        mods.append(m)
    return mods


def _chunk_value(model, layer: int, value: str, x: torch.Tensor, out: torch.Tensor, prev) -> torch.Tensor:
    """[B, S, H] of `value` for one chunk of one layer, from its inputs x [B, S, In], its
    outputs h [B, S, H] and its state before the chunk. Gates are recomputed in a few big
    matrix products from h_(t-1) rather than stepped one token at a time."""
    cfg = model.config
    if value == "hidden":
        return out
    H = cfg.hidden
    w_ih, w_hh, b_ih, b_hh = model.layer_weights(layer)
    h0 = prev[0] if cfg.cell == "lstm" else prev
    h_prev = torch.cat([h0[0][:, None], out[:, :-1]], dim=1)

    def pre(block: int) -> torch.Tensor:
        rows = slice(block * H, (block + 1) * H)
        return x @ w_ih[rows].T + b_ih[rows] + h_prev @ w_hh[rows].T + b_hh[rows]

    if cfg.cell == "lstm":
        order = {"i": 0, "f": 1, "g": 2, "o": 3}
        if value in order:
            z = pre(order[value])
            return torch.tanh(z) if value == "g" else torch.sigmoid(z)
        # Cell: a cheap elementwise scan over the chunk, c_t = f_t c_(t-1) + i_t g_t.
        f = torch.sigmoid(pre(1))
        u = torch.sigmoid(pre(0)) * torch.tanh(pre(2))
        c = prev[1][0]
        cs = []
        for t in range(x.shape[1]):
            c = f[:, t] * c + u[:, t]
            cs.append(c)
        return torch.stack(cs, dim=1)
    # GRU, torch's convention: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)).
    if value in ("r", "z"):
        return torch.sigmoid(pre(0 if value == "r" else 1))
    rows = slice(2 * H, 3 * H)
    r = torch.sigmoid(pre(0))
    return torch.tanh(x @ w_ih[rows].T + b_ih[rows] + r * (h_prev @ w_hh[rows].T + b_hh[rows]))


def encode_corpus_states(lm, text: str, value: str = "hidden", layer: int = -1,
                         stop: threading.Event | None = None,
                         progress: Callable[[int, int], None] | None = None,
                         max_tokens: int | None = None, *, storage: str = "uint8",
                         streams: int | None = None, warmup: int = DEFAULT_WARMUP,
                         chunk: int = DEFAULT_CHUNK, on_unknown: str = "skip",
                         lowercase: bool | None = None, threads: int | None = None) -> CorpusStates:
    """Run the model over a whole text once and keep `value` of `layer` for every token.

    The text is cut into `streams` contiguous segments stepped together through the fused
    module (`chunk` steps per call, state carried between calls); gates and the cell state
    are recomputed from each chunk's hidden states in a few matrix products. `streams=None`
    picks up to 256, fewer for short texts so the warmups stay a few percent of the work.
    `lowercase=None` lowercases the text when the vocabulary has no upper-case letter (the
    bundled models' 28-character alphabet), instead of skipping every capital.
    `progress(tokens_done, tokens_total)` is called after every chunk; when `stop` is set the
    encode returns what it has, with `complete` False and `covered()` saying where.
    `threads` sets torch's intra-op threads for the call (process-wide; restored after).
    """
    t_start = time.perf_counter()
    value = _check_value(lm, value)
    layer = layer_index(lm, layer)
    if storage not in STORAGES:
        raise ConfigError(f"unknown storage {storage!r}: choose one of {', '.join(STORAGES)}")
    warmup = _whole(warmup, "warmup")
    chunk = _whole(chunk, "chunk", 1)
    if not isinstance(text, str):
        raise VocabError(f"nothing to encode: expected text, got {type(text).__name__}")
    if lowercase is None:
        lowercase = lm.vocab.reads_lowercase_only
    if lowercase:
        text = text.lower()
    if max_tokens is not None:
        max_tokens = _whole(max_tokens, "max_tokens", 1)
        if lm.vocab.level == "char":
            # Skipping only shortens the text: a few times the cap is plenty to fill it.
            text = text[: 4 * max_tokens + 1024]
    enc = lm.vocab.encode(text, on_unknown=on_unknown)
    ids = np.asarray(enc.ids, dtype=np.int64)
    if max_tokens is not None:
        ids = ids[:max_tokens]
    N = len(ids)
    if N == 0:
        raise VocabError(f"nothing to encode: {enc.message() or 'the text is empty'}")
    cfg = lm.config
    H = cfg.hidden
    itemsize = {"uint8": 1, "float16": 2, "float32": 4}[storage]
    if N * H * itemsize > MAX_CORPUS_BYTES:
        fit = MAX_CORPUS_BYTES // (H * itemsize)
        raise ProbeLimitError(f"corpus states: {N:,} tokens x {H} units of {storage} would take "
                              f"{N * H * itemsize / 2**20:,.0f} MB; at most {fit:,} tokens fit: "
                              f"pass max_tokens={fit}")
    if streams is None:
        B = max(1, min(DEFAULT_STREAMS, N // (20 * max(warmup, 32))))
    else:
        B = min(_whole(streams, "streams", 1), N)
    Ls = -(-N // B)
    steps = Ls + (warmup if B > 1 else 0)
    starts = np.maximum(0, np.arange(B) * Ls - warmup)  # stream b reads from here
    # data is written unit-major ([H, N] C order) and exposed as its transpose.
    dtype = {"uint8": np.uint8, "float16": np.float16, "float32": np.float32}[storage]
    store = np.zeros((H, N), dtype=dtype)
    rng = _fixed_range(cfg.cell, cfg.nonlinearity, value)
    lo = step = None
    if storage == "uint8" and rng is not None:
        lo = np.full(H, rng[0], dtype=np.float32)
        step = np.full(H, (rng[1] - rng[0]) / 255.0, dtype=np.float32)
    widened = 0

    model = lm.model
    device = model.device
    mods = _layer_modules(model, layer)
    ids_t = torch.as_tensor(ids, device=device)
    starts_t = torch.as_tensor(starts, device=device)
    seg_lo = torch.arange(B, device=device) * Ls  # each stream keeps [b * Ls, (b + 1) * Ls)
    seg_hi = torch.clamp(seg_lo + Ls, max=N)
    zero = zero_state(model)
    state = [None] * (layer + 1)
    for k in range(layer + 1):
        if cfg.cell == "lstm":
            state[k] = (zero[0][:1].expand(1, B, H).contiguous(), zero[1][:1].expand(1, B, H).contiguous())
        else:
            state[k] = zero[:1].expand(1, B, H).contiguous()
    done = 0
    # Intra-op threads: on a busy machine one thread can be several times faster than two.
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(_whole(threads, "threads", 1))
    try:
        with torch.no_grad():
            for t0 in range(0, steps, chunk):
                if stop is not None and stop.is_set():
                    break
                S = min(chunk, steps - t0)
                pos = starts_t[:, None] + torch.arange(t0, t0 + S, device=device)[None, :]  # [B, S]
                keep = (pos >= seg_lo[:, None]) & (pos < seg_hi[:, None])
                x = model.embed(ids_t[torch.clamp(pos, max=N - 1)])
                for k in range(layer + 1):
                    prev = state[k]
                    out, state[k] = mods[k](x, prev)
                    if k == layer:
                        vals = _chunk_value(model, layer, value, x, out, prev)
                    x = out
                if not bool(keep.any()):
                    done = t0 + S
                    continue
                sel = vals[keep].float()  # [M, H], in position order within each stream
                where = pos[keep].cpu().numpy()
                if storage == "uint8":
                    if rng is None:
                        if lo is None:  # an unbounded value: calibrate on the first chunk, all streams
                            vmin = vals.amin((0, 1)).float().cpu().numpy()
                            vmax = vals.amax((0, 1)).float().cpu().numpy()
                            half = np.maximum((vmax - vmin) * 0.75, 1e-3)
                            lo = ((vmax + vmin) / 2 - half).astype(np.float32)
                            step = (2 * half / 255.0).astype(np.float32)
                        widened += _widen(store, lo, step, sel.amin(0).cpu().numpy(),
                                          sel.amax(0).cpu().numpy())
                    lo_t = torch.as_tensor(lo, device=sel.device)
                    step_t = torch.as_tensor(step, device=sel.device)
                    q = torch.round((sel - lo_t) / step_t)
                    codes = torch.clamp(q, 0, 255).to(torch.uint8).cpu().numpy()
                else:
                    codes = sel.cpu().numpy().astype(dtype, copy=False)
                store[:, where] = codes.T
                done = t0 + S
                if progress is not None:
                    progress(min(N, int(N * done / steps)), N)
    finally:
        if threads is not None:
            torch.set_num_threads(old_threads)
    if lo is None:
        lo, step = np.zeros(H, dtype=np.float32), np.ones(H, dtype=np.float32)
    return CorpusStates(
        ids=ids.astype(np.int32), vocab=lm.vocab, value=value, layer=layer, cell=cfg.cell,
        storage=storage, data=store.T, lo=lo, step=step, widened=widened, streams=B, stream_len=Ls,
        warmup=warmup if B > 1 else 0, steps_done=done, steps_total=steps,
        seconds=time.perf_counter() - t_start, lowercased=bool(lowercase),
        unknown=tuple(enc.unknown), unknown_message=enc.message(),
    )


def trace_values(tr, value: str = "hidden", layer: int | None = None) -> np.ndarray:
    """[T, H] of `value` for one layer out of a probes.Trace, to feed select_units.

    layer: a model layer the trace holds; None (or a negative index into the layers it holds)
    picks among `tr.layers`, None meaning the last of them.
    """
    name = _ALIASES.get(value, value)
    if layer is None:
        layer = -1
    if layer < 0:
        if -layer > len(tr.layers):
            raise ConfigError(f"the trace holds {len(tr.layers)} layer(s), not index {layer}")
        layer = tr.layers[layer]
    if layer not in tr.layers:
        raise ConfigError(f"the trace holds layers {tr.layers}, not layer {layer}")
    k = tr.layers.index(layer)
    if name == "hidden":
        return tr.hidden[k]
    key = "c" if name == "cell" else name
    if key not in tr.gates:
        raise ConfigError(f"the trace has no {value!r}: it holds hidden, {', '.join(tr.gates) or 'no gates'}")
    return tr.gates[key][k]


# ------------------------------------------------------------------------ unit selection
def _check_span(span, T: int) -> tuple[int, int]:
    try:
        start, end = (int(s) for s in span)
    except (TypeError, ValueError):
        raise ConfigError(f"span must be (start, end) token positions, got {span!r}") from None
    if not 0 <= start < end <= T:
        raise ConfigError(f"span ({start}, {end}) must satisfy 0 <= start < end <= {T} "
                          "(end is exclusive)")
    return start, end


def select_units(values: np.ndarray, span, threshold: float, off_outside: bool = False) -> np.ndarray:
    """Units >= threshold at every step of span = (start, end) (end exclusive), as sorted ints.

    With off_outside, a unit must also be below the threshold at the step just before and just
    after the span, where those steps exist (LSTMVis's "off" around a selection).
    """
    v = np.asarray(values)
    if v.ndim != 2:
        raise ConfigError(f"values must be [T, H], got shape {v.shape}")
    start, end = _check_span(span, v.shape[0])
    thr = float(threshold)
    on = np.all(v[start:end] >= thr, axis=0)
    if off_outside:
        if start > 0:
            on &= v[start - 1] < thr
        if end < v.shape[0]:
            on &= v[end] < thr
    return np.flatnonzero(on).astype(np.int64)


# ---------------------------------------------------------------------------- matching
@dataclass(frozen=True)
class Match:
    start: int  # first corpus position of the run
    end: int  # one past its last position
    score: int  # selected units on (all of them) minus other units on throughout the run
    extra: int  # other units on throughout the run
    mean: float  # mean value of the selected units over the run
    snippet: str  # decoded text around the run (newlines shown as ⏎)
    mark_start: int  # the run's characters in `snippet`
    mark_end: int

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, eq=False)
class UnitMatches(ProbeResult):
    """Runs of the corpus where all the selected units are on, best first."""

    units: np.ndarray  # int64 [k]
    threshold: float
    span_len: int
    off_outside: bool
    value: str
    layer: int
    total: int  # runs that qualified, before keeping the top ones
    matches: tuple[Match, ...]
    seconds: float

    def to_json(self) -> dict:
        data = super().to_json()
        data["matches"] = [to_jsonable(m.__dict__) for m in self.matches]
        return data


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the maximal runs of True in a bool vector."""
    edges = np.diff(mask.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _gather_runs(cols: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cols [H, N] restricted to the runs' positions, [H, sum of lengths], and each run's offset."""
    lengths = ends - starts
    offsets = np.cumsum(lengths) - lengths
    idx = np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()))
    return cols.take(idx, axis=1), offsets


def _unit_sums(states: CorpusStates, block: np.ndarray, units: np.ndarray) -> np.ndarray:
    """float64 [n]: the sum of the selected units' values at each position of block [H, n]."""
    n = block.shape[1]
    if states.storage != "uint8":
        acc = np.zeros(n, dtype=np.float64)
        for u in units:
            acc += block[u]
        return acc
    lo, step = states.lo[units], states.step[units]
    if np.all(step == step[0]):
        # One grid for all (every fixed-range value): add the codes as integers, scale once.
        acc = np.zeros(n, dtype=np.int32)
        for u in units:
            np.add(acc, block[u], out=acc)
        return float(lo.sum()) + float(step[0]) * acc
    acc, tmp = np.zeros(n, dtype=np.float64), np.empty(n, dtype=np.float64)
    for u, s in zip(units, step):
        np.multiply(block[u], float(s), out=tmp)
        acc += tmp
    return acc + float(lo.sum())


def find_matches(states: CorpusStates, units, threshold: float, span_len: int,
                 off_outside: bool = False, top: int = 20, context: int = 30) -> UnitMatches:
    """Where else in the corpus the selected units are all >= threshold together.

    A candidate is a maximal run of positions where every selected unit is on, at least
    span_len long (with off_outside, every selected unit must be off just before and after
    it). Ranked LSTMVis-style by score = selected units on minus other units on throughout
    the run, then by how close the run's length is to span_len, then by the mean value of
    the selected units. Vectorised: one pass over the k selected columns, one segmented
    minimum over the runs for the others.
    """
    t0 = time.perf_counter()
    H = states.hidden_size
    units = np.unique(np.asarray(units, dtype=np.int64).reshape(-1))
    if units.size == 0:
        raise ConfigError("no units selected: lower the threshold or pick a shorter span")
    if units[0] < 0 or units[-1] >= H:
        raise ConfigError(f"unit numbers must be in 0..{H - 1}, got {units.tolist()}")
    span_len = _whole(span_len, "span_len", 1)
    top = _whole(top, "top", 1)
    thr = float(threshold)
    if not math.isfinite(thr):
        raise ConfigError(f"threshold must be a finite number, got {threshold!r}")
    codes, never = states.codes(thr)

    def result(starts, ends, score, extra, mean, total):
        out = []
        for s, e, sc, ex, mu in zip(starts.tolist(), ends.tolist(), score.tolist(), extra.tolist(),
                                    mean.tolist()):
            text, m0, m1 = states.snippet(s, e, context)
            out.append(Match(s, e, int(sc), int(ex), float(mu), text, m0, m1))
        return UnitMatches(units=units, threshold=thr, span_len=span_len, off_outside=bool(off_outside),
                           value=states.value, layer=states.layer, total=int(total),
                           matches=tuple(out), seconds=time.perf_counter() - t0)

    empty = np.zeros(0, dtype=np.int64)
    if never[units].any():
        return result(empty, empty, empty, empty, np.zeros(0), 0)
    cols = states.data.T  # [H, N], C order: one unit's row is contiguous
    # k passes of N bytes each; no [k, N] copy.
    on_all = cols[units[0]] >= codes[units[0]]
    for u in units[1:]:
        on_all &= cols[u] >= codes[u]
    if not states.complete:
        on_all &= states.covered()
    starts, ends = _runs(on_all)
    ok = ends - starts >= span_len
    starts, ends = starts[ok], ends[ok]
    if off_outside and len(starts):
        # Every selected unit below the threshold at the step before and the step after.
        ok = np.ones(len(starts), dtype=bool)
        has_b, has_a = starts > 0, ends < states.n_tokens
        for u in units:
            ok[has_b] &= cols[u, starts[has_b] - 1] < codes[u]
            ok[has_a] &= cols[u, ends[has_a]] < codes[u]
        starts, ends = starts[ok], ends[ok]
    total = len(starts)
    if total == 0:
        return result(empty, empty, empty, empty, np.zeros(0), 0)
    lengths = ends - starts
    if total <= _FEW_RUNS and 4 * int(lengths.sum()) >= int(ends[-1] - starts[0]):
        # Few runs covering most of their stretch: reduce in place; a copy costs more than the gaps.
        idx = np.empty(2 * total, dtype=np.int64)
        idx[0::2], idx[1::2] = starts, ends
        if idx[-1] == states.n_tokens:  # reduceat's last segment already runs to the end
            idx = idx[:-1]
        mins = np.minimum.reduceat(cols, idx, axis=1)[:, 0::2]
        a, b = int(starts[0]), int(ends[-1])
        local = np.empty(2 * total - 1, dtype=np.int64)  # the last run ends the block
        local[0::2], local[1::2] = starts - a, ends[:-1] - a
        sums = np.add.reduceat(_unit_sums(states, cols[:, a:b], units), local)[0::2]
    else:
        # Many runs: gather their positions once, then segment-reduce the compact copy.
        sub, offsets = _gather_runs(cols, starts, ends)
        mins = np.minimum.reduceat(sub, offsets, axis=1)
        sums = np.add.reduceat(_unit_sums(states, sub, units), offsets)
    # Other units on throughout a run: their minimum over it is still on.
    others = np.setdiff1d(np.arange(H), units)
    others = others[~never[others]]
    extra = np.count_nonzero(mins[others] >= codes[others][:, None], axis=0)
    score = len(units) - extra
    mean = sums / (lengths * len(units))
    order = np.lexsort((starts, -mean, np.abs(lengths - span_len), -score))[:top]
    return result(starts[order], ends[order], score[order], extra[order], mean[order], total)


# ------------------------------------------------------------------------- attribution
@dataclass(frozen=True)
class WordScore:
    start: int  # first token of the word
    end: int  # one past its last token
    word: str
    score: float  # sum of its tokens' scores (NaN if none is visible from the position)
    category: str | None = None


@dataclass(frozen=True, eq=False)
class Attribution(ProbeResult):
    """How much each token up to `position` counts for the prediction made there.

    grad_x_input: score_k = <d log p(target) / d x_k, x_k> with x_k the embedded token.
    occlusion: score_k = log p(target) - log p(target | token k replaced by `neutral`).
    Positive: the token supports the target. NaN after the position (the model cannot see it).
    """

    tokens: tuple[str, ...]
    ids: np.ndarray  # int64 [T]
    position: int  # the prediction made after reading tokens[position]
    target_id: int
    target: str
    target_prob: float  # p(target) at the position
    actual_next: bool  # whether the target is the text's own next token
    method: str
    neutral: str | None  # occlusion's stand-in: "space" or "zero" (embedding)
    scores: np.ndarray  # float64 [T]
    seconds: float
    unknown: tuple[str, ...] = ()
    unknown_message: str | None = None
    offset: int = 0

    def words(self, categories: dict[str, str] | None = None) -> tuple[WordScore, ...]:
        """Scores summed per word (word level: per word token), with categories when given."""
        s = self.scores
        if self.tokens and all(len(t) == 1 for t in self.tokens):
            spans = word_spans("".join(self.tokens))
        else:
            spans = [(i, i + 1, t) for i, t in enumerate(self.tokens) if re.fullmatch(r"\w+", t)]
        out = []
        for a, b, w in spans:
            part = s[a:b]
            vis = part[~np.isnan(part)]
            score = float(vis.sum()) if vis.size else float("nan")
            cat = categories.get(w, categories.get(w.lower())) if categories else None
            out.append(WordScore(a, b, w, score, cat))
        return tuple(out)

    def to_json(self) -> dict:
        data = super().to_json()
        data["words"] = [to_jsonable(w.__dict__) for w in self.words()]
        return data


def _neutral_vector(lm, model, neutral: str) -> tuple[str, torch.Tensor]:
    if neutral not in NEUTRALS:
        raise ConfigError(f"unknown neutral token {neutral!r}: choose one of {', '.join(NEUTRALS)}")
    space = lm.vocab.stoi.get(" ")
    if neutral == "auto":
        neutral = "space" if (lm.vocab.level == "char" and space is not None) else "zero"
    if neutral == "space":
        if space is None:
            raise ConfigError("this vocabulary has no space token: occlude with neutral='zero'")
        return "space", model.embed.weight[space].detach()
    return "zero", torch.zeros_like(model.embed.weight[0]).detach()


def _fused_ok(model) -> bool:
    # The fused module applies dropout between layers in training mode; stepwise never does.
    return not (model.rnn.training and model.config.layers > 1 and model.config.dropout > 0)


def _expand_state(state, rows: int):
    if isinstance(state, tuple):
        return tuple(s.expand(-1, rows, -1).contiguous() for s in state)
    return state.expand(-1, rows, -1).contiguous()


def _occlusion_drops(model, x0: torch.Tensor, todo: np.ndarray, vec: torch.Tensor, tgt: int,
                     base: float) -> np.ndarray:
    """log p(target) minus the same with x_k replaced by vec, for each k in todo (sorted).

    Occluding token k leaves the steps before k as they were, so a block of rows k in
    [a, a + g) starts from the original state at a: n^2 / 2 token-steps instead of n^2. The
    block runs in windows of _OCCLUSION_WINDOW steps, so memory stays g x window.
    """
    n, E = x0.shape[1], x0.shape[2]
    cfg = model.config
    per_row = _OCCLUSION_WINDOW * (E + 6 * cfg.hidden * cfg.layers)
    g = int(max(1, min(_OCCLUSION_ROWS, _OCCLUSION_BATCH_FLOATS // per_row)))
    fused = _fused_ok(model)

    def run(x, state):
        if fused:
            out, state = model.rnn(x, state)
            return out[:, -1], state
        o = model.stepwise(inputs=x, state=state)
        return o.hidden[-1][-1], o.state

    blocks = [todo[i:i + g] for i in range(0, len(todo), g)]
    drops = []
    with torch.no_grad():
        state, at = zero_state(model), 0
        for block in blocks:
            a = int(block[0])
            if a > at:  # the original text up to this block, once
                _, state = run(x0[:, at:a], state)
                at = a
            rows = len(block)
            st = _expand_state(state, rows)
            rel = torch.as_tensor(block - a, device=x0.device)
            last = None
            for w in range(a, n, _OCCLUSION_WINDOW):
                xs = x0[:, w:w + _OCCLUSION_WINDOW].expand(rows, -1, -1).clone()
                hit = (rel >= w - a) & (rel < w - a + xs.shape[1])
                if bool(hit.any()):
                    xs[torch.nonzero(hit)[:, 0], rel[hit] - (w - a)] = vec
                last, st = run(xs, st)
            logp = torch.log_softmax(model.head(last).double(), -1)[:, tgt]
            drops.append(base - logp)
    return torch.cat(drops).cpu().numpy()


def attribution(lm, text: str, position: int | None = None, method: str = "grad_x_input",
                target: int | str | None = None, *, neutral: str = "auto", on_unknown: str = "skip",
                window: int | None = None, dtype: torch.dtype = torch.float32) -> Attribution:
    """Score every token up to `position` for the prediction of `target` made there.

    position: token index (negative counts from the end); default the last token, predicting
    what comes after the text. target: a token or id; default the text's own next token when
    there is one, else the model's top prediction. dtype float64 runs a float64 copy.
    """
    t0 = time.perf_counter()
    if method not in METHODS:
        raise ConfigError(f"unknown attribution method {method!r}: choose one of {', '.join(METHODS)}")
    ids, tokens, enc, offset = encode_text(lm, text, on_unknown, window, MAX_TRACE_TOKENS, "attribution")
    T = len(ids)
    if position is None:
        position = T - 1
    if isinstance(position, bool) or not isinstance(position, (int, np.integer)) or not -T <= position < T:
        raise ConfigError(f"position must be a token index in {-T}..{T - 1}, got {position!r}")
    P = int(position) % T
    model = lm.model
    if dtype not in (torch.float32, torch.float64):
        raise ConfigError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    if model.head.weight.dtype != dtype:
        import copy
        device = "cpu" if (dtype == torch.float64 and model.device.type == "mps") else model.device
        model = copy.deepcopy(model).to(device=device, dtype=dtype)
    V = lm.config.vocab_size
    x_ids = torch.as_tensor(ids[: P + 1], device=model.device)
    with torch.no_grad():
        x0 = model.embed(x_ids).detach()[None]  # [1, P+1, E]
        if _fused_ok(model):
            out, _ = model.rnn(x0, zero_state(model))
            logp_all = torch.log_softmax(model.head(out[0, -1]).double(), -1)
        else:
            last = model.stepwise(inputs=x0, state=zero_state(model)).logits[0, -1]
            logp_all = torch.log_softmax(last.double(), -1)
    actual = P < T - 1
    if target is None:
        tgt = int(ids[P + 1]) if actual else int(logp_all.argmax())
    elif isinstance(target, str):
        if target not in lm.vocab.stoi:
            raise VocabError(f"target {target!r} is not in the model's vocabulary")
        tgt = lm.vocab.stoi[target]
    elif isinstance(target, (int, np.integer)) and not isinstance(target, bool) and 0 <= target < V:
        tgt = int(target)
    else:
        raise ConfigError(f"target must be a token or an id in 0..{V - 1}, got {target!r}")
    actual = actual and tgt == int(ids[P + 1])
    base = float(logp_all[tgt])
    scores = np.full(T, np.nan)
    used = None
    if method == "grad_x_input":
        # stepwise is plain tensor code: it differentiates on every device (cuDNN's RNN
        # backward refuses to run in eval mode).
        with torch.enable_grad():
            x = x0.clone().requires_grad_(True)
            out = model.stepwise(inputs=x, state=zero_state(model))
            lp = torch.log_softmax(out.logits[0, -1], -1)[tgt]
            (g,) = torch.autograd.grad(lp, x)
        scores[: P + 1] = (g[0].double() * x0[0].double()).sum(-1).cpu().numpy()
    else:
        n = P + 1
        work = n * (n + 1) // 2
        if work > MAX_OCCLUSION_WORK:
            fit = (math.isqrt(8 * MAX_OCCLUSION_WORK + 1) - 1) // 2
            raise ProbeLimitError(f"occlusion: {n:,} tokens up to the position need {work:,} token-steps; "
                                  f"at most {fit:,} tokens fit: use window={fit} or "
                                  "method='grad_x_input'")
        used, vec = _neutral_vector(lm, model, neutral)
        # A token that already is the stand-in changes nothing: exactly 0, and not run.
        same = (x0[0] == vec).all(-1).cpu().numpy()
        todo = np.flatnonzero(~same)
        scores[:n] = 0.0
        if len(todo):
            scores[todo] = _occlusion_drops(model, x0, todo, vec, tgt, base)
    table = lm.vocab.tokens
    return Attribution(
        tokens=tokens, ids=ids.copy(), position=P, target_id=tgt, target=table[tgt],
        target_prob=math.exp(base), actual_next=bool(actual), method=method, neutral=used,
        scores=scores, seconds=time.perf_counter() - t0, unknown=tuple(enc.unknown),
        unknown_message=enc.message(), offset=offset,
    )
