"""The step-by-step probes of one text: `trace` (hidden states, gates, next-token predictions
and losses at every step) and `gradient_profile` (|dL/dh_t|, |dL/dx_t| and for an LSTM |dL/dc_t|
for every step, from one backward pass written out by hand)."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError, VocabError
from ..model import INTERNALS
from .agreement import token_slot
from .base import MAX_TRACE_TOKENS, ProbeResult, check_values, encode_text, layer_index, unknown_of, zero_state


MODES = ("verb", "last", "sum")
MODE_WORDS = {"verb": "the verb's number (was/were)", "last": "the last token", "sum": "every token, summed"}


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
    check_values(lm, len(ids), 3 * cfg.vocab_size + cfg.layers * cfg.hidden * (1 + len(names)), "trace")
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
    table = lm.vocab.shown
    return Trace(
        tokens=tokens, ids=ids.copy(), layers=keep, hidden=hidden_np, gates=gates_np,
        topk_ids=top_i_np, topk_probs=top_p_np,
        topk_tokens=tuple(tuple(table[i] for i in row) for row in top_i_np.tolist()),
        next_ids=np.concatenate([ids[1:], [-1]]).astype(np.int64),
        next_prob=np.concatenate([np.exp(next_lp_np), nan]),
        next_loss=next_loss,
        mean_loss=float(next_loss[:-1].mean()) if len(ids) > 1 else float("nan"),
        unknown=unknown_of(enc)[0], unknown_message=unknown_of(enc)[1], offset=offset,
    )


# ------------------------------------------------------------------- gradient profile
@dataclass(frozen=True, eq=False)
class GradientProfile(ProbeResult):
    """Norms of dL/dh_t (every layer), dL/dx_t (embedded input) and, for an LSTM, dL/dc_t (the
    cell state: the "gradient highway") for one loss.

    Positions after the last prediction in the loss (`position`) cannot change it: their norms
    are 0 and `affects_loss` is False there (and they are never flagged as underflow). In mode
    "verb" the loss is the prediction that decides the verb's number (char level: the letter
    after the "w" of was/were; word level: the verb itself) and `subject` is the position
    just after the subject noun, where its number is known: `ratio_subject` is how much of the
    decision's gradient reaches it.
    """

    tokens: tuple[str, ...]
    ids: np.ndarray  # int64 [T]
    mode: str  # "verb", "last" (the last token's prediction) or "sum" (every prediction)
    dtype: str  # "float32" or "float64": the precision the backward pass ran in
    loss: float  # the loss that was differentiated (nats)
    dh: np.ndarray  # float64 [L, T]: ||dL/dh_t|| per layer
    dx: np.ndarray  # float64 [T]: ||dL/dx_t||
    underflow_h: np.ndarray  # bool [L, T]: exactly zero although h_t can affect the loss
    underflow_x: np.ndarray  # bool [T]
    affects_loss: np.ndarray  # bool [T]: positions that can reach the loss (up to `position`)
    ratio_first_last: float  # top layer dh[first] / dh[position]; 0.0 if underflowed
    position: int = -1  # the last position whose prediction is in the loss
    dc: np.ndarray | None = None  # float64 [L, T]: ||dL/dc_t|| per layer (LSTM only)
    underflow_c: np.ndarray | None = None  # bool [L, T] (LSTM only)
    subject: int | None = None  # mode "verb": the position just after the subject noun
    subject_word: str = ""
    ratio_subject: float = float("nan")  # top layer dh[subject] / dh[position]
    ratio_subject_c: float = float("nan")  # LSTM: dc[subject] / dc[position]
    unknown: tuple[str, ...] = ()
    unknown_message: str | None = None
    offset: int = 0

    def describe(self) -> str:
        """One plain sentence about how much gradient reaches the first token."""
        top, n_in = self.dh[-1], int(self.affects_loss.sum())
        where = {"last": "for the loss at the last token",
                 "verb": f"for the loss at the verb's number (after {self.subject_word!r})"}.get(
            self.mode, f"for the loss summed over all {n_in} predictions")
        if n_in == 1:
            return f"only one position feeds the loss ({where}): nothing to compare"
        zeros = int(self.underflow_h[-1].sum())
        if top[n_in - 1] == 0.0:
            return f"{where}, the gradient is exactly zero even at the last position ({self.dtype})"
        if self.underflow_h[-1, 0]:
            return (f"{where}, the first token's gradient underflowed to exactly zero in {self.dtype} "
                    f"({zeros} of {n_in} positions in the top layer are exactly zero)")
        if self.mode == "verb" and self.subject is not None:
            return f"{where}, {self.subject_words()}"
        r = self.ratio_first_last
        if r > 1:  # a gradient that grows back towards the start is not "a fraction" of anything
            why = "an early token feeds every later loss of the sum" if self.mode == "sum" else "it grows, not fades"
            return f"{where}, the first token's gradient is {r:.2g}× the last one's ({why})"
        return f"{where}, the first token's gradient is {r:.2g} of the last one's"

    def subject_words(self) -> str:
        """How much of the decision's gradient reaches the subject, in words (mode "verb")."""
        steps = self.position - (self.subject or 0)
        out = f"the gradient at the subject, {steps} steps back, is {self.ratio_subject:.2g} of the decision's"
        if self.dc is not None and np.isfinite(self.ratio_subject_c):
            out += f" (through the cell state c: {self.ratio_subject_c:.2g})"
        return out

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


def _bptt(model, y: torch.Tensor, x: torch.Tensor, rows: torch.Tensor):
    """dL/dh_t for every layer and step, and dL/dx_t, by back-propagation through time written
    out by hand: one forward pass, one backward sweep, no autograd graph.

    Autograd gives the same numbers (the tests hold the two together), but at batch 1 its
    per-operation bookkeeping costs more than the arithmetic; here each backward step is a
    few element-wise products with factors precomputed for all steps at once, and one
    matrix-vector product with the recurrent matrix. `rows` are the positions whose next-token
    predictions make the loss. Returns gh [L, T, H], gx [T, E], gc [L, T, H] (dL/dc_t of an
    LSTM, else None), loss.
    (numpy views would cut the per-operation cost further on a CPU, but numpy's BLAS threads
    then fight torch's spinning OpenMP threads and the time doubles, so it stays in torch.)
    """
    cfg = model.config
    L, T, H = cfg.layers, x.shape[1], cfg.hidden
    hs, internals, logits = _forward(model, x)
    logp = torch.log_softmax(logits, dim=-1)
    targets = y[rows + 1]
    loss = -logp[rows, targets].sum()
    dlogits = torch.zeros_like(logp)
    dlogits[rows] = logp[rows].exp()
    dlogits[rows, targets] -= 1.0
    direct = dlogits @ model.head.weight  # [T, H]: dL/dh_t through the output layer only
    gh = torch.empty(L, T, H, dtype=x.dtype, device=x.device)
    gc = torch.empty(L, T, H, dtype=x.dtype, device=x.device) if cfg.cell == "lstm" else None
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
                dc.addcmul_(d, Q[t])  # now dL/dc_t: through h_t and through c_(t+1)
                gc[k, t] = dc
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
    return gh, direct, gc, loss


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
    """dL/dh_t for every layer and step, dL/dx_t, and dL/dc_t for an LSTM, from one backward pass.

    mode "verb": L = cross entropy of the prediction that decides the verb's number (char level:
    the letter after the "w" of was/were; word level: the verb), see `probes.agreement`.
    mode "last": L = cross entropy of predicting the last token from the position before it.
    mode "sum": L = the cross entropies of every position that has a next token, summed.
    dtype float64 runs a float64 copy of the model (slower, underflows far later).
    """
    if mode not in MODES:
        raise ConfigError(f"unknown gradient mode {mode!r}: choose {', '.join(repr(m) for m in MODES)}")
    if dtype not in _DTYPES:
        raise ConfigError(f"gradient dtype must be torch.float32 or torch.float64, got {dtype}")
    ids, tokens, enc, offset = encode_text(lm, text, on_unknown, window, MAX_TRACE_TOKENS, "gradient profile")
    if len(ids) < 2:
        raise VocabError("nothing to probe: a gradient profile needs at least 2 tokens "
                         "(the last one is what the model predicts)")
    T, L = len(ids), lm.config.layers
    slot = None
    if mode == "verb":
        slot = token_slot(tokens, lm.vocab.level)
        if slot is None or not slot.has_target:
            raise VocabError("the verb loss needs a subject noun followed by 'was' or 'were' in the text "
                             "(e.g. 'the cat that we saw yesterday was happy'); m picks another loss")
        position = slot.decision
    else:
        position = T - 2
    cfg = lm.config
    # The graph keeps a few copies of every gate per step, and the logits.
    check_values(lm, len(ids), 3 * cfg.vocab_size + 24 * cfg.layers * cfg.hidden, "gradient profile")
    model = lm.model
    if model.head.weight.dtype != dtype:
        # Apple's MPS has no float64: that copy runs on the CPU.
        device = "cpu" if (dtype == torch.float64 and model.device.type == "mps") else model.device
        model = copy.deepcopy(model).to(device=device, dtype=dtype)
    y = torch.as_tensor(ids, device=model.device)
    first_row = 0 if mode == "sum" else position
    with torch.no_grad():
        x = model.embed(y).unsqueeze(0)
        rows = torch.arange(first_row, position + 1, device=model.device)
        gh, gx, gc, loss = _bptt(model, y, x, rows)
        # Norms in float64 of the grads as computed: a float32 zero stays an exact zero.
        dh = _safe_norm(gh).reshape(L, T).cpu().numpy()
        dx = _safe_norm(gx).cpu().numpy()
        dc = _safe_norm(gc).reshape(L, T).cpu().numpy() if gc is not None else None
        loss_value = float(loss)
    affects = np.arange(T) <= position
    dh[:, ~affects] = 0.0  # nothing after the loss's last prediction reaches it
    dx[~affects] = 0.0
    under_h = (dh == 0.0) & affects[None, :]
    under_x = (dx == 0.0) & affects
    under_c = None
    if dc is not None:
        dc[:, ~affects] = 0.0
        under_c = (dc == 0.0) & affects[None, :]
    ratio = _ratio(dh[-1, 0], dh[-1, position])
    extra: dict = {}
    if slot is not None:
        extra = dict(subject=slot.subject, subject_word=slot.slot.subject,
                     ratio_subject=_ratio(dh[-1, slot.subject], dh[-1, position]))
        if dc is not None:
            extra["ratio_subject_c"] = _ratio(dc[-1, slot.subject], dc[-1, position])
    unknown, message = unknown_of(enc)
    return GradientProfile(
        tokens=tokens, ids=ids.copy(), mode=mode, dtype=_DTYPES[dtype], loss=loss_value, dh=dh, dx=dx,
        underflow_h=under_h, underflow_x=under_x, affects_loss=affects, ratio_first_last=ratio,
        position=position, dc=dc, underflow_c=under_c, unknown=unknown, unknown_message=message,
        offset=offset, **extra,
    )


def _ratio(first: float, last: float) -> float:
    first, last = float(first), float(last)
    return first / last if (first > 0.0 and last > 0.0) else 0.0
