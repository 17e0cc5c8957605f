"""The language model: embedding -> recurrent stack -> linear head.

Training runs through the fused torch modules (cuDNN on a GPU). Inspection runs through
`stepwise`, which applies the very same parameters one token at a time in plain tensor code
so every gate and state is visible; tests hold the two paths equal to 1e-5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn


if TYPE_CHECKING:  # the corpus module imports torch too, but only type checkers need it here
    from .corpus import Vocab

from .config import (CELLS, GATE_BLOCKS, INIT_HELP, INITS, INTERNALS,  # noqa: F401  (re-exported)
                     NONLINEARITIES, ModelConfig)


@dataclass
class StepOutput:
    """What `RNNLM.stepwise` exposes. Tensors stay in the autograd graph."""

    logits: torch.Tensor  # [B, T, V]
    hidden: list[list[torch.Tensor]]  # hidden[layer][t] is h_t, [B, H]: the real graph node
    internals: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> [L, B, T, H]
    state: object = None  # final state in the fused module's format
    inputs: torch.Tensor | None = None  # [B, T, E] embedded inputs

    def hidden_stack(self) -> torch.Tensor:
        """[L, B, T, H]"""
        return torch.stack([torch.stack(hs, dim=1) for hs in self.hidden])


# cuDNN refuses to back-propagate through its fused RNN kernels in eval mode ("cudnn RNN
# backward can only be called in training mode"). On these devices `forward` in eval mode with
# gradients enabled therefore runs the step-wise path (the same parameters in plain tensor
# code, which differentiates anywhere). Tests add "cpu" to check that branch without a GPU.
FUSED_EVAL_BACKWARD_REFUSED: tuple[str, ...] = ("cuda",)


def fused_backward_refused(module: nn.Module) -> bool:
    """Whether back-propagating through this fused RNN module now would be refused: eval mode,
    gradients on, on a device whose fused kernels (cuDNN) refuse that."""
    if module.training or not torch.is_grad_enabled():
        return False
    p = next(module.parameters(), None)
    return p is not None and p.device.type in FUSED_EVAL_BACKWARD_REFUSED


class RNNLM(nn.Module):
    def __init__(self, config: ModelConfig, *, initialise: bool = True):
        """``initialise=False``: the modules' shapes only, their weights left as allocated (the
        checkpoint loader builds them on the meta device and assigns the loaded tensors; the
        embedding's own init on meta would import torch._dynamo, a second of start-up)."""
        super().__init__()
        self.config = config
        c = config
        if initialise:
            self.embed = nn.Embedding(c.vocab_size, c.embed)
        else:
            self.embed = nn.Embedding(c.vocab_size, c.embed, _weight=torch.empty(c.vocab_size, c.embed))
        dropout = c.dropout if c.layers > 1 else 0.0
        if c.cell == "rnn":
            self.rnn = nn.RNN(c.embed, c.hidden, c.layers, nonlinearity=c.nonlinearity,
                              batch_first=True, dropout=dropout)
        elif c.cell == "lstm":
            self.rnn = nn.LSTM(c.embed, c.hidden, c.layers, batch_first=True, dropout=dropout)
        else:
            self.rnn = nn.GRU(c.embed, c.hidden, c.layers, batch_first=True, dropout=dropout)
        self.head = nn.Linear(c.hidden, c.vocab_size)
        if initialise:
            init_weights(self, c.init, c.spectral_radius)

    # ----------------------------------------------------------------- fused path
    def forward(self, ids: torch.Tensor, state=None):
        if fused_backward_refused(self.rnn):  # cuDNN could not back-propagate: step-wise instead
            out = self.stepwise(ids, state)
            return out.logits, out.state
        out, state = self.rnn(self.embed(ids), state)
        return self.head(out), state

    def init_state(self, batch: int, device=None):
        device = device or self.head.weight.device
        h = torch.zeros(self.config.layers, batch, self.config.hidden, device=device,
                        dtype=self.head.weight.dtype)
        return (h, torch.zeros_like(h)) if self.config.cell == "lstm" else h

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    # ----------------------------------------------------------- step-wise path
    def layer_weights(self, layer: int):
        r = self.rnn
        return (getattr(r, f"weight_ih_l{layer}"), getattr(r, f"weight_hh_l{layer}"),
                getattr(r, f"bias_ih_l{layer}"), getattr(r, f"bias_hh_l{layer}"))

    def cell_step(self, layer: int, x: torch.Tensor, state, internals: dict | None = None):
        """One step of one layer. `state` is h, or (h, c) for LSTM. Pure tensor code."""
        w_ih, _, b_ih, _ = self.layer_weights(layer)
        return self._recur(layer, x @ w_ih.T + b_ih, state, internals)

    def _recur(self, layer: int, gi: torch.Tensor, state, internals: dict | None = None):
        """The recurrent half of a step, given the input projection gi = W_ih x + b_ih."""
        _, w_hh, _, b_hh = self.layer_weights(layer)
        cell = self.config.cell
        if cell == "rnn":
            pre = gi + state @ w_hh.T + b_hh
            return torch.tanh(pre) if self.config.nonlinearity == "tanh" else torch.relu(pre)
        if cell == "lstm":
            h, c = state
            gates = gi + h @ w_hh.T + b_hh
            i, f, g, o = gates.chunk(4, dim=-1)
            i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
            c_new = f * c + i * g
            h_new = o * torch.tanh(c_new)
            if internals is not None:
                internals.update(i=i, f=f, g=g, o=o, c=c_new)
            return h_new, c_new
        # GRU: torch applies the reset gate to (W_hn h + b_hn), not to h itself.
        gh = state @ w_hh.T + b_hh
        i_r, i_z, i_n = gi.chunk(3, dim=-1)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        if internals is not None:
            internals.update(r=r, z=z, n=n)
        return (1 - z) * n + z * state

    def stepwise(self, ids: torch.Tensor | None = None, state=None,
                 inputs: torch.Tensor | None = None) -> StepOutput:
        """Run the stack one token at a time, keeping every internal (no dropout)."""
        if inputs is None:
            if ids is None:
                raise ValueError("stepwise needs ids or inputs")
            inputs = self.embed(ids)
        batch, steps = inputs.shape[0], inputs.shape[1]
        cfg = self.config
        if state is None:
            state = self.init_state(batch, inputs.device)
        names = INTERNALS[cfg.cell]
        collected = {n: [[] for _ in range(cfg.layers)] for n in names}
        hidden: list[list[torch.Tensor]] = [[] for _ in range(cfg.layers)]
        layer_states = [
            (state[0][k], state[1][k]) if cfg.cell == "lstm" else state[k] for k in range(cfg.layers)
        ]
        # Layer by layer: layer k at step t needs only layer k-1 at step t and itself at t-1,
        # so each layer's input projection is one matrix multiply over all steps, and the
        # Python loop does only the recurrent half (what makes probes fast on a CPU).
        x_seq = inputs
        for k in range(cfg.layers):
            w_ih, _, b_ih, _ = self.layer_weights(k)
            gi_seq = x_seq @ w_ih.T + b_ih  # [B, T, G*H]
            for t in range(steps):
                bag: dict = {}
                layer_states[k] = self._recur(k, gi_seq[:, t], layer_states[k], bag if names else None)
                h = layer_states[k][0] if cfg.cell == "lstm" else layer_states[k]
                hidden[k].append(h)
                for n in names:
                    collected[n][k].append(bag[n])
            if steps:
                x_seq = torch.stack(hidden[k], dim=1)
        if steps:
            logits = self.head(x_seq)
        else:
            logits = inputs.new_zeros(batch, 0, cfg.vocab_size)
        internals = {
            n: torch.stack([torch.stack(per_t, dim=1) for per_t in collected[n]]) for n in names
        } if steps else {}
        if cfg.cell == "lstm":
            final = (torch.stack([s[0] for s in layer_states]), torch.stack([s[1] for s in layer_states]))
        else:
            final = torch.stack(layer_states)
        return StepOutput(logits=logits, hidden=hidden, internals=internals, state=final, inputs=inputs)

    def recurrent_blocks(self, layer: int = -1) -> dict[str, torch.Tensor]:
        """The H x H recurrent matrices of a layer, one per gate block."""
        layer = layer % self.config.layers
        w_hh = self.layer_weights(layer)[1]
        names = GATE_BLOCKS[self.config.cell]
        return dict(zip(names, w_hh.detach().chunk(len(names), dim=0)))


# ------------------------------------------------------------------- initialisation
def _scaled_random(h: int, radius: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A Gaussian matrix rescaled so its largest |eigenvalue| equals `radius`."""
    w = torch.randn(h, h, generator=generator, dtype=torch.float64) / math.sqrt(h)
    rho = torch.linalg.eigvals(w).abs().max().item()
    return (w * (radius / max(rho, 1e-12))).float()


def set_spectral_radius(model: RNNLM, radius: float, layer: int | None = None) -> None:
    """Rescale each recurrent block of the chosen layers to the given spectral radius."""
    layers = range(model.config.layers) if layer is None else [layer % model.config.layers]
    with torch.no_grad():
        for k in layers:
            w_hh = model.layer_weights(k)[1]
            for block in w_hh.chunk(len(GATE_BLOCKS[model.config.cell]), dim=0):
                rho = torch.linalg.eigvals(block.double()).abs().max().item()
                if rho > 0:
                    block.mul_(radius / rho)


def init_weights(model: RNNLM, scheme: str, radius: float | None = None) -> None:
    cfg = model.config
    if scheme == "default":
        return
    h = cfg.hidden
    n_blocks = len(GATE_BLOCKS[cfg.cell])
    with torch.no_grad():
        for k in range(cfg.layers):
            w_ih, w_hh, b_ih, b_hh = model.layer_weights(k)
            blocks = w_hh.chunk(n_blocks, dim=0)
            if scheme == "orthogonal":
                for b in blocks:
                    nn.init.orthogonal_(b)
            elif scheme == "xavier":
                for b in w_ih.chunk(n_blocks, dim=0):
                    nn.init.xavier_uniform_(b)
                for b in blocks:
                    nn.init.xavier_uniform_(b)
                b_ih.zero_()
                b_hh.zero_()
            elif scheme == "identity":
                for b in blocks:
                    b.copy_(torch.eye(h))
                nn.init.normal_(w_ih, std=0.001 if cfg.cell == "rnn" else 1 / math.sqrt(h))
                b_ih.zero_()
                b_hh.zero_()
            elif scheme in ("spectral", "echo"):
                rho = radius if radius is not None else (1.0 if scheme == "spectral" else 0.9)
                for b in blocks:
                    b.copy_(_scaled_random(h, rho))
        if scheme == "xavier":
            nn.init.xavier_uniform_(model.head.weight)
            model.head.bias.zero_()
    if scheme == "echo":
        freeze_reservoir(model)


def freeze_reservoir(model: RNNLM) -> None:
    """Echo-state (reservoir computing): the recurrence stays as drawn; only the rest learns."""
    for k in range(model.config.layers):
        getattr(model.rnn, f"weight_hh_l{k}").requires_grad_(False)
        getattr(model.rnn, f"bias_hh_l{k}").requires_grad_(False)


def build_model(config: ModelConfig, seed: int | None = None, device=None) -> RNNLM:
    """Construct deterministically from a seed without disturbing the global RNG."""
    if seed is None:
        model = RNNLM(config)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = RNNLM(config)
    return model.to(device) if device is not None else model


@dataclass
class LoadedModel:
    """A model with the vocabulary it reads and what is known about where it came from.

    Probes, sampling and the front ends all take one of these. `meta` is the checkpoint's
    config.json (corpus, training config, metrics summary, word categories, source path).
    """

    model: RNNLM
    vocab: "Vocab"  # rnn_tui.engine.corpus.Vocab
    meta: dict = field(default_factory=dict)

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def categories(self) -> dict[str, str] | None:
        return self.meta.get("categories")

    @property
    def label(self) -> str:
        """Short description for headers: 'lstm H=64 x1 · grammar'."""
        c = self.config
        corpus = self.meta.get("corpus") or "?"
        layers = f" x{c.layers}" if c.layers > 1 else ""
        return f"{c.cell} H={c.hidden}{layers} · {corpus}"

    def encode(self, text: str, on_unknown: str = "skip"):
        return self.vocab.encode(text, on_unknown=on_unknown)
