"""What the recurrence does to a state by itself: `jacobian_map` (the norms of the products of
per-step Jacobians, d state_t / d state_k for every pair k <= t of one layer) and `spectrum`
(the eigenvalues and spectral radius of each recurrent weight block of one layer)."""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ProbeLimitError
from .base import ProbeResult, encode_text, layer_index, unknown_of, zero_state


# Longest text for the T x T Jacobian map.
MAX_JACOBIAN_TOKENS = 512
# Multiply-adds the T*T/2 products of D x D Jacobians may take (~1-2 s of float64 on a laptop).
MAX_JACOBIAN_WORK = 4e10
# Memory the per-step Jacobians and the product stack may take (float64).
MAX_JACOBIAN_BYTES = 1 << 30
# Steps whose one-step Jacobian gets its spectral radius computed (an eigen-decomposition each).
STEP_RADIUS_TOKENS = 256
KEEP_NAMES = {"rnn": "tanh slope 1-h^2", "lstm": "forget gate f", "gru": "update gate z"}
# Largest hidden size whose eigenvalues `spectrum` computes (O(H^3) per block).
MAX_SPECTRUM_HIDDEN = 1024

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
    # One step back, J_t = diag(phi'(a_t)) W_hh for the vanilla RNN; for the gated cells the
    # state's own "keep" factor sits on J_t's diagonal (LSTM dc_t/dc_(t-1) = diag(f_t), GRU
    # dh_t/dh_(t-1) = diag(z_t) + the candidate's path). Both per step, NaN past STEP_RADIUS_TOKENS.
    step_radius: np.ndarray = field(default_factory=lambda: np.zeros(0))  # float64 [T]: rho(J_t)
    step_keep: np.ndarray = field(default_factory=lambda: np.zeros(0))  # float64 [T]: mean keep factor
    keep_name: str = ""  # "tanh slope 1-h^2", "forget gate f", "update gate z"
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
        n_rad = min(len(J), STEP_RADIUS_TOKENS)
        step_radius = np.full(len(J), np.nan)
        step_radius[:n_rad] = torch.linalg.eigvals(J[:n_rad].cpu()).abs().amax(-1).numpy()
        if cfg.cell == "rnn":
            keep = (1.0 - h.double() ** 2) if cfg.nonlinearity == "tanh" else (h > 0).double()
        else:
            keep = out.internals["f" if cfg.cell == "lstm" else "z"][li, 0].double()
        step_keep = keep.mean(-1).cpu().numpy()

        log_norms_np = _product_log_norms(J, lstm=cfg.cell == "lstm").cpu().numpy()
    with np.errstate(over="ignore"):
        norms = np.exp(log_norms_np)
    log10 = log_norms_np / math.log(10.0)
    radius = float("nan")
    if H <= MAX_SPECTRUM_HIDDEN:
        radius = _block_stats(model.recurrent_blocks(li)[MAIN_BLOCK[cfg.cell]])[1]
    unknown, message = unknown_of(enc)
    return JacobianMap(
        tokens=tokens, ids=ids.copy(), layer=li, state="h,c" if cfg.cell == "lstm" else "h", dim=D,
        norms=norms, log10_norms=log10, step_norms=step_norms.cpu().numpy(), spectral_radius=radius,
        step_radius=step_radius, step_keep=step_keep,
        keep_name=KEEP_NAMES[cfg.cell] if cfg.nonlinearity == "tanh" or cfg.cell != "rnn" else "relu slope",
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
