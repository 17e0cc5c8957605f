"""Dynamics of the recurrence itself: the state with no input, the spectral radius while
training, and how far back a token still moves the prediction (the memory horizon).

Pure numpy + torch, no Textual. Used by `experiments.py`; front ends may call it directly.

- `random_recurrent(hidden, seed)`: a Gaussian H x H matrix scaled to spectral radius 1.
- `recurrence_alone(w, radius, steps, ...)`: iterate h <- tanh(rho W h) (or the linear map) from a
  start state and return the state norm per step.
- `RadiusRecorder`: an `on_metrics` callback for a Trainer that records the spectral radius of
  every recurrent block every N steps.
- `memory_horizon(lm, contexts, ...)`: total variation / KL between the next-token
  distributions with and without the token k steps back replaced, for every k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .errors import ConfigError

NONLINEAR_MAPS = ("tanh", "linear")
PERTURBATIONS = ("random", "swap")


# ------------------------------------------------------------------ recurrence alone
def random_recurrent(hidden: int, seed: int = 0) -> np.ndarray:
    """A Gaussian H x H matrix (float64) rescaled so its largest |eigenvalue| is exactly 1."""
    if isinstance(hidden, bool) or not isinstance(hidden, (int, np.integer)) or hidden < 1:
        raise ConfigError(f"hidden must be a positive whole number, got {hidden!r}")
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((hidden, hidden)) / math.sqrt(hidden)
    return w / spectral_radius(w)


def spectral_radius(w) -> float:
    """max |eigenvalue| of a square matrix (numpy or torch), in float64."""
    if isinstance(w, torch.Tensor):
        w = w.detach().double().cpu().numpy()
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ConfigError(f"the spectral radius needs a square matrix, got shape {w.shape}")
    return float(np.abs(np.linalg.eigvals(w)).max()) if w.size else 0.0


def start_state(hidden: int, norm: float = 1.0, seed: int = 0) -> np.ndarray:
    """A random direction with the given Euclidean norm: the default start of `recurrence_alone`."""
    rng = np.random.default_rng(seed + 1)  # not the stream random_recurrent draws from
    v = rng.standard_normal(hidden)
    return v * (norm / np.linalg.norm(v))


def recurrence_alone(w, radius: float | None = None, steps: int = 50, nonlinearity: str = "tanh",
                     start: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """||h_t|| for t = 0..steps with no input: h <- tanh(W h) or h <- W h.

    `radius` rescales W to that spectral radius first (None keeps W as it is). float64, so the
    linear map at rho = 1.5 stays finite for hundreds of steps (1.5^500 ~ 1e88).
    """
    if nonlinearity not in NONLINEAR_MAPS:
        raise ConfigError(f"unknown map {nonlinearity!r}: choose tanh or linear")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 0 <= steps <= 100_000:
        raise ConfigError(f"steps must be a whole number from 0 to 100000, got {steps!r}")
    if isinstance(w, torch.Tensor):
        w = w.detach().double().cpu().numpy()
    w = np.asarray(w, dtype=np.float64)
    if radius is not None:
        if not (isinstance(radius, (int, float, np.floating)) and 0 < radius < 100):
            raise ConfigError(f"spectral radius must be in (0, 100), got {radius!r}")
        w = w * (radius / max(spectral_radius(w), 1e-300))
    h = start_state(w.shape[0], seed=seed) if start is None else np.asarray(start, dtype=np.float64)
    if h.shape != (w.shape[0],):
        raise ConfigError(f"start state has shape {h.shape}, expected ({w.shape[0]},)")
    norms = np.empty(steps + 1)
    norms[0] = np.linalg.norm(h)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, steps + 1):
            h = w @ h
            if nonlinearity == "tanh":
                h = np.tanh(h)
            norms[t] = np.linalg.norm(h)
    return norms


def growth_rate(norms: np.ndarray, skip: int = 5) -> float:
    """Mean change of ln ||h_t|| per step after `skip` transient steps (the finite-time
    Lyapunov exponent of the free recurrence): < 0 decays, > 0 grows, ~0 the edge."""
    n = np.asarray(norms, dtype=np.float64)[skip:]
    ok = np.isfinite(n) & (n > 0)
    if ok.sum() < 2:
        return float("nan")
    t = np.arange(len(n))[ok]
    return float(np.polyfit(t, np.log(n[ok]), 1)[0])


# ------------------------------------------------------------------ radius while training
@dataclass(frozen=True, eq=False)
class RadiusHistory:
    steps: np.ndarray  # int64 [n]: the step after which the radius was taken (0 = before training)
    radius: dict[str, np.ndarray]  # block name -> float64 [n]
    main: str  # the block that drives the state (rnn W_hh, lstm g, gru n)


class RadiusRecorder:
    """Records the spectral radius of every recurrent block of one layer every `every` steps.

    Pass it as (or call it from) a Trainer's `on_metrics`: it runs in the training thread
    between two steps, so it reads the live weights without copying the model.

        rec = RadiusRecorder(trainer.model, every=25)
        trainer.on_metrics = rec
        trainer.run()
        rec.history()
    """

    def __init__(self, model, every: int = 25, layer: int = -1):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ConfigError(f"every must be a positive whole number, got {every!r}")
        from .probes import MAIN_BLOCK

        self.model = model
        self.every = every
        self.layer = layer
        self.main = MAIN_BLOCK[model.config.cell]
        self.steps: list[int] = []
        self.radius: dict[str, list[float]] = {}
        self.record(0)

    def record(self, step: int) -> None:
        for name, block in self.model.recurrent_blocks(self.layer).items():
            self.radius.setdefault(name, []).append(spectral_radius(block))
        self.steps.append(int(step))

    def __call__(self, metrics) -> None:
        step = int(metrics.step)
        if step % self.every == 0 and (not self.steps or self.steps[-1] != step):
            self.record(step)

    def history(self) -> RadiusHistory:
        return RadiusHistory(steps=np.asarray(self.steps, dtype=np.int64),
                             radius={k: np.asarray(v, dtype=np.float64) for k, v in self.radius.items()},
                             main=self.main)


# ------------------------------------------------------------------ memory horizon
@dataclass(frozen=True, eq=False)
class MemoryCurve:
    """How much the next-token distribution after the last context token moves when the token
    `lag` steps back is replaced (lag 1 = the last token read)."""

    lags: np.ndarray  # int64 [K]: 1..max_lag
    tv: np.ndarray  # float64 [K]: mean total variation 0.5 * sum |p - q| over the contexts
    tv_sem: np.ndarray  # float64 [K]: its standard error
    kl: np.ndarray  # float64 [K]: mean KL(p || q) in nats
    horizon: int  # largest lag such that tv >= threshold at every lag up to it (0: none)
    threshold: float
    contexts: int  # how many contexts were averaged


def context_windows(ids: np.ndarray, n: int, length: int, seed: int = 0) -> np.ndarray:
    """n windows of `length` tokens from a token stream at seeded random offsets: [n, length]."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) < length + 1:
        raise ConfigError(f"the text has {len(ids)} tokens; windows of {length} need more")
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(ids) - length, size=n)
    return np.stack([ids[s:s + length] for s in starts])


@torch.no_grad()
def _last_log_probs(model, ids: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """log-softmax of the logits after the last token of each row: [N, V] float64."""
    out = []
    for s in range(0, ids.shape[0], chunk):
        logits, _ = model(ids[s:s + chunk])
        out.append(torch.log_softmax(logits[:, -1].double(), dim=-1))
    return torch.cat(out)


def memory_horizon(lm, contexts: np.ndarray, max_lag: int | None = None, threshold: float = 0.02,
                   perturb: str = "random", tokens: np.ndarray | None = None, seed: int = 0,
                   stop=None, progress=None) -> MemoryCurve:
    """For each lag k, replace the token k steps back in every context and measure how far the
    next-token distribution moves (see MemoryCurve).

    contexts: int ids [N, T]; the prediction compared is the one after token T-1.
    perturb "random": a different token drawn uniformly from `tokens` (default: the distinct
    tokens of the contexts); "swap": the token at the same position of another context (the
    data's own distribution; a swap that happens to give the same token counts as no change).
    `progress(k, max_lag)` is called after each lag; when `stop` is set the lags not reached
    stay NaN (and do not count towards the horizon).
    """
    if perturb not in PERTURBATIONS:
        raise ConfigError(f"unknown perturbation {perturb!r}: choose random or swap")
    ctx = np.asarray(contexts, dtype=np.int64)
    if ctx.ndim != 2 or ctx.shape[0] < 1 or ctx.shape[1] < 2:
        raise ConfigError(f"contexts must be [N, T] with N >= 1 and T >= 2, got shape {ctx.shape}")
    n, T = ctx.shape
    max_lag = T if max_lag is None else int(max_lag)
    if not 1 <= max_lag <= T:
        raise ConfigError(f"max_lag must be between 1 and the context length {T}, got {max_lag}")
    if not 0 < threshold < 1:
        raise ConfigError(f"threshold must be in (0, 1), got {threshold}")
    rng = np.random.default_rng(seed)
    pool = np.unique(ctx) if tokens is None else np.unique(np.asarray(tokens, dtype=np.int64))
    if perturb == "random" and len(pool) < 2:
        raise ConfigError("random replacement needs at least 2 distinct tokens")
    model = lm.model if hasattr(lm, "model") else lm
    was_training = model.training
    model.eval()
    dev = model.head.weight.device
    try:
        base = _last_log_probs(model, torch.as_tensor(ctx, device=dev))
        p = base.exp()
        tv = np.full(max_lag, np.nan)
        sem = np.full(max_lag, np.nan)
        kl = np.full(max_lag, np.nan)
        for k in range(1, max_lag + 1):
            if stop is not None and stop.is_set():
                break
            pos = T - k
            pert = ctx.copy()
            if perturb == "random":
                # A uniform draw from the pool minus the original token.
                orig_idx = np.searchsorted(pool, ctx[:, pos])
                draw = rng.integers(0, len(pool) - 1, size=n)
                draw = draw + (draw >= orig_idx)
                pert[:, pos] = pool[draw]
            else:
                pert[:, pos] = ctx[rng.permutation(n), pos]
            lq = _last_log_probs(model, torch.as_tensor(pert, device=dev))
            d = 0.5 * (p - lq.exp()).abs().sum(-1)
            kl_k = (p * (base - lq)).sum(-1)
            tv[k - 1] = float(d.mean())
            sem[k - 1] = float(d.std() / math.sqrt(n)) if n > 1 else 0.0
            kl[k - 1] = float(kl_k.mean())
            if progress is not None:
                progress(k, max_lag)
    finally:
        model.train(was_training)
    return MemoryCurve(lags=np.arange(1, max_lag + 1, dtype=np.int64), tv=tv, tv_sem=sem, kl=kl,
                       horizon=horizon_of(tv, threshold), threshold=float(threshold), contexts=n)


def horizon_of(tv: np.ndarray, threshold: float) -> int:
    """The number of leading lags whose mean TV is at least the threshold."""
    below = ~(np.asarray(tv) >= threshold)  # NaN (not measured) counts as below
    return int(np.argmax(below)) if below.any() else int(len(tv))


def horizon_ids(lm) -> np.ndarray:
    """Token ids of the model's corpus (validation part) to cut contexts from."""
    from .corpus import BUNDLED_CORPORA, load_corpus

    name = str(lm.meta.get("corpus") or "grammar").lower()
    if name not in BUNDLED_CORPORA:
        name = "grammar"
    # The text is decoded and read again with the model's vocabulary: a subword model's via characters.
    corpus = load_corpus(name, level="char" if lm.vocab.level == "bpe" else lm.vocab.level, size=2000)
    text = corpus.vocab.decode(corpus.val)
    return np.asarray(lm.vocab.encode(text, on_unknown="skip").ids, dtype=np.int64)


def lyapunov_rate(jac) -> float:
    """Mean growth of ln ||d s_t / d s_k|| per step of lag, over all pairs (a finite-time
    Lyapunov exponent of the driven recurrence); the identity's norm is taken off first."""
    logs = np.asarray(jac.log10_norms, dtype=float) * math.log(10.0)
    T = logs.shape[0]
    if T < 2:
        return float("nan")
    base = 0.5 * math.log(jac.dim)
    t_idx, k_idx = np.tril_indices(T, -1)
    vals = logs[t_idx, k_idx] - base
    lags = (t_idx - k_idx).astype(float)
    ok = np.isfinite(vals)
    if not ok.any():
        return float("nan")
    return float(np.sum(vals[ok]) / np.sum(lags[ok]))
