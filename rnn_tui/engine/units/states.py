"""Corpus states: one value (hidden state, LSTM cell state or a gate) of one layer for every
token of a whole corpus, computed once in parallel streams and stored compactly for the search.

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

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..corpus import Vocab
from ..errors import ConfigError, ProbeLimitError, VocabError
from ..model import INTERNALS
from ..probes import ProbeResult, layer_index, to_jsonable, zero_state

# Bytes the stored [N, H] values may take; beyond it, ask for max_tokens.
MAX_CORPUS_BYTES = 1 << 30
# Default number of parallel streams: 1 M tokens then take ~4 k steps.
DEFAULT_STREAMS = 256
# Tokens each stream (but the first) reads before its own segment, so it does not start cold.
DEFAULT_WARMUP = 128
# Steps of all streams run per fused call; bounds the [B, S, 4H] gate tensor (~32 MB at H=64).
DEFAULT_CHUNK = 128

STORAGES = ("uint8", "float16", "float32")
VALUE_ALIASES = {"h": "hidden", "c": "cell", "state": "hidden"}
_SIGMOID = ("i", "f", "o", "r", "z")
_TANH = ("g", "n")


def values_for(cell: str) -> tuple[str, ...]:
    """The values that can be inspected for a cell type, for menus."""
    extra = ("cell",) if cell == "lstm" else ()
    return ("hidden",) + extra + tuple(n for n in INTERNALS[cell] if n != "c")


def _check_value(lm, value: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"value must be a name such as 'hidden', got {value!r}")
    name = VALUE_ALIASES.get(value.strip().lower(), value.strip().lower())
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


def model_fingerprint(lm) -> str:
    """What identifies a model's computation: its config and the bytes of every weight (the same
    weights loaded again give the same fingerprint; one training step gives another)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps(lm.config.to_dict(), sort_keys=True).encode())
    with torch.no_grad():
        for name, t in lm.model.state_dict().items():
            digest.update(name.encode())
            digest.update(t.detach().to("cpu").contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def text_fingerprint(text: str) -> str:
    """The corpus text's identity (a 1 MB text hashes in about a millisecond)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def check_whole(x, name: str, low: int = 0) -> int:
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
        sep = " " if self.vocab.level == "word" else ""
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
    warmup = check_whole(warmup, "warmup")
    chunk = check_whole(chunk, "chunk", 1)
    if not isinstance(text, str):
        raise VocabError(f"nothing to encode: expected text, got {type(text).__name__}")
    if lowercase is None:
        lowercase = lm.vocab.reads_lowercase_only
    if lowercase:
        text = text.lower()
    if max_tokens is not None:
        max_tokens = check_whole(max_tokens, "max_tokens", 1)
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
        B = min(check_whole(streams, "streams", 1), N)
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
        torch.set_num_threads(check_whole(threads, "threads", 1))
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
