"""Spectral: the recurrence alone, h <- tanh(rho W h) and h <- rho W h, at several spectral radii
(decay, the edge of chaos, explosion), and the gradient by timestep of a vanilla RNN at each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .. import dynamics
from ..corpus import TOY_ALPHABET, Vocab
from ..errors import ConfigError
from ..model import LoadedModel, ModelConfig, build_model, set_spectral_radius
from ..probes import gradient_profile
from .base import PROBE_TEXT, ExperimentResult, RunContext, experiment, pad_rows, stack_padded


@dataclass(frozen=True)
class SpectralSettings:
    radii: tuple = (0.5, 0.9, 1.0, 1.1, 1.5)
    hidden: int = 64
    steps: int = 60  # iterations of the free recurrence
    start_norm: float = 1.0
    text: str = PROBE_TEXT[:66]  # read by a vanilla RNN rescaled to each radius, for dL/dh_t
    seed: int = 0


class SpectralResult(ExperimentResult):
    radii: np.ndarray  # [R]
    norm_tanh: np.ndarray  # [R, steps + 1]: ||h_t|| for h <- tanh(rho W h)
    norm_linear: np.ndarray  # [R, steps + 1]: ||h_t|| for h <- rho W h
    rate_tanh: np.ndarray  # [R]: mean d ln||h|| / dt (finite-time Lyapunov exponent)
    rate_linear: np.ndarray  # [R]: ~ ln(rho)
    eigenvalues: np.ndarray  # complex [H]: of W at radius 1 (scale by rho for the others)
    tokens: tuple[str, ...]
    grad: np.ndarray  # [R, T]: ||dL/dh_t|| of a vanilla RNN whose W_hh has radius rho
    grad_ratio: np.ndarray  # [R]: first / last position

    def table(self) -> list[str]:
        s = self.norm_tanh.shape[1] - 1
        rows = [f"{'rho':>4} {'|h_' + str(s) + '| tanh':>12} {'|h_' + str(s) + '| linear':>14} "
                f"{'rate tanh':>9} {'rate lin':>8} {'|g1|/|gT|':>10}"]
        for i, r in enumerate(self.radii):
            rows.append(f"{r:>4.1f} {self.norm_tanh[i, -1]:>12.3e} {self.norm_linear[i, -1]:>14.3e} "
                        f"{self.rate_tanh[i]:>9.3f} {self.rate_linear[i]:>8.3f} {self.grad_ratio[i]:>10.2e}")
        return rows

    def findings(self) -> list[str]:
        out = []
        for i, r in enumerate(self.radii):
            h0, h, lin = self.norm_tanh[i, 0], self.norm_tanh[i, -1], self.norm_linear[i, -1]
            if not (math.isfinite(h) and math.isfinite(h0)):
                continue
            if h < 0.01 * h0:
                kind = f"decays to {h:.1e}"
            elif h < h0:
                kind = f"fades slowly to {h:.2f}"
            else:
                kind = f"grows until tanh saturates, |h| = {h:.2f}"
            out.append(f"rho={r:g}: free tanh state {kind}; linear map |h| -> {lin:.2e} "
                       f"({self.rate_linear[i]:+.3f}/step, ln rho = {math.log(r):+.3f})")
        g = self.grad_ratio
        if np.isfinite(g).all() and len(g) > 1:
            out.append(f"gradient reaching the first token: {g[0]:.1e} of the last one's at rho={self.radii[0]:g}, "
                       f"{g[-1]:.1e} at rho={self.radii[-1]:g}")
        return out


@experiment("spectral", SpectralSettings, SpectralResult,
            explanation=("Recurrence alone: h <- tanh(W h) and h <- W h with W rescaled to spectral radius "
                         "0.5, 0.9, 1.0, 1.1, 1.5.",
                         "Decay, the edge of chaos and explosion; plus gradient norm by timestep at each radius."),
            quick=dict(steps=30, hidden=32))
def run_spectral(s: SpectralSettings, ctx: RunContext) -> dict:
    R = len(s.radii)
    for r in s.radii:
        if not isinstance(r, (int, float)) or not 0 < r < 100:
            raise ConfigError(f"each radius must be in (0, 100), got {r!r}")
    w = dynamics.random_recurrent(s.hidden, s.seed)
    h0 = dynamics.start_state(s.hidden, s.start_norm, s.seed)
    nt, nl = np.full((R, s.steps + 1), np.nan), np.full((R, s.steps + 1), np.nan)
    vocab = Vocab(tokens=tuple(TOY_ALPHABET), level="char")
    text = "".join(ch for ch in s.text.lower() if ch in TOY_ALPHABET)
    if len(text) < 2:
        raise ConfigError("the spectral experiment's text needs at least 2 letters")
    grads = []
    tokens: tuple[str, ...] = ()
    for i, r in enumerate(s.radii):
        if ctx.stopped:
            break
        ctx.report(i / R, f"rho={r}")
        nt[i] = dynamics.recurrence_alone(w, r, s.steps, "tanh", start=h0)
        nl[i] = dynamics.recurrence_alone(w, r, s.steps, "linear", start=h0)
        model = build_model(ModelConfig(vocab_size=len(vocab), cell="rnn", embed=32, hidden=s.hidden), seed=s.seed)
        with torch.no_grad():  # the same W for every radius: only its scale changes
            model.rnn.weight_hh_l0.copy_(torch.as_tensor(w, dtype=torch.float32))
        set_spectral_radius(model, float(r))
        gp = gradient_profile(LoadedModel(model=model.eval(), vocab=vocab), text, dtype=torch.float64)
        grads.append(gp.dh[-1])
        tokens = gp.tokens
    g = pad_rows(stack_padded(grads, len(tokens)), R) if grads else np.full((R, len(text)), np.nan)
    T = g.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = g[:, 0] / g[:, T - 2]
    ctx.report(1.0, "spectral: done")
    ev = np.linalg.eigvals(w)
    return dict(radii=np.asarray(s.radii, dtype=np.float64), norm_tanh=nt, norm_linear=nl,
                rate_tanh=np.array([dynamics.growth_rate(n) for n in nt]),
                rate_linear=np.array([dynamics.growth_rate(n) for n in nl]),
                eigenvalues=ev[np.argsort(-np.abs(ev), kind="stable")], tokens=tokens, grad=g, grad_ratio=ratio)
