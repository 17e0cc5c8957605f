"""Experiments on the real engine at small sizes: each checks its scientific claim, loosely but
for real, plus the registry, stop/progress, determinism and the `rnn-tui experiment` command.

Timings on 2 CPU cores (torch 2.13, one thread per run): the whole file takes ~30 s when the
machine is otherwise idle, ~50 s with other test suites running beside it; the slowest tests
are tbptt (5-8 s: fewer than 400 steps and neither window learns agreement), agreement (3-8 s)
and memory-horizon (3-5 s).
"""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest

from rnn_tui.cli import main
from rnn_tui.engine import dynamics
from rnn_tui.engine.corpus import agreement_items
from rnn_tui.engine.errors import ConfigError
from rnn_tui.engine.experiments import (
    EXPERIMENTS,
    balanced_agreement_corpus,
    count_spikes,
    flip_subject,
    get_experiment,
    grammatical,
    longest_solved,
    run_experiment,
)

NAMES = ("parity", "init-schemes", "clipping", "tbptt", "zog", "temperature", "agreement",
         "memory-horizon", "spectral")


def _json_ok(result) -> dict:
    data = result.to_json()
    json.dumps(data, allow_nan=False)  # NaN/inf must have become None
    return data


# ------------------------------------------------------------------ registry
def test_registry_names_and_explanations():
    assert tuple(EXPERIMENTS) == NAMES
    for name, exp in EXPERIMENTS.items():
        assert exp.name == name
        assert len(exp.explanation) == 2 and all(line.strip() for line in exp.explanation)
        exp.settings()  # defaults pass their own checks
        exp.settings(quick=True)


def test_unknown_names_and_settings_are_config_errors():
    with pytest.raises(ConfigError, match="unknown experiment 'nope'.*parity"):
        get_experiment("nope")
    with pytest.raises(ConfigError, match="no setting bogus"):
        get_experiment("spectral").settings({"bogus": 1})
    with pytest.raises(ConfigError, match="steps must be a positive whole number"):
        get_experiment("spectral").settings({"steps": 0})
    with pytest.raises(ConfigError, match="unknown cell"):
        run_experiment("agreement", {"cells": ["rnn", "transformer"], "steps": 1})
    # lists from JSON become the settings' tuples
    s = get_experiment("memory-horizon").settings({"models": [["rnn", 16]]})
    assert s.models == (("rnn", 16),)


# ------------------------------------------------------------------ the claims
def test_parity_two_units_learn_it_and_split_the_plane():
    r = run_experiment("parity", quick=True)
    assert r.accuracy > 0.95
    assert r.hidden.shape[1] == 2 and len(r.tokens) == len(r.parity) == r.hidden.shape[0]
    assert set(np.unique(r.parity)) <= {-1, 0, 1}
    # the head is linear in h: > 95% accuracy means even and odd lie on either side of a line
    assert np.linalg.norm(r.centroid_even - r.centroid_odd) > 0.2
    assert (r.screen_accuracy >= 0.99).sum() >= 1  # at least one start solved 2-bit XOR
    assert np.nanmin(r.accuracy_by_position) > 0.9  # all 16 positions, not just the first bits
    _json_ok(r)


def test_init_schemes_identity_and_orthogonal_keep_gradient_echo_stays_frozen():
    r = run_experiment("init-schemes", quick=True)
    i = {n: k for k, n in enumerate(r.schemes)}
    # at initialisation: IRNN passes most gradient to the first token, orthogonal more than default
    assert r.ratio_init[i["identity"]] > 1e3 * r.ratio_init[i["default"]]
    assert r.ratio_init[i["orthogonal"]] > r.ratio_init[i["default"]]
    echo = r.radius[i["echo"]]
    assert np.allclose(echo[np.isfinite(echo)], 0.9, atol=1e-6)  # frozen reservoir
    default = r.radius[i["default"]]
    assert abs(default[-1] - default[0]) > 0.05  # a trained W_hh moves
    assert r.loss.shape == (5, r.settings["steps"]) and np.isfinite(r.val_loss).all()
    assert r.grad_init.shape == r.grad_final.shape == (5, len(r.tokens))
    _json_ok(r)


def test_clipping_keeps_the_run_learning_where_no_clipping_blows_up():
    r = run_experiment("clipping", quick=True)
    off, on = 0, 1
    assert r.blew_up[off] and not r.blew_up[on]
    assert np.isfinite(r.loss[on]).all()
    assert r.final_loss[on] < 0.5 * r.uniform_loss < r.final_loss[off]
    assert r.max_grad_norm[off] > r.max_grad_norm[on]
    _json_ok(r)


def test_tbptt_long_windows_learn_longer_dependencies():
    r = run_experiment("tbptt", {"seq_lens": (8, 128), "steps": 400, "distractors": (0, 6, 12, 20, 30),
                                 "pairs": 10})
    short, long = r.longest_solved
    assert long >= 12 > short  # 128-word windows learn the whole training range, 8-word ones do not
    assert r.accuracy[1, -1] > r.accuracy[0, -1]
    _json_ok(r)


def test_zog_lands_with_the_human_nouns_in_context():
    r = run_experiment("zog", quick=True)
    assert r.nearest_context == "NOUN_HUMAN"
    assert r.nearest_read.startswith("NOUN_")  # its spelling alone still makes it a noun ("dog")
    assert set(r.nearest_words_context[:3]) <= {"man", "woman", "girl", "boy"}
    assert r.points_read.shape == (len(r.words), 2) and r.novel_context.shape == (2,)
    assert "zog" not in r.words
    _json_ok(r)


def test_temperature_trades_grammar_for_variety():
    r = run_experiment("temperature", {"length": 300})
    lo, hi = 0, len(r.temperatures) - 1
    assert r.stats["distinct"][hi] > r.stats["distinct"][lo]
    assert r.stats["in_lexicon"][hi] < r.stats["in_lexicon"][lo]
    assert r.stats["grammatical"][lo] > r.stats["grammatical"][hi]
    assert all(len(t) > 0 for t in r.texts)
    _json_ok(r)


def test_agreement_lstm_beats_the_vanilla_rnn_at_long_distractors():
    # 450 steps: the LSTM has it (1.00 / 1.00 / 0.95 at 15 / 20 / 30), the RNN is at chance (0.50)
    r = run_experiment("agreement", {"cells": ("rnn", "lstm"), "steps": 450, "distractors": (0, 15, 20, 30),
                                     "pairs": 10})
    far = r.distractors >= 15
    rnn, lstm = r.accuracy[0, far].mean(), r.accuracy[1, far].mean()
    assert lstm >= 0.8 and rnn <= 0.7 and lstm - rnn >= 0.25
    assert r.accuracy[:, 0].min() >= 0.9  # both get "the cat was" right
    # parameters: RNN ~ n^2, LSTM ~ 4 n^2 per layer
    ratio = r.recurrent_parameters[1] / r.recurrent_parameters[0]
    assert np.allclose(ratio, 4.0)
    _json_ok(r)


def test_memory_horizon_gates_reach_further_and_width_buys_little():
    r = run_experiment("memory-horizon", {"models": (("rnn", 32), ("rnn", 64), ("lstm", 32)), "steps": 200,
                                          "max_lag": 25, "contexts": 48})
    assert (r.tv[:, 0] > 0.3).all() and (r.tv[:, -1] < r.threshold).all()
    rnn32, rnn64, lstm32 = r.horizon
    assert 2 <= rnn32 < 25 and lstm32 >= rnn32
    assert abs(rnn64 - rnn32) <= 5  # doubling H buys the vanilla RNN a few tokens at most
    _json_ok(r)


def test_spectral_decay_edge_and_explosion():
    r = run_experiment("spectral", quick=True)
    rho = list(r.radii)
    h0 = r.norm_tanh[:, 0]
    assert r.norm_tanh[rho.index(0.5), -1] < 1e-3 * h0[0]  # decays
    assert r.norm_tanh[rho.index(1.5), -1] > 0.5 * h0[0]  # does not decay (saturates)
    assert r.norm_linear[rho.index(1.5), -1] > 1e3 * h0[0]  # the linear map explodes
    assert np.allclose(r.rate_linear, np.log(r.radii), atol=0.05)  # growth rate ~ ln rho
    assert r.grad_ratio[rho.index(1.5)] > 1e6 * r.grad_ratio[rho.index(0.5)]
    _json_ok(r)


# ------------------------------------------------------------------ helpers
def test_dynamics_helpers():
    w = dynamics.random_recurrent(16, seed=1)
    assert math.isclose(dynamics.spectral_radius(w), 1.0, rel_tol=1e-9)
    n = dynamics.recurrence_alone(w, 0.5, 20, "linear")
    assert n.shape == (21,) and n[-1] < 1e-4
    assert dynamics.horizon_of(np.array([0.5, 0.1, 0.01, 0.2]), 0.05) == 2
    assert dynamics.horizon_of(np.array([0.5, 0.4]), 0.05) == 2
    with pytest.raises(ConfigError):
        dynamics.recurrence_alone(w, 0.5, 5, "relu")
    assert count_spikes(np.array([1.0] * 10 + [50.0] + [1.0] * 5)) == 1
    assert longest_solved(np.array([0, 5, 10, 15]), np.array([1.0, 0.95, 0.5, 1.0])) == 5


def test_minimal_pairs_and_the_balanced_corpus():
    item = agreement_items(4, 2, seed=3)[1]
    twin = flip_subject(item)
    assert twin.correct == item.wrong and twin.plural != item.plural
    assert twin.prefix.split()[2:] == item.prefix.split()[2:]  # the clause is untouched
    corpus = balanced_agreement_corpus("word", size=300)
    assert "were" in corpus.vocab and len(corpus.train) > len(corpus.val) > 0
    assert grammatical("the girl reads the book".split())
    assert not grammatical("the book reads the girl".split())


# ------------------------------------------------------------------ stop, progress, determinism
def test_stop_returns_early_with_a_partial_result():
    stop = threading.Event()
    seen: list[float] = []

    def progress(fraction, message):
        seen.append(fraction)
        if fraction > 0.2:
            stop.set()

    r = run_experiment("agreement", stop=stop, progress=progress)  # default settings: ~10 s if not stopped
    assert r.stopped
    assert max(seen) < 0.9  # it returned well before the end, not after finishing
    assert np.isnan(r.accuracy[-1]).all()  # the last cell never ran
    assert all(0.0 <= f <= 1.0 for f in seen)
    data = _json_ok(r)
    assert data["stopped"] is True and data["accuracy"][-1][0] is None


def test_runs_are_deterministic():
    a = run_experiment("clipping", {"steps": 15})
    b = run_experiment("clipping", {"steps": 15})
    assert np.array_equal(a.loss, b.loss, equal_nan=True)
    assert np.array_equal(a.grad_norm, b.grad_norm, equal_nan=True)


# ------------------------------------------------------------------ command line
def test_cli_experiment_list_text_and_json(capsys):
    assert main(["experiment", "--list"]) == 0
    out = capsys.readouterr().out
    for name in NAMES:
        assert any(line.startswith(name + " ") for line in out.splitlines())
    assert len(out.strip().splitlines()) == 2 * len(NAMES)

    assert main(["experiment", "spectral", "--quick"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("spectral:") and "rho=0.5" in out

    assert main(["experiment", "spectral", "--quick", "--json", "--set", "steps=12"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["experiment"] == "spectral" and len(data["norm_tanh"][0]) == 13
    assert data["findings"]


def test_cli_experiment_errors(capsys):
    for argv in (["experiment", "nope"], ["experiment"], ["experiment", "spectral", "--set", "nokey"],
                 ["experiment", "spectral", "--set", "bogus=1"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        lines = [line for line in err.strip().splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("rnn-tui: error:") and "Traceback" not in err


def test_train_agreement_models_keeps_the_models_and_says_how_far_a_stop_got():
    from rnn_tui.engine.experiments import train_agreement_models

    s = get_experiment("agreement").settings(dict(steps=30, hidden=8, embed=8, seq_len=16, batch=4,
                                                 distractors=(0, 2), pairs=3))
    stop = threading.Event()

    def progress(fraction, message):
        if fraction > 0.45:  # part-way through the second of three cells
            stop.set()

    out = train_agreement_models(s, stop, progress)
    assert set(out.parameters) == {"rnn", "lstm", "gru"}
    assert out.steps["rnn"] == 30 and 0 < out.steps["lstm"] < 30 and "gru" not in out.steps
    assert set(out.models) == set(out.curves) == set(out.loss) == {"rnn", "lstm"}
    assert len(out.loss["rnn"]) == 30 and out.models["lstm"].config.cell == "lstm"
    assert out.parameters["lstm"] == out.models["lstm"].config.parameter_count()


def test_flip_number_makes_a_minimal_pair_that_keeps_its_attractors():
    from rnn_tui.engine.corpus import agreement_categories, agreement_items
    from rnn_tui.engine.experiments import flip_number

    cats = agreement_categories()
    for d in (0, 2, 5, 9, 13):
        item = agreement_items(d, 1, seed=d)[0]
        pair = flip_number(item)
        assert pair.plural != item.plural and pair.correct == item.wrong
        assert flip_number(pair) == item
        a, b = item.prefix.split(), pair.prefix.split()
        assert len(a) == len(b) and sum(x != y for x, y in zip(a, b)) >= 1
        for x, y in zip(a, b):
            if cats.get(x, "").endswith(("_SG", "_PL")):  # every numbered word changed number
                assert cats[x][-2:] != cats[y][-2:]
            else:
                assert x == y


def test_memory_horizon_reports_each_lag_and_stops_between_them():
    """The slow part after training (perturbing every lag) reports its progress and stops."""
    stop = threading.Event()
    seen: list[tuple[float, str]] = []

    def progress(fraction, message):
        seen.append((fraction, message))
        if message.endswith("lag 3/20"):
            stop.set()

    r = run_experiment("memory-horizon", {"models": (("rnn", 16),), "steps": 20, "max_lag": 20, "contexts": 16},
                       stop=stop, progress=progress)
    lags = [m for _, m in seen if ": lag " in m]
    assert lags[:3] == ["rnn H=16: lag 1/20", "rnn H=16: lag 2/20", "rnn H=16: lag 3/20"]
    assert len(lags) == 3 and r.stopped  # no lag after the stop
    assert np.isfinite(r.tv[0, :3]).all() and np.isnan(r.tv[0, 3:]).all()
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and 0.9 <= fractions[-1] <= 1.0
