"""cuDNN refuses to back-propagate through a fused RNN in eval mode ("cudnn RNN backward can
only be called in training mode"). No probe may do it: the fused module runs under no_grad (the
hand-written BPTT of gradient_profile, the unit index, sampling), gradients go through the
step-wise path (attribution, the Jacobians), training runs in training mode, and RNNLM.forward
itself takes the step-wise path when asked for gradients in eval mode on such a device.

No GPU here: the tests add "cpu" to the refusing devices and make every fused module refuse as
cuDNN would (a forward pre-hook raising cuDNN's error whenever the backward would be refused).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import rnn_tui.engine.model as model_mod
from rnn_tui.engine.attribution import attribution
from rnn_tui.engine.dynamics import context_windows, memory_horizon
from rnn_tui.engine.probes import gradient_profile, jacobian_map, trace
from rnn_tui.engine.units import encode_corpus_states

from conftest import make_tiny_lm

CUDNN_ERROR = "cudnn RNN backward can only be called in training mode"
TEXT = "the cat that we saw yesterday was happy."


@pytest.fixture
def refusing(monkeypatch):
    """CPU behaves like cuDNN: a fused RNN called in eval mode with gradients on raises."""
    monkeypatch.setattr(model_mod, "FUSED_EVAL_BACKWARD_REFUSED", ("cpu", "cuda"))
    hooks = []

    def refuse(module, args):
        if model_mod.fused_backward_refused(module):
            raise RuntimeError(CUDNN_ERROR)

    def install(lm):
        for m in lm.model.modules():
            if isinstance(m, nn.RNNBase):
                hooks.append(m.register_forward_pre_hook(refuse))
        return lm

    yield install
    for h in hooks:
        h.remove()


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_the_emulation_refuses_what_cudnn_refuses(refusing, cell):
    lm = refusing(make_tiny_lm(cell, layers=2))
    x = torch.randn(1, 5, lm.config.embed)
    with pytest.raises(RuntimeError, match=CUDNN_ERROR):
        lm.model.rnn(x)  # eval mode, gradients on: what cuDNN would refuse to back-propagate
    with torch.no_grad():
        lm.model.rnn(x)  # nothing to back-propagate: allowed
    lm.model.train()
    lm.model.rnn(x)  # training mode: allowed
    lm.model.eval()


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_forward_in_eval_mode_with_gradients_takes_the_stepwise_path(refusing, cell):
    lm = refusing(make_tiny_lm(cell, layers=2))
    ids = torch.as_tensor(lm.vocab.encode(TEXT).ids)[None]
    with torch.no_grad():
        want, want_state = lm.model(ids)  # fused: no gradient, allowed
    logits, state = lm.model(ids)  # the branch a GPU takes: step-wise, differentiable
    torch.testing.assert_close(logits, want, rtol=1e-5, atol=1e-5)
    for a, b in zip(state if isinstance(state, tuple) else (state,),
                    want_state if isinstance(want_state, tuple) else (want_state,)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    logits[0, -1].logsumexp(-1).backward()
    assert lm.model.embed.weight.grad is not None and lm.model.embed.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_no_probe_back_propagates_through_a_fused_module_in_eval_mode(refusing, cell):
    lm = refusing(make_tiny_lm(cell, layers=2))
    assert not lm.model.training
    trace(lm, TEXT)
    for mode in ("last", "sum"):
        gradient_profile(lm, TEXT, mode=mode)
    for method in ("grad_x_input", "occlusion"):
        attribution(lm, TEXT, position=10, method=method)
    jacobian_map(lm, TEXT, method="exact")
    jacobian_map(lm, TEXT, method="estimate", rows=4)
    ids = np.asarray(lm.vocab.encode(TEXT * 4).ids)
    memory_horizon(lm, context_windows(ids, 4, 12, seed=0), seed=0)
    encode_corpus_states(lm, TEXT * 20, "hidden", 0)
    if cell == "lstm":
        encode_corpus_states(lm, TEXT * 20, "cell", 1)


def test_training_and_the_gradient_experiments_never_hit_the_refusal(refusing, monkeypatch):
    from rnn_tui.engine.experiments import run_experiment
    from rnn_tui.engine.train import TrainConfig, Trainer

    lm = refusing(make_tiny_lm("lstm"))
    cfg = TrainConfig(corpus="grammar", cell="lstm", hidden=24, embed=8, batch=4, seq_len=16, steps=3,
                      eval_every=2, eval_batches=1, device="cpu", seed=0)
    trainer = Trainer(cfg, model=lm.model, vocab=lm.vocab)
    assert trainer.run().steps_done == 3
    # Every fused module the experiments build refuses too (their probes run in eval mode).
    real_init = nn.RNNBase.__init__

    def init(self, *a, **kw):
        real_init(self, *a, **kw)
        self.register_forward_pre_hook(
            lambda m, args: (_ for _ in ()).throw(RuntimeError(CUDNN_ERROR)) if model_mod.fused_backward_refused(m)
            else None)

    monkeypatch.setattr(nn.RNNBase, "__init__", init)
    for name, settings in (("spectral", {"radii": (0.5, 1.5), "hidden": 8, "steps": 10}),
                           ("init-schemes", {"schemes": ("default",), "steps": 4, "hidden": 8})):
        result = run_experiment(name, settings, quick=True)
        assert not result.stopped
