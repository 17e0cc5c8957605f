"""Experiments on the real engine at small sizes: each checks its scientific claim, loosely but
for real, plus the registry, stop/progress, determinism and the `rnn-tui experiment` command.

Timings on 2 CPU cores (torch 2.13, one thread per run): the whole file takes ~30 s when the
machine is otherwise idle, ~50 s with other test suites running beside it; the slowest tests
are tbptt (5-8 s: fewer than 400 steps and neither window learns agreement), agreement (3-8 s)
and memory-horizon (3-5 s).
"""

from __future__ import annotations

import functools
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
         "memory-horizon", "spectral", "elman", "capacity", "saturation", "connectivity", "failure-modes")


@functools.lru_cache(maxsize=None)
def quick(name: str):
    """The quick run of an experiment, once per test session (claims and views share it)."""
    return run_experiment(name, quick=True)


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
def test_elman_tree_splits_nouns_from_verbs_and_puts_zog_with_the_humans():
    r = quick("elman")
    cats = dict(zip(r.words, r.categories))
    depth, left, right, lw, rw = r.splits[0]
    assert depth == 1 and {left, right} == {"verbs", "nouns + novel"}
    for side in (lw, rw):  # each side of the top split is all nouns or all verbs
        families = {cats[w].split("_")[0] for w in side if cats[w] != "NOVEL"}
        assert len(families) == 1
    names = [(a, b) for _, a, b, _, _ in r.splits]
    assert any({a, b} == {"inanimate nouns", "animate nouns + novel"} for a, b in names)
    assert "human" in r.novel_group and set(r.novel_neighbours) <= {"man", "woman", "girl", "boy"}
    assert r.linkage.shape == (len(r.words) - 1, 4) and sorted(r.order.tolist()) == list(range(len(r.words)))
    assert np.all(np.diff(r.linkage[:, 2]) >= -1e-9)  # Ward merges come in increasing height
    data = _json_ok(r)
    assert data["splits"][0][1] in ("verbs", "nouns + novel")


def test_ward_linkage_and_group_names():
    from rnn_tui.engine.experiments import group_name, leaves_of, ward_linkage

    pts = np.array([[0.0], [0.1], [10.0], [10.2], [30.0]])
    link = ward_linkage(pts)
    assert link[:2, :2].tolist() == [[0, 1], [2, 3]] and link[-1, 3] == 5
    assert sorted(leaves_of(link, 2 * 5 - 2, 5)) == [0, 1, 2, 3, 4]
    assert group_name(["NOUN_HUMAN", "NOUN_HUMAN"]) == "singular human nouns"
    assert group_name(["NOUN_HUMAN", "NOUN_ANIMAL_PL", "NOUN_FOOD"]) == "nouns"
    assert group_name(["VERB_TRAN", "VERB_EAT", "NOVEL"]) == "transitive verbs + novel"
    assert group_name(["VERB_TRAN", "NOUN_FOOD"]) == "mixed"


def test_capacity_recall_falls_with_n_and_rises_with_h():
    r = quick("capacity")
    acc = r.accuracy
    assert acc.shape == (2, 4) and np.isfinite(acc).all()
    assert (acc[:, 0] >= acc[:, -1]).all() and acc[1, 0] > acc[1, -1] + 0.3  # one symbol is easy, eight are not
    assert acc[1].mean() > acc[0].mean() + 0.1  # H = 32 recalls more than H = 8
    assert r.capacity_bits[1] > r.capacity_bits[0]
    assert (r.bits <= r.bits_needed[None, :] + 1e-9).all() and (r.bits >= 0).all()
    assert (acc >= 0).all() and (acc <= 1).all()
    from rnn_tui.engine.experiments import bits_recalled

    assert bits_recalled(1.0, 4, 8) == pytest.approx(12.0) and bits_recalled(1 / 8, 4, 8) == pytest.approx(0.0)
    _json_ok(r)


def test_saturation_forget_gates_open_while_training():
    r = quick("saturation")
    assert r.cells == ("lstm",) and set(r.left) == {"lstm.i.1", "lstm.f.1", "lstm.o.1"}
    for key in r.left:
        left, right = np.asarray(r.left[key]), np.asarray(r.right[key])
        assert left.shape == (32,) and ((left >= 0) & (right >= 0) & (left + right <= 1 + 1e-9)).all()
    opened = r.time_open[0]
    assert np.isfinite(opened).all() and opened[-1] > opened[0]  # more forget gates sit open after training
    _json_ok(r)


def test_saturation_recorder_is_a_trainer_callback():
    from rnn_tui.engine.corpus import load_corpus
    from rnn_tui.engine.saturation import SaturationRecorder, gate_saturation
    from rnn_tui.engine.train import TrainConfig, Trainer

    corpus = load_corpus("grammar", size=300)
    trainer = Trainer(TrainConfig(cell="gru", hidden=8, embed=8, steps=6, seq_len=16, batch=4, eval_every=0,
                                  eval_batches=1), corpus=corpus)
    rec = SaturationRecorder(trainer.model, corpus.val[:200], every=3)
    trainer.on_metrics = rec
    trainer.run()
    assert rec.steps == [0, 3, 6] and len(rec.fraction) == len(rec.time_open) == 3
    sat = gate_saturation(trainer.snapshot(), "the cat that we saw yesterday was happy")
    assert sat.gates == ("r", "z") and sat.right["z"].shape == (1, 8)
    with pytest.raises(ConfigError, match="gated cell"):
        gate_saturation(make_rnn_lm(), "the cat")


def make_rnn_lm():
    from conftest import make_tiny_lm

    return make_tiny_lm("rnn")


def test_connectivity_at_the_verb_for_the_bundled_cells():
    r = quick("connectivity")
    assert r.models == ("rnn", "lstm") and r.tokens[r.position] == "w" and r.position - r.subject == 23
    assert np.allclose(r.row[:, -1], 1.0)  # relative to the output's own input
    upper = np.triu(np.ones(r.norms.shape[1:], bool), 1)
    assert (r.norms[:, upper] == 0).all()  # causal: no output sees a later input
    assert (r.reach >= 1).all() and np.isfinite(r.at_subject).all()
    _json_ok(r)


def test_failure_modes_three_rows_each_measured():
    r = quick("failure-modes")
    assert [m[0] for m in r.modes] == ["vanishing gradients", "finite capacity", "curse of memory"]
    assert all(m[5] for m in r.modes)  # each names where it is shown in full
    assert 0 < r.gradient_at_subject < 1 and r.steps_back == 23
    # the curse: memory only near lambda = 1, and the sensitivity grows with it
    assert np.all(np.diff(r.memory) > 0) and np.all(np.diff(r.sensitivity) > 0)
    assert r.memory[-1] == pytest.approx(0.99 ** r.length, rel=1e-9)  # lambda^T for an orthogonal Q
    _json_ok(r)


@pytest.mark.parametrize("name", ["elman", "capacity", "saturation", "connectivity", "failure-modes"])
def test_lab_views_of_the_new_experiments_draw(name):
    """Every view of the new experiments draws its result: charts through plotext, text views
    through Rich, at 80 columns, without an error."""
    import io

    import plotext
    from rich.console import Console

    from rnn_tui.screens.lab import views_of

    r = quick(name)
    views = views_of(name)
    assert views and views[0].name != "result"
    for view in views:
        if view.is_text:
            console = Console(width=60, record=True, file=io.StringIO(), color_system=None)
            console.print(view.text(r, 60))
            assert console.export_text().strip(), view.name
        else:
            plotext.clf()
            plotext.plotsize(60, 18)
            view.draw(plotext, r, 60, 18)
            assert plotext.build().strip(), view.name
            assert all(label for label, _ in view.series_key(r))
    if name == "elman":  # the dendrogram: one row per word, the novel word among them
        console = Console(width=100, record=True, file=io.StringIO(), color_system=None)
        console.print(views[0].text(r, 100))
        text = console.export_text()
        assert "zog" in text and "┤" in text or "├" in text
        assert sum(1 for line in text.splitlines() if line.strip().split(" ")[0] in r.words) == len(r.words)


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


# ------------------------------------------------------------ findings say what the charts show
class _RecordingPlot:
    """Stands in for a plotext figure: records the title (and ignores the rest)."""

    def __init__(self):
        self.titles = []

    def title(self, text):
        self.titles.append(text)

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def test_clipping_chart_and_finding_quote_the_same_peak():
    from rnn_tui.engine.experiments.clipping import ClippingResult
    from rnn_tui.screens.lab.clipping import loss as draw_loss

    steps = np.arange(1, 101)
    blown = np.r_[np.full(30, 3.0), [22.6], np.full(69, 15.0)]  # peaks at step 31, well after the grad spike
    calm = np.linspace(3.0, 1.0, 100)
    r = ClippingResult(runs=("no clipping", "clip at 1"), steps=steps, loss=np.stack([blown, calm]),
                       grad_norm=np.ones((2, 100)), clipped_fraction=np.zeros(2), max_grad_norm=np.array([50., 1.]),
                       max_grad_step=np.array([40, 1]), peak_loss=np.array([22.6, 3.0]),
                       peak_loss_step=np.array([31, 1]), spikes=np.array([3, 0]), final_loss=np.array([15., 1.]),
                       val_loss=np.array([15., 1.]), diverged=np.array([False, False]),
                       blew_up=np.array([True, False]), uniform_loss=3.3, stop_reason=("", ""))
    plt = _RecordingPlot()
    draw_loss(plt, r, 80, 20)
    assert "no clipping peaks at 22.6 (cut off)" in plt.titles[-1]
    assert "loss peaked at 22.6 (step 31)" in r.findings()[0]


def test_init_schemes_says_which_scheme_blew_up():
    from rnn_tui.engine.experiments.init_schemes import InitResult

    S = 50
    calm = np.linspace(3.3, 1.2, S)
    blown = np.r_[np.full(10, 3.3), [183.0], np.full(S - 11, 2.5)]
    nan2 = np.full((2, 4), np.nan)
    r = InitResult(schemes=("default", "identity"), steps=np.arange(1, S + 1), loss=np.stack([calm, blown]),
                   val_loss=np.array([1.2, 2.5]), diverged=np.array([False, False]), tokens=("a",) * 4,
                   grad_init=nan2, grad_final=nan2, ratio_init=np.full(2, np.nan), ratio_final=np.full(2, np.nan),
                   radius_steps=np.arange(2), radius=np.full((2, 2), np.nan))
    text = " ".join(r.findings())
    assert "identity blew up: its loss peaked at 183 (step 11" in text and "default blew up" not in text


def test_tbptt_explains_a_dependency_longer_than_its_window():
    from rnn_tui.engine.experiments.tbptt import TbpttResult

    r = TbpttResult(seq_lens=np.array([8, 32]), distractors=np.array([0, 18]), accuracy=np.ones((2, 2)),
                    p_correct=np.ones((2, 2)), longest_solved=np.array([18, 18]), val_loss=np.ones(2),
                    loss=np.ones((2, 3)), level="word", settings={"solved_at": 0.9})
    short, long = r.findings()
    assert "up to 18 distractor words" in short and "hidden state is carried from window to window" in short
    assert "carried" not in long  # 18 words + subject and verb fit in 32


def test_zog_chart_labels_never_overlap():
    from rnn_tui.screens.lab.zog import _Labels

    placed = []

    class Plot:
        def text(self, text, x, y, color=None):
            placed.append((text, x, y))

    labels = _Labels((0.0, 10.0), (0.0, 10.0), 48, 15)  # 40 columns, 10 rows of plot
    plot = Plot()
    labels.place(plot, "object", 5.0, 5.0, None)
    labels.place(plot, "adj", 5.5, 5.0, None)  # would print over "object": left out
    labels.place(plot, "adverb", 5.0, 0.0, None)  # another row: kept
    assert [t for t, _, _ in placed] == ["object", "adverb"]


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
