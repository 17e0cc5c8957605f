"""The estimated Jacobian map (engine/probes/estimate.py) against the exact products.

The exact map (float64 products of jacrev Jacobians) is the reference: the analytic per-step
Jacobians must equal it, the estimate must stay within 0.05 decades (~12 %) of it on short
texts for every cell, the last row must be exact when asked, and the bookkeeping (which rows,
how many probes) must say what was done.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from rnn_tui.engine.corpus import Vocab
from rnn_tui.engine.errors import ConfigError
from rnn_tui.engine.model import LoadedModel, ModelConfig, build_model, set_spectral_radius
from rnn_tui.engine.probes import jacobian_map
from rnn_tui.engine.probes.estimate import StepJacobians
from rnn_tui.engine.probes.recurrence import _layer_run, _step_jacobians

VOCAB = Vocab.build("abcdefghijklmnopqrstuvwxyz .,", "char")
TEXT = "the cat that we saw yesterday was happy, and the dog ran off to the mat."  # 72 chars
TOL_DECADES = 0.05  # the "within 10 % (0.05 decades in log10)"


def make(cell: str, hidden: int, seed: int = 0, layers: int = 1, nonlinearity: str = "auto",
         radius: float | None = None) -> LoadedModel:
    cfg = ModelConfig(vocab_size=len(VOCAB), cell=cell, embed=16, hidden=hidden, layers=layers,
                      nonlinearity=nonlinearity)
    model = build_model(cfg, seed=seed).eval()
    if radius is not None:
        set_spectral_radius(model, radius)
    return LoadedModel(model=model, vocab=VOCAB, meta={"corpus": "test"})


def below(T: int) -> tuple[np.ndarray, np.ndarray]:
    return np.tril_indices(T, -1)


# ------------------------------------------------------------- the per-step Jacobians
@pytest.mark.parametrize("cell,nl", [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "auto"), ("gru", "auto")])
@pytest.mark.parametrize("layer", [0, 1])
def test_analytic_step_jacobians_equal_jacrev(cell, nl, layer):
    lm = make(cell, 6, seed=3, layers=2, nonlinearity=nl)
    lm.model.double()
    ids = np.asarray(VOCAB.encode("the cat sat.").ids)
    with torch.no_grad():
        xs, prev, h, internals = _layer_run(lm.model, ids, layer)
        J = _step_jacobians(lm.model, layer, xs, prev, h)  # [T, D, D] by torch.func.jacrev
        jac = StepJacobians(lm.model, layer, xs, prev, h, internals, dtype=torch.float64)
    T, D = J.shape[0], J.shape[1]
    H = jac.H
    gen = torch.Generator().manual_seed(0)
    for t in range(T):
        Z = torch.randn(5, D, generator=gen, dtype=torch.float64)
        out_h = torch.empty(5, H, dtype=torch.float64)
        out_c = torch.empty(5, H, dtype=torch.float64) if cell == "lstm" else None
        jac.left(Z[:, :H].contiguous(), Z[:, H:].contiguous() if cell == "lstm" else None, t, out_h, out_c)
        got = torch.cat([out_h, out_c], 1) if cell == "lstm" else out_h
        torch.testing.assert_close(got, Z @ J[t], rtol=1e-10, atol=1e-12)
        V = torch.randn(D, 3, generator=gen, dtype=torch.float64)
        torch.testing.assert_close(jac.right(V, t), J[t] @ V, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(jac.frobenius(), J.flatten(1).norm(dim=1), rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------ accuracy
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("hidden,radius,seed", [(64, None, 0), (64, 1.5, 1), (128, None, 2)])
def test_estimate_within_a_twentieth_of_a_decade_of_the_exact_norms(cell, hidden, radius, seed):
    lm = make(cell, hidden, seed=seed, radius=radius)
    exact = jacobian_map(lm, TEXT, method="exact")
    T = len(exact.tokens)
    # Every row estimated with the default probe count, the last one too: the worst case.
    est = jacobian_map(lm, TEXT, method="estimate", rows="all", exact_last=False, seed=seed)
    assert est.method == "estimated" and (est.probes[1:] == 24).all() and est.probes[0] == 0
    t, k = below(T)
    diff = np.abs(est.log10_norms[t, k] - exact.log10_norms[t, k])
    assert np.isfinite(diff).all()
    assert diff.max() < TOL_DECADES, (diff.max(), np.unravel_index(diff.argmax(), diff.shape))
    assert diff.mean() < TOL_DECADES / 5  # unbiased: the typical error is far smaller
    np.testing.assert_allclose(np.diag(est.norms), math.sqrt(exact.dim))
    np.testing.assert_allclose(est.step_norms, exact.step_norms, rtol=1e-5)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_last_row_is_exact_and_probes_at_full_size_give_the_exact_map(cell):
    lm = make(cell, 40, seed=5)
    exact = jacobian_map(lm, TEXT, method="exact")
    T = len(exact.tokens)
    est = jacobian_map(lm, TEXT, method="estimate", rows=8, exact_last=True)
    assert est.probes[T - 1] == 0 and est.row_method(T - 1) == "exact"
    np.testing.assert_allclose(est.log10_norms[T - 1, :T - 1], exact.log10_norms[T - 1, :T - 1], atol=1e-5)
    # As many probes as the state has dimensions: the identity, every row exact.
    full = jacobian_map(lm, TEXT, method="estimate", rows="all", probes=exact.dim)
    assert (full.probes == 0).all() and full.describe_method() == "last row exact"
    t, k = below(T)
    np.testing.assert_allclose(full.log10_norms[t, k], exact.log10_norms[t, k], atol=1e-5)


def test_the_estimate_is_seeded():
    lm = make("lstm", 48, seed=1)
    a = jacobian_map(lm, TEXT, method="estimate", rows="all", exact_last=False, seed=7)
    b = jacobian_map(lm, TEXT, method="estimate", rows="all", exact_last=False, seed=7)
    c = jacobian_map(lm, TEXT, method="estimate", rows="all", exact_last=False, seed=8)
    np.testing.assert_array_equal(a.log10_norms, b.log10_norms)
    assert a.seed == 7 and not np.array_equal(a.log10_norms, c.log10_norms)


# ------------------------------------------------------------------------ the rows
def test_rows_at_display_resolution_and_their_bookkeeping():
    lm = make("gru", 48)
    text = (TEXT * 3)[:200]
    jm = jacobian_map(lm, text, method="estimate", rows=10)
    T = 200
    assert jm.norms.shape == (T, T) and len(jm.rows) == 10 and jm.rows[-1] == T - 1
    assert (np.diff(jm.rows) > 0).all() and (np.diff(jm.rows) <= math.ceil(T / 9)).all()
    skipped = np.setdiff1d(np.arange(T), jm.rows)
    assert np.isnan(jm.norms[skipped]).all() and (jm.probes[skipped] == -1).all()
    assert jm.row_method(int(skipped[0])) == "not computed"
    for t in jm.rows:
        assert np.isfinite(jm.log10_norms[t, :t + 1]).all() and np.isnan(jm.norms[t, t + 1:]).all()
    est_rows = [int(t) for t in jm.rows if 0 < t < T - 1]
    assert all(jm.row_method(t) == "estimated (24 probes)" for t in est_rows)
    assert jm.row_method(T - 1) == "exact"  # D = 48: the exact last row is cheap
    assert jm.describe_method() == "estimated with 24 probes a row, last row exact, 10 of 200 rows"
    data = jm.to_json()
    json.dumps(data, allow_nan=False)
    assert data["method"] == "estimated" and data["rows"] == jm.rows.tolist()
    assert data["probes"][T - 1] == 0 and data["probes"][int(skipped[0])] == -1
    picked = jacobian_map(lm, text, method="estimate", rows=[5, 50, 199])
    assert picked.rows.tolist() == [5, 50, 199]
    with pytest.raises(ConfigError):
        jacobian_map(lm, text, method="estimate", rows=[500])
    with pytest.raises(ConfigError):
        jacobian_map(lm, text, method="estimate", probes=1)
    with pytest.raises(ConfigError):
        jacobian_map(lm, text, method="fast")


def test_auto_is_exact_for_short_texts_and_estimates_long_ones():
    small = make("lstm", 24)
    jm = jacobian_map(small, "the cat sat on the mat.")
    assert jm.method == "exact" and (jm.probes == 0).all() and jm.rows.tolist() == list(range(len(jm.tokens)))
    assert jm.describe_method() == "exact" and jm.row_method(3) == "exact"
    assert jm.computed_rows.tolist() == list(range(len(jm.tokens)))
    big = make("rnn", 256)
    long = jacobian_map(big, (TEXT * 3)[:200])  # 69 tokens fit the exact map at H = 256
    assert long.method == "estimated" and long.offset == 0 and len(long.tokens) == 200
    assert long.probes[199] == 0  # D = 256: the last row is exact within LAST_ROW_WORK


def test_last_row_probes_follow_the_budget():
    from rnn_tui.engine.probes.recurrence import last_row_probes

    assert last_row_probes(200, 256, False, 24, None) == 256  # 200 * 256^3 is cheap: exact
    assert last_row_probes(200, 1024, True, 24, None) == 48  # too much work: twice the other rows'
    assert last_row_probes(200, 1024, True, 24, True) == 1024
    assert last_row_probes(200, 1024, True, 24, False) == 24


def test_estimate_reports_decay_and_growth_with_finite_logs():
    T = 300
    text = (TEXT * 5)[:T]
    shrink = make("rnn", 32, radius=1e-3, nonlinearity="tanh")
    jm = jacobian_map(shrink, text, method="estimate", rows=6)
    last = jm.log10_norms[T - 1]
    assert np.isfinite(last).all() and last[0] < -300  # far below float32's range, still a number
    # ReLU with W_hh = 1.5 I: every live unit grows 1.5x a step, ~35 decades over the text.
    grow = make("rnn", 32, nonlinearity="relu")
    with torch.no_grad():
        grow.model.rnn.weight_hh_l0.copy_(1.5 * torch.eye(32))
    T = 200
    text = text[:T]
    exact = jacobian_map(grow, text, method="exact")
    jm = jacobian_map(grow, text, method="estimate", rows=6, exact_last=False)
    for t in jm.rows:
        assert np.isfinite(jm.log10_norms[t, :t + 1]).all()
        np.testing.assert_allclose(jm.log10_norms[t, :t], exact.log10_norms[t, :t], atol=TOL_DECADES)
    assert jm.log10_norms[T - 1, 0] > 30
    json.dumps(jm.to_json(), allow_nan=False)
