"""The step-wise inspection path must be the fused module, to the last decimal."""

import pytest
import torch

from rnn_tui.engine.errors import ConfigError
from rnn_tui.engine.model import INITS, ModelConfig, build_model


def _pair(cell, layers, nonlinearity="auto", hidden=7, seed=1):
    cfg = ModelConfig(vocab_size=11, cell=cell, embed=5, hidden=hidden, layers=layers,
                      nonlinearity=nonlinearity)
    return build_model(cfg, seed=seed)


@pytest.mark.parametrize("cell,nonlinearity", [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "auto"),
                                               ("gru", "auto")])
@pytest.mark.parametrize("layers", [1, 3])
def test_stepwise_equals_fused(cell, nonlinearity, layers):
    model = _pair(cell, layers, nonlinearity)
    gen = torch.Generator().manual_seed(3)
    ids = torch.randint(0, 11, (4, 13), generator=gen)
    # A non-zero starting state exercises the carried-state path too.
    state = model.init_state(4)
    if cell == "lstm":
        state = (torch.randn(state[0].shape, generator=gen), torch.randn(state[1].shape, generator=gen))
    else:
        state = torch.randn(state.shape, generator=gen)
    with torch.no_grad():
        fused_logits, fused_state = model(ids, state)
        out_seq, _ = model.rnn(model.embed(ids), state)
        step = model.stepwise(ids, state)
    torch.testing.assert_close(step.logits, fused_logits, atol=1e-5, rtol=0)
    # Top layer's hidden sequence matches the fused module's output sequence.
    torch.testing.assert_close(step.hidden_stack()[-1], out_seq, atol=1e-5, rtol=0)
    if cell == "lstm":
        torch.testing.assert_close(step.state[0], fused_state[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(step.state[1], fused_state[1], atol=1e-5, rtol=0)
        torch.testing.assert_close(step.internals["c"][:, :, -1], fused_state[1], atol=1e-5, rtol=0)
    else:
        torch.testing.assert_close(step.state, fused_state, atol=1e-5, rtol=0)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_cell_gradients_match_finite_differences(cell):
    """float64 gradcheck of the step-wise cell w.r.t. input, state and every weight."""
    model = _pair(cell, 1, hidden=4).double()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    h = torch.randn(2, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    c = torch.randn(2, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    weights = tuple(model.rnn._parameters[n].detach().clone().requires_grad_(True) for n in names)

    def step(x, h, c, *w):
        # cell_step reads the layer's weights from the module: swap the inputs in for the call.
        saved = {n: model.rnn._parameters[n] for n in names}
        try:
            model.rnn._parameters.update(zip(names, w))
            out = model.cell_step(0, x, (h, c) if cell == "lstm" else h)
        finally:
            model.rnn._parameters.update(saved)
        return out

    assert torch.autograd.gradcheck(step, (x, h, c) + weights, eps=1e-6, atol=1e-7)


def test_stepwise_hidden_nodes_carry_gradients():
    model = _pair("gru", 2)
    ids = torch.randint(0, 11, (1, 6))
    out = model.stepwise(ids)
    loss = out.logits[0, -1].logsumexp(-1)
    grads = torch.autograd.grad(loss, out.hidden[1])
    assert len(grads) == 6
    assert all(g.shape == (1, 7) for g in grads)
    assert grads[-1].abs().sum() > 0


@pytest.mark.parametrize("init", INITS)
def test_init_schemes(init):
    model = build_model(ModelConfig(vocab_size=5, cell="rnn", hidden=16, init=init), seed=0)
    w = model.recurrent_blocks()["W_hh"]
    rho = torch.linalg.eigvals(w.double()).abs().max().item()
    if init == "orthogonal":
        torch.testing.assert_close(w @ w.T, torch.eye(16), atol=1e-5, rtol=0)
    if init == "identity":
        assert torch.equal(w, torch.eye(16))
        assert model.config.nonlinearity == "relu"
    if init == "spectral":
        assert rho == pytest.approx(1.0, abs=1e-4)
    if init == "echo":
        assert rho == pytest.approx(0.9, abs=1e-4)
        assert not model.rnn.weight_hh_l0.requires_grad
    else:
        assert model.rnn.weight_hh_l0.requires_grad


def test_spectral_radius_is_configurable_for_gated_cells():
    model = build_model(ModelConfig(vocab_size=5, cell="lstm", hidden=8, init="spectral",
                                    spectral_radius=0.5), seed=0)
    for block in model.recurrent_blocks().values():
        assert torch.linalg.eigvals(block.double()).abs().max().item() == pytest.approx(0.5, abs=1e-4)


def test_build_is_deterministic_and_leaves_global_rng_alone():
    cfg = ModelConfig(vocab_size=9, cell="lstm", hidden=8)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_model(cfg, seed=5)
    after = torch.rand(1)
    b = build_model(cfg, seed=5)
    assert torch.equal(before, after)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("kwargs,fragment", [
    ({"cell": "transformer"}, "unknown cell 'transformer'"),
    ({"init": "kaiming"}, "unknown init 'kaiming'"),
    ({"hidden": 0}, "hidden must be a positive"),
    ({"nonlinearity": "gelu"}, "unknown nonlinearity"),
])
def test_bad_config_is_explained(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        ModelConfig(vocab_size=5, **kwargs)


def test_parameter_count_formula():
    for cell, k in (("rnn", 1), ("gru", 3), ("lstm", 4)):
        cfg = ModelConfig(vocab_size=30, cell=cell, embed=16, hidden=64, layers=2)
        model = build_model(cfg, seed=0)
        assert cfg.parameter_count() == sum(p.numel() for p in model.parameters())
