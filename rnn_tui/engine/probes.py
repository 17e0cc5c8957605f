"""Probes: what a trained recurrent network does with one piece of text.

Every probe takes a `LoadedModel` and a text, encodes the text with the model's vocabulary
(unknown tokens are skipped by default and reported in `unknown_message`), and returns a
frozen dataclass of numpy arrays with `to_json()`.

- `trace`: hidden states, gates, next-token predictions and losses, step by step.
- `gradient_profile`: |dL/dh_t| and |dL/dx_t| for every step, from ONE backward pass.
- `jacobian_map`: ||d state_t / d state_k||_F for every pair k <= t of one layer.
- `spectrum`: eigenvalues and spectral radius of each recurrent block of one layer.

Work is bounded: texts longer than `MAX_TRACE_TOKENS` (trace, gradients) or than what the
Jacobian products allow (`MAX_JACOBIAN_TOKENS`, `MAX_JACOBIAN_WORK`) raise ProbeLimitError,
whose message says how many tokens fit; `window=N` keeps only the last N tokens instead
(the probe then starts from a zero state at the first kept token).
"""

from __future__ import annotations

import copy
import hashlib
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, fields

import numpy as np
import torch

from .errors import ConfigError, ProbeLimitError, VocabError
from .model import INTERNALS

# Longest text trace and gradient_profile take (one Python step per token).
MAX_TRACE_TOKENS = 4096
# Values a trace / gradient pass may hold (logits, hidden states, gates): ~256 MB of float32.
MAX_TRACE_VALUES = 1 << 26
# Longest text for the T x T Jacobian map.
MAX_JACOBIAN_TOKENS = 512
# Multiply-adds the T*T/2 products of D x D Jacobians may take (~1-2 s of float64 on a laptop).
MAX_JACOBIAN_WORK = 4e10
# Memory the per-step Jacobians and the product stack may take (float64).
MAX_JACOBIAN_BYTES = 1 << 30
# Largest hidden size whose eigenvalues `spectrum` computes (O(H^3) per block).
MAX_SPECTRUM_HIDDEN = 1024

MODES = ("last", "sum")

# The block that writes new content into the state: the one whose eigenvalues say whether the
# recurrence by itself expands or contracts (the gates only scale it).
MAIN_BLOCK = {"rnn": "W_hh", "lstm": "g", "gru": "n"}
MAIN_REASON = {
    "rnn": "W_hh is the only recurrent matrix: h_t = phi(W_hh h_(t-1) + W_ih x_t + b)",
    "lstm": "g is the candidate block: it writes new content into the cell (f and i only scale "
            "how much old and new content survive)",
    "gru": "n is the candidate block: it proposes the new state (r gates its recurrent input, "
           "z mixes it with the old state)",
}


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
            f"{what}: the text is {len(ids):,} tokens but at most {limit:,} fit; "
            f"use a shorter text or window={limit} (the last {limit:,} tokens)")
    return ids, tokens, enc, offset


def _check_values(lm, n_tokens: int, per_token: int, what: str) -> None:
    if n_tokens * per_token > MAX_TRACE_VALUES:
        fit = max(1, MAX_TRACE_VALUES // per_token)
        raise ProbeLimitError(
            f"{what}: {n_tokens:,} tokens of a model this size ({lm.label}) would hold "
            f"{n_tokens * per_token:,} values; at most {fit:,} tokens fit: use a shorter text or window={fit}")


def zero_state(model):
    """Batch-1 zero state in the model's own dtype (init_state always makes float32)."""
    state = model.init_state(1)
    dtype = model.head.weight.dtype
    return tuple(s.to(dtype) for s in state) if isinstance(state, tuple) else state.to(dtype)


def _unknown(enc) -> tuple[tuple[str, ...], str | None]:
    return tuple(enc.unknown), enc.message()


# ------------------------------------------------------------------------------ trace
@dataclass(frozen=True, eq=False)
class Trace(ProbeResult):
    """One forward pass, step by step. T tokens, L' layers kept (all unless `layer` was given)."""

    tokens: tuple[str, ...]
    ids: np.ndarray  # int64 [T]
    layers: tuple[int, ...]  # which layers `hidden` and `gates` hold, in order
    hidden: np.ndarray  # float32 [L', T, H]
    gates: dict[str, np.ndarray]  # LSTM i,f,g,o + "c"; GRU r,z,n; vanilla: empty. [L', T, H]
    topk_ids: np.ndarray  # int64 [T, k]: most likely next tokens after step t
    topk_probs: np.ndarray  # float32 [T, k], descending
    topk_tokens: tuple[tuple[str, ...], ...]  # [T][k]
    next_ids: np.ndarray  # int64 [T]: the actual next token; -1 at the last step
    next_prob: np.ndarray  # float64 [T]: its probability; NaN at the last step
    next_loss: np.ndarray  # float64 [T]: -log of it (nats); NaN at the last step
    mean_loss: float  # mean of next_loss over the steps that have a next token (NaN if none)
    unknown: tuple[str, ...] = ()
    unknown_message: str | None = None
    offset: int = 0  # tokens dropped from the front by `window`


def trace(lm, text: str, top_k: int = 10, layer: int | None = None, on_unknown: str = "skip",
          window: int | None = None) -> Trace:
    """Run the text through the step-wise path once (batch 1) and keep everything."""
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ConfigError(f"top-k must be a whole number >= 1, got {top_k!r}")
    ids, tokens, enc, offset = encode_text(lm, text, on_unknown, window, MAX_TRACE_TOKENS, "trace")
    model, cfg = lm.model, lm.config
    keep = tuple(range(cfg.layers)) if layer is None else (layer_index(lm, layer),)
    names = INTERNALS[cfg.cell]
    # stepwise keeps every layer's states and gates plus the logits and their log-softmax.
    _check_values(lm, len(ids), 3 * cfg.vocab_size + cfg.layers * cfg.hidden * (1 + len(names)), "trace")
    k = min(int(top_k), cfg.vocab_size)
    with torch.no_grad():
        x = torch.as_tensor(ids, device=model.device).unsqueeze(0)
        out = model.stepwise(x, zero_state(model))
        logp = torch.log_softmax(out.logits[0].float(), dim=-1)  # [T, V]
        top_lp, top_i = logp.topk(k, dim=-1)
        next_lp = logp[:-1].gather(1, x[0, 1:, None])[:, 0].double()
        sel = list(keep)
        hidden = out.hidden_stack()[sel, 0].float()
        gates = {n: out.internals[n][sel, 0].float() for n in names}
        # One transfer per array, after the loop: no per-step syncs.
        hidden_np = hidden.cpu().numpy()
        gates_np = {n: g.cpu().numpy() for n, g in gates.items()}
        top_i_np = top_i.cpu().numpy().astype(np.int64)
        top_p_np = top_lp.exp().cpu().numpy()
        next_lp_np = next_lp.cpu().numpy()
    nan = np.array([np.nan])
    next_loss = np.concatenate([-next_lp_np, nan])
    table = lm.vocab.tokens
    return Trace(
        tokens=tokens, ids=ids.copy(), layers=keep, hidden=hidden_np, gates=gates_np,
        topk_ids=top_i_np, topk_probs=top_p_np,
        topk_tokens=tuple(tuple(table[i] for i in row) for row in top_i_np.tolist()),
        next_ids=np.concatenate([ids[1:], [-1]]).astype(np.int64),
        next_prob=np.concatenate([np.exp(next_lp_np), nan]),
        next_loss=next_loss,
        mean_loss=float(next_loss[:-1].mean()) if len(ids) > 1 else float("nan"),
        unknown=_unknown(enc)[0], unknown_message=_unknown(enc)[1], offset=offset,
    )


# ------------------------------------------------------------------- gradient profile
@dataclass(frozen=True, eq=False)
class GradientProfile(ProbeResult):
    """Norms of dL/dh_t (every layer) and dL/dx_t (embedded input) for one loss.

    The last position has no target, so nothing it holds can change the loss: its norms are
    0 and `affects_loss` is False there (and it is never flagged as underflow).
    """

    tokens: tuple[str, ...]
    ids: np.ndarray  # int64 [T]
    mode: str  # "last": loss of predicting the last token; "sum": summed over all predictions
    dtype: str  # "float32" or "float64": the precision the backward pass ran in
    loss: float  # the loss that was differentiated (nats)
    dh: np.ndarray  # float64 [L, T]: ||dL/dh_t|| per layer
    dx: np.ndarray  # float64 [T]: ||dL/dx_t||
    underflow_h: np.ndarray  # bool [L, T]: exactly zero although h_t can affect the loss
    underflow_x: np.ndarray  # bool [T]
    affects_loss: np.ndarray  # bool [T]: positions that can reach the loss (all but the last)
    ratio_first_last: float  # top layer dh[first] / dh[last position in the loss]; 0.0 if underflowed
    unknown: tuple[str, ...] = ()
    unknown_message: str | None = None
    offset: int = 0

    def describe(self) -> str:
        """One plain sentence about how much gradient reaches the first token."""
        top, n_in = self.dh[-1], int(self.affects_loss.sum())
        where = "for the loss at the last token" if self.mode == "last" else \
            f"for the loss summed over all {n_in} predictions"
        if n_in == 1:
            return f"only one position feeds the loss ({where}): nothing to compare"
        zeros = int(self.underflow_h[-1].sum())
        if top[n_in - 1] == 0.0:
            return f"{where}, the gradient is exactly zero even at the last position ({self.dtype})"
        if self.underflow_h[-1, 0]:
            return (f"{where}, the first token's gradient underflowed to exactly zero in {self.dtype} "
                    f"({zeros} of {n_in} positions in the top layer are exactly zero)")
        r = self.ratio_first_last
        if r > 1:  # a gradient that grows back towards the start is not "a fraction" of anything
            why = "an early token feeds every later loss of the sum" if self.mode == "sum" else "it grows, not fades"
            return f"{where}, the first token's gradient is {r:.2g}× the last one's ({why})"
        return f"{where}, the first token's gradient is {r:.2g} of the last one's"

    def to_json(self) -> dict:
        data = super().to_json()
        data["description"] = self.describe()
        return data


def _safe_norm(g: torch.Tensor) -> torch.Tensor:
    """Row norms in float64 that do not underflow: |g| = m * |g / m| with m = max |g_i|.

    A plain norm squares first, so a float64 gradient of 1e-170 would come out as 0.
    """
    g = g.double()
    m = g.abs().amax(dim=-1, keepdim=True)
    return (g / torch.where(m > 0, m, torch.ones_like(m))).norm(dim=-1) * m[..., 0]


def _bptt(model, y: torch.Tensor, x: torch.Tensor, mode: str):
    """dL/dh_t for every layer and step, and dL/dx_t, by back-propagation through time written
    out by hand: one forward pass, one backward sweep, no autograd graph.

    Autograd gives the same numbers (the tests hold the two together), but at batch 1 its
    per-operation bookkeeping costs more than the arithmetic; here each backward step is a
    few element-wise products with factors precomputed for all steps at once, and one
    matrix-vector product with the recurrent matrix. Returns gh [L, T, H], gx [T, E], loss.
    (numpy views would cut the per-operation cost further on a CPU, but numpy's BLAS threads
    then fight torch's spinning OpenMP threads and the time doubles, so it stays in torch.)
    """
    cfg = model.config
    L, T, H = cfg.layers, x.shape[1], cfg.hidden
    hs, internals, logits = _forward(model, x)
    logp = torch.log_softmax(logits, dim=-1)
    rows = torch.arange(T - 2 if mode == "last" else 0, T - 1, device=x.device)
    targets = y[rows + 1]
    loss = -logp[rows, targets].sum()
    dlogits = torch.zeros_like(logp)
    dlogits[rows] = logp[rows].exp()
    dlogits[rows, targets] -= 1.0
    direct = dlogits @ model.head.weight  # [T, H]: dL/dh_t through the output layer only
    gh = torch.empty(L, T, H, dtype=x.dtype, device=x.device)
    zero = x.new_zeros(1, H)
    for k in reversed(range(L)):
        w_ih, w_hh, b_ih, b_hh = model.layer_weights(k)
        # dL/dh_(t-1) = W_hh^T dpre_t: a plain gemv on the transposed copy is the fastest form.
        w_t = w_hh.detach().T.contiguous()
        h = hs[k]  # [T, H]
        h_prev = torch.cat([zero, h[:-1]])
        dpre = torch.empty(T, w_ih.shape[0], dtype=x.dtype, device=x.device)  # d pre-activations
        nxt = x.new_zeros(H)  # dL/dh_t arriving from step t+1
        # Each loop writes into preallocated rows with out=: at batch 1 the cost is the number of
        # operations, not their size.
        if cfg.cell == "rnn":
            slope = 1.0 - h * h if cfg.nonlinearity == "tanh" else (h > 0).to(h.dtype)
            for t in range(T - 1, -1, -1):
                d = torch.add(direct[t], nxt, out=gh[k, t])
                torch.mul(d, slope[t], out=dpre[t])
                torch.mv(w_t, dpre[t], out=nxt)
        elif cfg.cell == "lstm":
            i, f, g, o, c = (internals[k][n] for n in ("i", "f", "g", "o", "c"))
            c_prev = torch.cat([zero, c[:-1]])
            tc = torch.tanh(c)
            # d pre_gates = [dc, dc, dc, dh] * P_t, and dc_t += dh_t * Q_t.
            P = torch.cat([g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g), tc * o * (1 - o)], dim=1)
            Q = o * (1 - tc * tc)
            buf = x.new_empty(4, H)
            flat = buf.view(-1)
            dc = x.new_zeros(H)
            for t in range(T - 1, -1, -1):
                d = torch.add(direct[t], nxt, out=gh[k, t])
                dc.addcmul_(d, Q[t])
                buf[:3] = dc
                buf[3] = d
                torch.mul(flat, P[t], out=dpre[t])
                torch.mv(w_t, dpre[t], out=nxt)
                dc.mul_(f[t])
        else:
            r, z, n = (internals[k][name] for name in ("r", "z", "n"))
            h_n = h_prev @ w_hh[2 * H:].T + b_hh[2 * H:]  # W_hn h_(t-1) + b_hn, all steps at once
            zn = (1 - z) * (1 - n * n)  # d pre_n / dh
            zz = (h_prev - n) * z * (1 - z)  # d pre_z / dh
            zr = zn * h_n * r * (1 - r)  # d pre_r / dh
            P_in = torch.cat([zr, zz, zn], dim=1)  # into W_ih x
            P_hh = torch.cat([zr, zz, zn * r], dim=1)  # into W_hh h (the reset gate scales W_hn h)
            buf = x.new_empty(3, H)
            flat = buf.view(-1)
            tmp = x.new_empty(3 * H)
            for t in range(T - 1, -1, -1):
                d = torch.add(direct[t], nxt, out=gh[k, t])
                buf[:] = d
                torch.mul(flat, P_in[t], out=dpre[t])
                torch.mul(flat, P_hh[t], out=tmp)
                torch.addmv(d * z[t], w_t, tmp, out=nxt)
        direct = dpre @ w_ih  # dL/d(input of layer k): the layer below's h_t, or x_t
    return gh, direct, loss


def _forward(model, x: torch.Tensor):
    """Hidden states [T, H] per layer, gate values per layer, and logits [T, V] for a batch-1 text.

    A single-layer model runs the fused torch module, which is far cheaper than a Python loop,
    and its gates are rebuilt from the known hidden states in a few batched products (only the
    LSTM's cell state needs a cheap element-wise scan). Stacked models step through `stepwise`.
    """
    cfg = model.config
    if cfg.layers > 1 or model.training:
        out = model.stepwise(state=zero_state(model), inputs=x)
        hs = [torch.stack(layer, dim=1)[0] for layer in out.hidden]
        internals = [{n: v[k, 0] for n, v in out.internals.items()} for k in range(cfg.layers)]
        return hs, internals, out.logits[0]
    seq, _ = model.rnn(x, zero_state(model))
    h = seq[0]
    w_ih, w_hh, b_ih, b_hh = model.layer_weights(0)
    h_prev = torch.cat([h.new_zeros(1, cfg.hidden), h[:-1]])
    gi = x[0] @ w_ih.T + b_ih
    gh = h_prev @ w_hh.T + b_hh
    gates: dict[str, torch.Tensor] = {}
    if cfg.cell == "lstm":
        i, f, g, o = (gi + gh).chunk(4, dim=-1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        ig = i * g
        c = torch.empty_like(ig)
        prev = ig.new_zeros(cfg.hidden)
        for t in range(ig.shape[0]):
            prev = torch.addcmul(ig[t], f[t], prev)
            c[t] = prev
        gates = {"i": i, "f": f, "g": g, "o": o, "c": c}
    elif cfg.cell == "gru":
        i_r, i_z, i_n = gi.chunk(3, dim=-1)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        r = torch.sigmoid(i_r + h_r)
        gates = {"r": r, "z": torch.sigmoid(i_z + h_z), "n": torch.tanh(i_n + r * h_n)}
    return [h], [gates], model.head(h)


_DTYPES = {torch.float32: "float32", torch.float64: "float64"}


def gradient_profile(lm, text: str, mode: str = "last", on_unknown: str = "skip",
                     dtype: torch.dtype = torch.float32, window: int | None = None) -> GradientProfile:
    """dL/dh_t for every layer and step and dL/dx_t, from one backward pass.

    mode "last": L = cross entropy of predicting the last token from the position before it.
    mode "sum": L = the cross entropies of every position that has a next token, summed.
    dtype float64 runs a float64 copy of the model (slower, underflows far later).
    """
    if mode not in MODES:
        raise ConfigError(f"unknown gradient mode {mode!r}: choose 'last' or 'sum'")
    if dtype not in _DTYPES:
        raise ConfigError(f"gradient dtype must be torch.float32 or torch.float64, got {dtype}")
    ids, tokens, enc, offset = encode_text(lm, text, on_unknown, window, MAX_TRACE_TOKENS, "gradient profile")
    if len(ids) < 2:
        raise VocabError("nothing to probe: a gradient profile needs at least 2 tokens "
                         "(the last one is what the model predicts)")
    cfg = lm.config
    # The graph keeps a few copies of every gate per step, and the logits.
    _check_values(lm, len(ids), 3 * cfg.vocab_size + 24 * cfg.layers * cfg.hidden, "gradient profile")
    model = lm.model
    if model.head.weight.dtype != dtype:
        # Apple's MPS has no float64: that copy runs on the CPU.
        device = "cpu" if (dtype == torch.float64 and model.device.type == "mps") else model.device
        model = copy.deepcopy(model).to(device=device, dtype=dtype)
    T, L = len(ids), cfg.layers
    y = torch.as_tensor(ids, device=model.device)
    with torch.no_grad():
        x = model.embed(y).unsqueeze(0)
        gh, gx, loss = _bptt(model, y, x, mode)
        # Norms in float64 of the grads as computed: a float32 zero stays an exact zero.
        dh = _safe_norm(gh).reshape(L, T).cpu().numpy()
        dx = _safe_norm(gx).cpu().numpy()
        loss_value = float(loss)
    affects = np.arange(T) < T - 1
    under_h = (dh == 0.0) & affects[None, :]
    under_x = (dx == 0.0) & affects
    first, last = float(dh[-1, 0]), float(dh[-1, T - 2])
    ratio = first / last if (first > 0.0 and last > 0.0) else 0.0
    unknown, message = _unknown(enc)
    return GradientProfile(
        tokens=tokens, ids=ids.copy(), mode=mode, dtype=_DTYPES[dtype], loss=loss_value, dh=dh, dx=dx,
        underflow_h=under_h, underflow_x=under_x, affects_loss=affects, ratio_first_last=ratio,
        unknown=unknown, unknown_message=message, offset=offset,
    )


# ----------------------------------------------------------------------- Jacobian map
@dataclass(frozen=True, eq=False)
class JacobianMap(ProbeResult):
    """||d state_t / d state_k||_F for k <= t, with each step's input held fixed.

    state_t is the layer's state after reading token t: h_t, or (h_t, c_t) stacked for an
    LSTM (dimension D = H or 2H). J_t = d state_t / d state_(t-1), and
    norms[t, k] = ||J_t J_(t-1) ... J_(k+1)||_F. The diagonal is the empty product, the
    identity, so norms[t, t] = sqrt(D); NaN above the diagonal (k > t). The products are
    accumulated in float64 with a running log-scale per k, so `log10_norms` is exact even
    where `norms` overflows to inf or underflows to 0 in float64.
    """

    tokens: tuple[str, ...]
    ids: np.ndarray  # int64 [T]
    layer: int
    state: str  # "h" or "h,c"
    dim: int  # D
    norms: np.ndarray  # float64 [T, T]
    log10_norms: np.ndarray  # float64 [T, T]; -inf where a product is exactly zero
    step_norms: np.ndarray  # float64 [T]: ||J_t||_F (t = 0 is d state_0 / d initial state)
    spectral_radius: float  # of the layer's main recurrent block (see Spectrum.main); NaN if too large
    unknown: tuple[str, ...] = ()
    unknown_message: str | None = None
    offset: int = 0


def jacobian_fit(dim: int, lstm: bool = False) -> int:
    """How many tokens a Jacobian map of state size `dim` may take within the work limits."""
    # sum over t of t GEMMs of D x D by D x D; an LSTM's diagonal c-columns halve each one.
    per_pair = float(dim) ** 3 / (2.0 if lstm else 1.0)
    by_work = math.isqrt(int(2 * MAX_JACOBIAN_WORK / per_pair)) if per_pair <= 2 * MAX_JACOBIAN_WORK else 0
    by_memory = MAX_JACOBIAN_BYTES // (3 * 8 * dim * dim)
    return int(min(MAX_JACOBIAN_TOKENS, by_work, by_memory))


def _step_jacobians(model, layer: int, xs: torch.Tensor, prev: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """J_t = d state_t / d state_(t-1) for all t: [T, D, D] float64.

    xs [T, In] are the layer's inputs, prev [T, D] the states before each step, h [T, H] after.
    """
    cfg = model.config
    if cfg.cell == "rnn":
        # Analytic: h_t = phi(pre_t) so J_t = diag(phi'(pre_t)) W_hh.
        w_hh = model.layer_weights(layer)[1].detach().double()
        h64 = h.double()
        deriv = 1.0 - h64 * h64 if cfg.nonlinearity == "tanh" else (h64 > 0).double()
        return deriv[:, :, None] * w_hh[None, :, :]
    H = cfg.hidden

    def step(s, x):
        if cfg.cell == "lstm":
            hn, cn = model.cell_step(layer, x, (s[:H], s[H:]))
            return torch.cat([hn, cn])
        return model.cell_step(layer, x, s)

    batched = torch.func.vmap(torch.func.jacrev(step))
    D = prev.shape[1]
    # vmap over all steps at once, in chunks so the intermediates stay a few hundred MB.
    chunk = max(1, (1 << 24) // (D * max(D, 4 * H)))
    parts = [batched(prev[s:s + chunk], xs[s:s + chunk]).double() for s in range(0, len(xs), chunk)]
    return torch.cat(parts)


def _product_log_norms(J: torch.Tensor, lstm: bool = False) -> torch.Tensor:
    """ln ||J_t ... J_(k+1)||_F for all k < t, ln sqrt(D) on the diagonal, NaN above. [T, T] float64.

    For each t the products for every k are updated at once: P_(t,k) = J_t P_(t-1,k).
    lstm=True uses the LSTM structure: the c_(t-1) columns of J_t are two diagonal blocks
    (dh_t/dc_(t-1) = diag(o tanh'(c_t) f), dc_t/dc_(t-1) = diag(f)), halving the GEMM.
    """
    T, D = J.shape[0], J.shape[1]
    J = J.double()
    dev = J.device
    log_norms = torch.full((T, T), float("nan"), dtype=torch.float64, device=dev)
    log_norms.diagonal().fill_(0.5 * math.log(D))
    # buf[:, k, :] is the running product J_t ... J_(k+1) divided by exp(log_scale[k]). The
    # [D, T, D] layout makes "J_t times every P_k" a single GEMM on a [D, t*D] view, written
    # straight into the other buffer.
    bufs = (torch.empty((D, T, D), dtype=torch.float64, device=dev),
            torch.empty((D, T, D), dtype=torch.float64, device=dev))
    log_scale = torch.zeros(T, dtype=torch.float64, device=dev)
    eye = torch.eye(D, dtype=torch.float64, device=dev)
    H = D // 2
    if lstm:
        dense = J[:, :, :H].contiguous()  # [T, 2H, H]: the h_(t-1) columns
        diag = torch.cat([J[:, :H, H:].diagonal(dim1=1, dim2=2), J[:, H:, H:].diagonal(dim1=1, dim2=2)], 1)
    for t in range(1, T):
        src, dst = bufs[t % 2], bufs[(t + 1) % 2]
        src[:, t - 1, :] = eye  # the new k = t-1 starts as the identity
        out = dst[:, :t, :]
        src2d, out2d = src[:, :t, :].reshape(D, t * D), out.reshape(D, t * D)
        if lstm:
            torch.mm(dense[t], src2d[:H], out=out2d)
            out2d[:H].addcmul_(diag[t, :H, None], src2d[H:])
            out2d[H:].addcmul_(diag[t, H:, None], src2d[H:])
        else:
            torch.mm(J[t], src2d, out=out2d)
        n = out.square().sum(-1).sum(0).sqrt()  # [t]
        log_norms[t, :t] = n.log() + log_scale[:t]
        # Renormalise the products that drift far from 1: the log-scale carries their size, so
        # a long decay or growth never under/overflows the product itself (squares stay in
        # range too). Zero stays zero (-inf), NaN stays NaN.
        drift = torch.isfinite(n) & ((n > 1e60) | ((n < 1e-60) & (n > 0)))
        if bool(drift.any()):
            idx = drift.nonzero()[:, 0]
            out[:, idx, :] = out[:, idx, :] / n[idx][None, :, None]
            log_scale[idx] += n[idx].log()
    return log_norms


def jacobian_map(lm, text: str, layer: int = -1, on_unknown: str = "skip",
                 window: int | str | None = None) -> JacobianMap:
    """Norms of the products of per-step Jacobians of one layer (see JacobianMap)."""
    cfg = lm.config
    li = layer_index(lm, layer)
    D = 2 * cfg.hidden if cfg.cell == "lstm" else cfg.hidden
    fit = jacobian_fit(D, lstm=cfg.cell == "lstm")
    if window == "fit":  # as many of the last tokens as the work budget allows
        window = max(1, fit)
    if fit < 1:
        raise ProbeLimitError(
            f"jacobian map: a state of size {D} is too large (the work grows as T^2 * D^3); "
            "use a model with a smaller hidden size")
    ids, tokens, enc, offset = encode_text(lm, text, on_unknown, window, fit,
                                       f"jacobian map (state size {D})")
    model = lm.model
    H = cfg.hidden
    with torch.no_grad():
        y = torch.as_tensor(ids, device=model.device).unsqueeze(0)
        out = model.stepwise(y, zero_state(model))
        h = torch.stack(out.hidden[li], dim=1)[0]  # [T, H]
        xs = out.inputs[0] if li == 0 else torch.stack(out.hidden[li - 1], dim=1)[0]
        state = torch.cat([h, out.internals["c"][li, 0]], dim=1) if cfg.cell == "lstm" else h
        prev = torch.cat([torch.zeros_like(state[:1]), state[:-1]])
        J = _step_jacobians(model, li, xs, prev, h)  # [T, D, D] float64
        step_norms = J.flatten(1).norm(dim=1)

        log_norms_np = _product_log_norms(J, lstm=cfg.cell == "lstm").cpu().numpy()
    with np.errstate(over="ignore"):
        norms = np.exp(log_norms_np)
    log10 = log_norms_np / math.log(10.0)
    radius = float("nan")
    if H <= MAX_SPECTRUM_HIDDEN:
        radius = _block_stats(model.recurrent_blocks(li)[MAIN_BLOCK[cfg.cell]])[1]
    unknown, message = _unknown(enc)
    return JacobianMap(
        tokens=tokens, ids=ids.copy(), layer=li, state="h,c" if cfg.cell == "lstm" else "h", dim=D,
        norms=norms, log10_norms=log10, step_norms=step_norms.cpu().numpy(), spectral_radius=radius,
        unknown=unknown, unknown_message=message, offset=offset,
    )


# ---------------------------------------------------------------------------- spectrum
@dataclass(frozen=True, eq=False)
class Spectrum(ProbeResult):
    """Eigenvalues of each H x H recurrent block of one layer (largest magnitude first)."""

    layer: int
    eigenvalues: dict[str, np.ndarray]  # name -> complex128 [H]
    radius: dict[str, float]  # name -> max |eigenvalue|
    singular_max: dict[str, float]  # name -> largest singular value (the block's gain bound)
    main: str  # the block that drives the state: rnn "W_hh", lstm "g", gru "n"
    main_reason: str = field(default="")


# Eigen-decompositions are the slow part (O(H^3)); the TUI asks again for the same weights
# on every redraw, so cache by content (a hash of the bytes: any weight update misses).
_STATS_CACHE: OrderedDict[bytes, tuple[np.ndarray, float, float]] = OrderedDict()
_STATS_CACHE_SIZE = 16
_STATS_LOCK = threading.Lock()  # probes run in TUI worker threads


def _block_stats(block: torch.Tensor) -> tuple[np.ndarray, float, float]:
    """(eigenvalues sorted by magnitude, spectral radius, largest singular value) in float64."""
    w = block.detach().double().cpu()
    key = hashlib.blake2b(w.numpy().tobytes(), digest_size=16).digest() + str(tuple(w.shape)).encode()
    with _STATS_LOCK:
        hit = _STATS_CACHE.get(key)
        if hit is not None:
            _STATS_CACHE.move_to_end(key)
            return hit
    ev = torch.linalg.eigvals(w).numpy()
    ev = ev[np.argsort(-np.abs(ev), kind="stable")]
    stats = (ev, float(np.abs(ev).max()) if ev.size else 0.0, float(torch.linalg.svdvals(w)[0]))
    with _STATS_LOCK:
        _STATS_CACHE[key] = stats
        while len(_STATS_CACHE) > _STATS_CACHE_SIZE:
            _STATS_CACHE.popitem(last=False)
    return stats


def spectrum(lm, layer: int = -1) -> Spectrum:
    """Eigenvalues, spectral radius and largest singular value of each recurrent block."""
    li = layer_index(lm, layer)
    H = lm.config.hidden
    if H > MAX_SPECTRUM_HIDDEN:
        raise ProbeLimitError(f"spectrum: hidden size {H} is above {MAX_SPECTRUM_HIDDEN}; "
                              "eigenvalues of matrices that large take too long here")
    eig, radius, smax = {}, {}, {}
    for name, block in lm.model.recurrent_blocks(li).items():
        eig[name], radius[name], smax[name] = _block_stats(block)
        eig[name] = eig[name].copy()  # the cached array stays private
    cell = lm.config.cell
    return Spectrum(layer=li, eigenvalues=eig, radius=radius, singular_max=smax,
                    main=MAIN_BLOCK[cell], main_reason=MAIN_REASON[cell])
