"""`connectivity`: how much each output depends on each earlier input (Distill, "Memorization in
RNNs", 2019): ||d logits_t / d x_k||_F for every output position t and input k <= t, with x_k
the embedded input. A row is what one prediction can still "see" of the text before it.

One forward pass of the fused module on V copies of the text (one per vocabulary entry), then
one backward pass per output position: copy v carries the gradient of logit v, so the rows of
the input gradient are the Jacobian's V rows at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .base import ProbeResult, encode_text, zero_state

MAX_CONNECTIVITY_TOKENS = 256


@dataclass(frozen=True, eq=False)
class Connectivity(ProbeResult):
    tokens: tuple[str, ...]
    norms: np.ndarray  # float64 [T, T]: ||d logits_t / d x_k||_F, 0 above the diagonal (k > t)

    def row(self, t: int) -> np.ndarray:
        """Output t's connectivity to every input k <= t, relative to its own input (k = t)."""
        r = np.asarray(self.norms[t, :t + 1], dtype=np.float64)
        return r / r[-1] if r[-1] > 0 else r

    def reach(self, t: int, floor: float = 0.01) -> int:
        """How many tokens back output t still depends on an input at >= floor of its own input's."""
        r = self.row(t)
        far = [t - k for k in range(len(r)) if r[k] >= floor]
        return max(far) if far else 0


def connectivity(lm, text: str, on_unknown: str = "skip") -> Connectivity:
    ids, tokens, _, _ = encode_text(lm, text, on_unknown, None, MAX_CONNECTIVITY_TOKENS, "connectivity")
    model = lm.model
    V, T = lm.config.vocab_size, len(ids)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            y = torch.as_tensor(ids, device=model.device)
            x = model.embed(y).detach()[None].repeat(V, 1, 1).requires_grad_(True)  # [V, T, E]
            state = zero_state(model)
            state = tuple(s.repeat(1, V, 1) for s in state) if isinstance(state, tuple) else state.repeat(1, V, 1)
            out, _ = model.rnn(x, state)
            logits = model.head(out)  # [V, T, V]
            pick = torch.arange(V, device=model.device)
            norms = np.zeros((T, T))
            for t in range(T):
                (g,) = torch.autograd.grad(logits[pick, t, pick].sum(), x, retain_graph=t < T - 1)
                norms[t, :t + 1] = g[:, :t + 1].double().pow(2).sum(dim=(0, 2)).sqrt().cpu().numpy()
    finally:
        model.train(was_training)
    return Connectivity(tokens=tokens, norms=norms)
