"""Probes against independent computations on tiny seeded models."""

import copy
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnn_tui.engine import probes
from rnn_tui.engine.corpus import Vocab
from rnn_tui.engine.errors import ConfigError, ProbeLimitError, VocabError
from rnn_tui.engine.model import LoadedModel, ModelConfig, build_model, set_spectral_radius
from rnn_tui.engine.probes import gradient_profile, jacobian_map, spectrum, trace

CORPUS = "the cat sat on the mat. a dog ran to the cat, and the cat ran off."
VOCAB = Vocab.build(CORPUS, "char")
TEXT = "the dog sat on the cat."
CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "auto"), ("gru", "auto")]


def make(cell="lstm", layers=2, hidden=8, nonlinearity="auto", seed=0, **kw) -> LoadedModel:
    cfg = ModelConfig(vocab_size=len(VOCAB), cell=cell, embed=6, hidden=hidden, layers=layers,
                      nonlinearity=nonlinearity, **kw)
    return LoadedModel(build_model(cfg, seed=seed), VOCAB, {"corpus": "test"})


def as_double(lm: LoadedModel) -> LoadedModel:
    return LoadedModel(copy.deepcopy(lm.model).double(), lm.vocab, lm.meta)


def ids_of(text: str) -> torch.Tensor:
    return torch.as_tensor(VOCAB.encode(text).ids)


# ---------------------------------------------------------------------------- trace
@pytest.mark.parametrize("cell,nl", CELLS)
def test_trace_hidden_and_gates_equal_stepwise(cell, nl):
    lm = make(cell, nonlinearity=nl)
    tr = trace(lm, TEXT)
    with torch.no_grad():
        out = lm.model.stepwise(ids_of(TEXT)[None])
    np.testing.assert_array_equal(tr.hidden, out.hidden_stack()[:, 0].numpy())
    assert tr.hidden.shape == (2, len(TEXT), 8)
    assert set(tr.gates) == {"rnn": set(), "lstm": {"i", "f", "g", "o", "c"}, "gru": {"r", "z", "n"}}[cell]
    for name, g in tr.gates.items():
        np.testing.assert_array_equal(g, out.internals[name][:, 0].numpy())
    one = trace(lm, TEXT, layer=-1)
    assert one.layers == (1,)
    np.testing.assert_array_equal(one.hidden[0], tr.hidden[1])


def test_trace_lstm_gate_ranges():
    tr = trace(make("lstm"), TEXT)
    for name in "ifo":
        assert tr.gates[name].min() >= 0.0 and tr.gates[name].max() <= 1.0
    assert np.abs(tr.gates["g"]).max() <= 1.0
    assert np.abs(tr.gates["c"]).max() > 0.0


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_trace_losses_match_fused_forward(cell):
    lm = make(cell)
    tr = trace(lm, TEXT, top_k=5)
    ids = ids_of(TEXT)
    with torch.no_grad():
        logits, _ = lm.model(ids[None])  # the fused path, not stepwise
    logp = torch.log_softmax(logits[0].double(), dim=-1)
    expected = -logp[torch.arange(len(ids) - 1), ids[1:]].numpy()
    np.testing.assert_allclose(tr.next_loss[:-1], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tr.next_prob[:-1], np.exp(-expected), rtol=1e-5, atol=1e-7)
    assert math.isnan(tr.next_loss[-1]) and math.isnan(tr.next_prob[-1])
    np.testing.assert_array_equal(tr.next_ids, np.append(ids[1:].numpy(), -1))
    assert tr.mean_loss == pytest.approx(expected.mean(), rel=1e-5)
    # top-k: sorted, a sub-distribution, and the argmax first.
    assert tr.topk_probs.shape == (len(ids), 5)
    assert (np.diff(tr.topk_probs, axis=1) <= 0).all()
    assert (tr.topk_probs.sum(axis=1) <= 1.0 + 1e-6).all()
    np.testing.assert_array_equal(tr.topk_ids[:, 0], logits[0].argmax(-1).numpy())
    assert tr.topk_tokens[3] == tuple(VOCAB.tokens[i] for i in tr.topk_ids[3])
    np.testing.assert_allclose(tr.topk_probs, torch.softmax(logits[0], -1).topk(5).values.numpy(), rtol=1e-5)


def test_trace_unknown_empty_and_json():
    lm = make("gru")
    tr = trace(lm, "the Zcat#")
    assert tr.tokens == tuple("the cat")
    assert "'Z'" in tr.unknown_message and "skipped" in tr.unknown_message
    assert trace(lm, "the cat").unknown_message is None
    with pytest.raises(VocabError, match="nothing to probe"):
        trace(lm, "")
    with pytest.raises(VocabError, match="nothing to probe"):
        trace(lm, "ZZZ")
    with pytest.raises(VocabError):
        trace(lm, "the Zcat", on_unknown="error")
    with pytest.raises(ConfigError):
        trace(lm, "the cat", top_k=0)
    with pytest.raises(ConfigError):
        trace(lm, "the cat", layer=5)
    data = tr.to_json()
    json.dumps(data, allow_nan=False)  # NaN at the last step became null
    assert data["next_loss"][-1] is None and data["next_ids"][-1] == -1
    assert data["tokens"] == list("the cat") and data["unknown"] == ["Z", "#"]
    assert data["gates"]["z"][0][0] == [float(f"{v:.6g}") for v in tr.gates["z"][0][0].tolist()]
    with pytest.raises(ValueError):
        tr.hidden[0, 0, 0] = 1.0  # results are read-only


# ----------------------------------------------------------------- gradient profile
def _reference_profile(lm, text, mode):
    """dL/dh_t via retain_grad + loss.backward() (not autograd.grad on a list of nodes)."""
    model = lm.model
    ids = ids_of(text)
    x = model.embed(ids[None]).detach().requires_grad_(True)
    out = model.stepwise(inputs=x)
    for layer in out.hidden:
        for h in layer:
            h.retain_grad()
    logits = out.logits[0]
    if mode == "last":
        loss = -torch.log_softmax(logits[-2], -1)[ids[-1]]
    else:
        loss = -torch.log_softmax(logits[:-1], -1).gather(1, ids[1:, None]).sum()
    loss.backward()
    dh = np.array([[0.0 if h.grad is None else h.grad.double().norm().item() for h in layer]
                   for layer in out.hidden])
    return dh, x.grad[0].double().norm(dim=-1).numpy(), loss.item()


@pytest.mark.parametrize("cell,nl", CELLS)
@pytest.mark.parametrize("mode", ["last", "sum"])
@pytest.mark.parametrize("layers", [1, 2])  # one layer takes the fused forward, two step-wise
def test_gradient_profile_matches_retain_grad(cell, nl, mode, layers):
    lm = make(cell, layers=layers, nonlinearity=nl)
    gp = gradient_profile(lm, TEXT, mode=mode)
    dh, dx, loss = _reference_profile(lm, TEXT, mode)
    assert gp.dh.shape == (layers, len(TEXT)) and gp.dx.shape == (len(TEXT),)
    np.testing.assert_allclose(gp.dh, dh, rtol=1e-5, atol=0)
    np.testing.assert_allclose(gp.dx, dx, rtol=1e-5, atol=0)
    assert gp.loss == pytest.approx(loss, rel=1e-5)
    assert gp.dh[:, -1].tolist() == [0.0] * layers and not gp.affects_loss[-1]
    assert not gp.underflow_h.any()


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
def test_gradient_profile_matches_fused_module(cell, layers):
    """Top layer and inputs against the fused torch module, split at t, in float64."""
    lm = as_double(make(cell, layers=layers))
    model = lm.model
    text = "a dog sat on the."
    ids = ids_of(text)
    T = len(ids)
    gp = gradient_profile(lm, text, mode="last", dtype=torch.float64)
    # dL/dx_t through the fused module.
    x = model.embed(ids[None]).detach().requires_grad_(True)
    out, _ = model.rnn(x)
    loss = F.cross_entropy(model.head(out[0, T - 2:T - 1]), ids[T - 1:])
    (gx,) = torch.autograd.grad(loss, x)
    np.testing.assert_allclose(gp.dx, gx[0].norm(dim=-1).detach().numpy(), rtol=1e-8, atol=1e-300)
    # dL/dh_t of the top layer: run up to t, free the top layer's h_t, run the rest.
    for t in range(T - 1):
        with torch.no_grad():
            _, state = model.rnn(model.embed(ids[None, : t + 1]))
        h = state[0] if cell == "lstm" else state
        top = h[-1:].clone().requires_grad_(True)
        h_new = torch.cat([h[:-1], top])
        state = (h_new, state[1]) if cell == "lstm" else h_new
        if t == T - 2:
            logit = model.head(top[0])
        else:
            rest, _ = model.rnn(model.embed(ids[None, t + 1:T - 1]), state)
            logit = model.head(rest[:, -1])
        loss = F.cross_entropy(logit, ids[T - 1:])
        (g,) = torch.autograd.grad(loss, top)
        assert gp.dh[-1, t] == pytest.approx(g.norm().item(), rel=1e-8)


def test_gradient_profile_decays_geometrically_for_small_radius():
    lm = make("rnn", layers=1, hidden=16, nonlinearity="tanh", seed=3)
    set_spectral_radius(lm.model, 0.3)
    text = (CORPUS * 2)[:40]
    gp = gradient_profile(lm, text, mode="last")
    top = gp.dh[0, : len(text) - 1]  # the positions that feed the loss
    assert (top > 0).all()
    ratios = top[:-1] / top[1:]
    assert (ratios[:-3] < 1.0).all(), ratios
    t = np.arange(len(top))
    slope, intercept = np.polyfit(t, np.log(top), 1)
    fit = slope * t + intercept
    r2 = 1 - ((np.log(top) - fit) ** 2).sum() / ((np.log(top) - np.log(top).mean()) ** 2).sum()
    assert r2 > 0.95 and slope > 0.5  # grows toward the end: decays going back in time
    assert 0.0 < gp.ratio_first_last < 1e-8
    assert "of the last one's" in gp.describe()


def test_gradient_profile_underflow_is_zero_not_nan():
    lm = make("rnn", layers=1, hidden=8, nonlinearity="tanh", seed=1)
    set_spectral_radius(lm.model, 1e-3)
    text = (CORPUS * 2)[:60]
    gp = gradient_profile(lm, text, mode="last")
    assert not np.isnan(gp.dh).any() and not np.isnan(gp.dx).any()
    assert gp.underflow_h[0, 0] and gp.dh[0, 0] == 0.0
    assert gp.underflow_h[0].sum() > 20
    np.testing.assert_array_equal(gp.underflow_h, (gp.dh == 0.0) & gp.affects_loss)
    assert gp.underflow_x[0] and gp.dx[0] == 0.0
    assert gp.ratio_first_last == 0.0
    assert "underflowed to exactly zero" in gp.describe()
    json.dumps(gp.to_json(), allow_nan=False)
    # float64 reaches 1e-180 without underflowing.
    gp64 = gradient_profile(lm, text, mode="last", dtype=torch.float64)
    assert not gp64.underflow_h.any() and gp64.dh[0, 0] > 0.0 and gp64.dtype == "float64"


def test_gradient_profile_bad_input():
    lm = make("gru")
    with pytest.raises(ConfigError):
        gradient_profile(lm, TEXT, mode="mean")
    with pytest.raises(ConfigError):
        gradient_profile(lm, TEXT, dtype=torch.float16)
    with pytest.raises(VocabError, match="at least 2 tokens"):
        gradient_profile(lm, "t")


# ------------------------------------------------------------------- Jacobian map
def _unrolled_norms(lm, text, layer):
    """||d state_t / d state_k||_F from autograd.functional.jacobian of the unrolled layer."""
    model, cfg = lm.model, lm.config
    H = cfg.hidden
    with torch.no_grad():
        out = model.stepwise(ids_of(text)[None], probes.zero_state(model))
    xs = out.inputs[0] if layer == 0 else torch.stack(out.hidden[layer - 1], 1)[0]
    h = torch.stack(out.hidden[layer], 1)[0]
    states = torch.cat([h, out.internals["c"][layer, 0]], 1) if cfg.cell == "lstm" else h
    T = len(xs)
    norms = np.full((T, T), np.nan)
    for k in range(T):
        for t in range(k + 1, T):
            def run(s, k=k, t=t):
                for j in range(k + 1, t + 1):
                    if cfg.cell == "lstm":
                        s = torch.cat(model.cell_step(layer, xs[j], (s[:H], s[H:])))
                    else:
                        s = model.cell_step(layer, xs[j], s)
                return s
            norms[t, k] = torch.autograd.functional.jacobian(run, states[k], vectorize=True).norm().item()
    return norms


@pytest.mark.parametrize("cell,nl", CELLS)
@pytest.mark.parametrize("layer", [0, -1])
def test_jacobian_map_matches_unrolled_autograd(cell, nl, layer):
    lm = as_double(make(cell, nonlinearity=nl, hidden=4, seed=2))
    text = "the cat"
    jm = jacobian_map(lm, text, layer=layer)
    D = 8 if cell == "lstm" else 4
    assert jm.state == ("h,c" if cell == "lstm" else "h") and jm.dim == D and jm.layer == layer % 2
    expected = _unrolled_norms(lm, text, layer % 2)
    T = len(text)
    below = np.tril(np.ones((T, T), bool), -1)
    np.testing.assert_allclose(jm.norms[below], expected[below], rtol=1e-9)
    np.testing.assert_allclose(np.diag(jm.norms), math.sqrt(D))
    assert np.isnan(jm.norms[np.triu(np.ones((T, T), bool), 1)]).all()
    np.testing.assert_allclose(jm.log10_norms[below], np.log10(expected[below]), rtol=1e-9)
    # The float32 model gives the same map to float32 accuracy.
    jm32 = jacobian_map(make(cell, nonlinearity=nl, hidden=4, seed=2), text, layer=layer)
    np.testing.assert_allclose(jm32.norms[below], expected[below], rtol=2e-5)


def test_product_norms_report_overflow_and_underflow_honestly():
    from rnn_tui.engine.probes.recurrence import _product_log_norms

    T = 100
    grow = _product_log_norms(1e4 * torch.eye(2, dtype=torch.float64).expand(T, 2, 2))
    log10 = grow.numpy() / math.log(10)
    t, k = np.tril_indices(T, -1)
    np.testing.assert_allclose(log10[t, k], 4 * (t - k) + math.log10(math.sqrt(2)), rtol=1e-12)
    with np.errstate(over="ignore"):
        norms = np.exp(grow.numpy())
    assert np.isinf(norms[T - 1, 0]) and np.isfinite(norms[70, 0])  # inf is real overflow
    shrink = _product_log_norms(1e-4 * torch.eye(2, dtype=torch.float64).expand(T, 2, 2)).numpy()
    assert np.exp(shrink[T - 1, 0]) == 0.0 and np.isfinite(shrink[T - 1, 0])
    dead = torch.eye(2).repeat(5, 1, 1)
    dead[2] = 0.0  # a step that kills the state: exactly zero from then on, never NaN
    out = _product_log_norms(dead).numpy()
    assert np.isneginf(out[2, 1]) and np.isneginf(out[4, 0]) and out[4, 2] == pytest.approx(math.log(2) / 2)


def test_jacobian_map_long_decay_reports_zero_with_finite_log():
    lm = make("rnn", layers=1, hidden=4, nonlinearity="tanh")
    set_spectral_radius(lm.model, 1e-3)
    T = 130
    jm = jacobian_map(lm, (CORPUS * 4)[:T])
    below = np.tril(np.ones((T, T), bool), -1)
    assert not np.isnan(jm.norms[below]).any() and not np.isinf(jm.norms).any()
    last = jm.log10_norms[T - 1, 0]
    assert jm.norms[T - 1, 0] == 0.0 and np.isfinite(last) and last < -330, last
    json.dumps(jm.to_json(), allow_nan=False)


def test_spectrum_orthogonal_rnn_has_radius_one():
    lm = make("rnn", layers=1, hidden=16, init="orthogonal", seed=4)
    sp = spectrum(lm)
    assert sp.main == "W_hh" and sp.main_reason
    assert sp.radius["W_hh"] == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(np.abs(sp.eigenvalues["W_hh"]), 1.0, atol=1e-5)
    assert sp.singular_max["W_hh"] == pytest.approx(1.0, abs=1e-5)
    assert jacobian_map(lm, "the cat").spectral_radius == pytest.approx(1.0, abs=1e-5)
    data = sp.to_json()
    json.dumps(data, allow_nan=False)
    assert len(data["eigenvalues"]["W_hh"][0]) == 2  # complex -> [re, im]


def test_spectrum_blocks_per_cell():
    lstm = spectrum(make("lstm", hidden=6), layer=0)
    assert set(lstm.radius) == {"i", "f", "g", "o"} and lstm.main == "g"
    for name, ev in lstm.eigenvalues.items():
        assert ev.shape == (6,) and np.iscomplexobj(ev)
        assert (np.diff(np.abs(ev)) <= 1e-12).all()  # largest first
        assert lstm.singular_max[name] >= lstm.radius[name] - 1e-9
    gru = spectrum(make("gru", hidden=6))
    assert set(gru.radius) == {"r", "z", "n"} and gru.main == "n"
    lm = make("gru", hidden=6)
    set_spectral_radius(lm.model, 0.5)
    assert spectrum(lm).radius["n"] == pytest.approx(0.5, rel=1e-5)  # the cache sees new weights


# ------------------------------------------------------------------------- limits
def test_long_text_is_refused_quickly_or_windowed():
    lm = make("lstm", layers=1, hidden=8)
    long_text = (CORPUS * 200)[:10_000]
    with pytest.raises(ProbeLimitError, match="read only its last") as info:
        jacobian_map(lm, long_text)
    assert info.value.fit is not None and "window=" not in str(info.value)  # no option nobody has
    with pytest.raises(ProbeLimitError, match="4,096") as info:
        trace(lm, long_text)
    assert info.value.fit == 4096
    with pytest.raises(ProbeLimitError, match="read only its last 4,096 tokens"):
        gradient_profile(lm, long_text)
    tr = trace(lm, long_text, window=50)
    assert len(tr.tokens) == 50 and tr.offset == 9_950 and tr.tokens == tuple(long_text[-50:])
    jm = jacobian_map(lm, long_text, window=20)
    assert jm.norms.shape == (20, 20)
    with pytest.raises(ConfigError):
        trace(lm, long_text, window=0)


def test_jacobian_limit_scales_with_state_size():
    assert probes.jacobian_fit(16) == probes.MAX_JACOBIAN_TOKENS
    assert 1 <= probes.jacobian_fit(1024) < probes.jacobian_fit(1024, lstm=True) < 32
    assert probes.jacobian_fit(20_000) == 0
    big = LoadedModel(build_model(ModelConfig(vocab_size=len(VOCAB), cell="lstm", embed=4, hidden=600), seed=0),
                      VOCAB)
    with pytest.raises(ProbeLimitError, match="state size 1200"):
        jacobian_map(big, CORPUS, method="exact")
    # The default takes the estimate where the exact map does not fit (or costs too much).
    jm = jacobian_map(big, CORPUS)
    assert jm.method == "estimated" and jm.norms.shape == (len(CORPUS), len(CORPUS))


def test_jacobian_window_fit_keeps_the_last_tokens_that_fit():
    from rnn_tui.engine.probes import jacobian_fit

    lm = make("lstm", layers=1, hidden=8)
    text = "the dog sat on the cat. " * 40  # 960 tokens: more than MAX_JACOBIAN_TOKENS
    fit = jacobian_fit(16, lstm=True)
    assert fit < len(text)
    jm = jacobian_map(lm, text, window="fit")
    assert len(jm.tokens) == fit and jm.offset == len(text) - fit
    assert "".join(jm.tokens) == text[-fit:]
