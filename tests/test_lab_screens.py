"""Pilot tests for modes 5-8 (dynamics, compare, lab, inspector): real engine, tiny models."""

from __future__ import annotations


import time

import numpy as np
import pytest

import rnn_tui.screens.dynamics.screen as dynamics_screen
import rnn_tui.session as session
from rnn_tui.app import RnnTuiApp
from rnn_tui.engine.dynamics import lyapunov_rate
from rnn_tui.screens.dynamics import DynamicsScreen, regime, sparkline
from rnn_tui.screens.inspector import InspectorScreen, span_of

from conftest import make_tiny_lm
from pilot_helpers import notes, settle, wait_for

SIZE = (80, 24)


@pytest.fixture(autouse=True)
def tiny_world(monkeypatch, tiny_bundled):
    """Tiny bundled stand-ins and a short corpus for the inspector."""
    monkeypatch.setattr(dynamics_screen, "HORIZON_CONTEXTS", 16)
    monkeypatch.setattr(InspectorScreen, "corpus_limit", 6000)


def make_app(lm=None) -> RnnTuiApp:
    return RnnTuiApp(lm=lm if lm is not None else make_tiny_lm("lstm"), cursor_blink=False, device="cpu")


# ------------------------------------------------------------------- pure helpers
def test_helpers():
    assert sparkline([1, 2, 3], 10) == "▁▅█"
    assert sparkline([2, 2], 10) == "▄▄"
    assert sparkline([], 5) == ""
    assert regime(-0.1)[1] == "decay" and regime(0.1)[1] == "grow"
    assert regime(0.0, np.array([1.0, 3.0, 3.0]))[0].startswith("grew")
    assert regime(0.0, np.array([1.0, 1.0, 1.0]))[1] == "edge"
    assert span_of(5, 3) == (3, 6)
    assert span_of(1, 4) == (0, 2)


def test_lyapunov_rate_of_a_contraction():
    from rnn_tui.engine.model import set_spectral_radius
    from rnn_tui.engine.probes import jacobian_map

    lm = make_tiny_lm("rnn")
    set_spectral_radius(lm.model, 0.3)
    assert lyapunov_rate(jacobian_map(lm, "the cat was happy")) < -0.5


def test_bindings_have_ids_and_tooltips():
    for cls in (DynamicsScreen, InspectorScreen):
        for binding in cls.BINDINGS:
            assert binding.id and binding.tooltip, binding
    keys = {key: b.id for b in RnnTuiApp.BINDINGS for key in b.key.split(",")}
    for key, mode in zip("5678", ("dynamics", "compare", "lab", "inspector")):
        assert keys[key] == f"mode.{mode}"


# ------------------------------------------------------------------- inspector
async def test_inspector_span_threshold_matches_and_attribution():
    from rnn_tui.engine.units import find_matches, select_units, trace_values

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("8")
        screen = app.screen
        assert isinstance(screen, InspectorScreen)
        await wait_for(pilot, lambda: screen.matches is not None or (screen.states and not len(screen.units)),
                       what="the first search")
        await settle(pilot)
        # The default span is the second word ("cat"), ending at the cursor.
        assert span_of(screen.cursor, screen.span_len) == (4, 7)
        values = trace_values(screen.trace, "hidden", 0)
        assert screen.units.tolist() == select_units(values, (4, 7), 0.5).tolist()

        # Lower the threshold until some units are on; the search agrees with the engine's.
        for _ in range(12):
            if len(screen.units) >= 1:
                break
            await pilot.press("minus")
        await settle(pilot)
        assert len(screen.units) >= 1
        states = next(iter(screen.states.values()))
        assert states.n_tokens == 6000
        want = find_matches(states, screen.units, screen.threshold, screen.span_len, top=50, context=60)
        assert screen.matches is not None
        assert screen.matches.total == want.total
        assert [m.start for m in screen.matches.matches] == [m.start for m in want.matches]

        # Keys move and grow the span, and toggle "off around".
        await pilot.press("right")
        assert span_of(screen.cursor, screen.span_len) == (5, 8)
        await pilot.press("shift+right")
        assert span_of(screen.cursor, screen.span_len) == (5, 9)
        await pilot.press("left_square_bracket")
        assert span_of(screen.cursor, screen.span_len) == (5, 8)
        await pilot.press("o")
        assert screen.off_outside
        thr = screen.threshold
        await pilot.press("plus")
        assert screen.threshold == pytest.approx(thr + 0.05)
        await settle(pilot)
        values = trace_values(screen.trace, "hidden", 0)
        assert screen.units.tolist() == select_units(values, (5, 8), screen.threshold, True).tolist()

        # Attribution for the prediction at the span's end; a toggles the method.
        await wait_for(pilot, lambda: screen.attribution is not None and screen.attribution.position == 7,
                       what="the attribution")
        assert screen.attribution.method == "grad_x_input"
        await pilot.press("a")
        await wait_for(pilot, lambda: screen.attribution.method == "occlusion", what="occlusion")
        assert np.isnan(screen.attribution.scores[8:]).all()

        # v: the cell state, encoded once more for the corpus (and cached).
        await pilot.press("v")
        assert screen.value == "cell"
        await settle(pilot)
        await wait_for(pilot, lambda: screen.corpus_key() in screen.states, what="the cell encode")
        assert len(screen.states) == 2
        screen_text = str(screen.query_one("#in-info").content)
        assert "cell" in screen_text and "occlusion" in screen_text
        assert not [n for n in notes(app) if "Error" in n]


async def test_inspector_follows_the_sentence_and_vanilla_has_no_value_key():
    app = make_app(make_tiny_lm("rnn"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("8")
        screen = app.screen
        await wait_for(pilot, lambda: screen.trace is not None, what="the trace")
        assert screen.check_action("cycle_value", ()) is None  # a vanilla RNN has only h
        app.set_sentence("the dog was sad")
        await wait_for(pilot, lambda: screen.trace is not None and len(screen.trace.tokens) == 15,
                       what="the new sentence")
        assert span_of(screen.cursor, screen.span_len) == (4, 7)  # "dog"
        for _ in range(20):
            await pilot.press("right")
        assert screen.cursor == 14
        await settle(pilot)
        assert app.is_running


# ------------------------------------------------------------------- dynamics
async def test_dynamics_spectrum_recurrence_and_views():
    from rnn_tui.engine.probes import spectrum

    lm = make_tiny_lm("rnn")
    app = make_app(lm)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("5")
        screen = app.screen
        assert isinstance(screen, DynamicsScreen)
        await wait_for(pilot, lambda: screen.spec is not None, what="the spectrum")
        want = spectrum(lm)
        assert screen.spec.own_radius == pytest.approx(want.radius["W_hh"])
        assert screen.block == "W_hh"
        assert "chosen" not in screen.spec.curves
        # r: 0.5 decays; 1.5 with the linear map explodes.
        await pilot.press("r")
        await wait_for(pilot, lambda: "chosen" in screen.spec.curves, what="rho 0.5")
        assert screen.spec.rates["chosen"] < -0.1
        for _ in range(4):
            await pilot.press("r")
        await pilot.press("t")
        await wait_for(pilot, lambda: screen.spec.key[1] == 1.5 and screen.spec.key[2] == "linear",
                       what="rho 1.5 linear")
        assert screen.spec.rates["chosen"] == pytest.approx(np.log(1.5), abs=0.1)
        # v: the Lyapunov map and the memory horizon.
        await pilot.press("v")
        assert screen.view == "memory"
        await wait_for(pilot, lambda: screen.lyap is not None and screen.horizon is not None,
                       what="lyapunov and horizon", timeout=60)
        assert screen.lyap.jacobian.norms.shape[0] == len(app.sentence)
        assert set(screen.horizon.curves) == {"current", "rnn", "lstm", "gru"}
        assert all(not isinstance(c, str) for c in screen.horizon.curves.values())
        await pilot.press("m")
        await wait_for(pilot, lambda: screen.lyap is not None and screen.lyapunov.key[1] == "rnn",
                       what="the bundled rnn's map")
        await settle(pilot)
        assert not [n for n in notes(app) if "Error" in n]


async def test_dynamics_samples_the_radius_while_training():
    app = make_app(make_tiny_lm("gru"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        history = app.session.radius_history
        assert history == []
        app.trainer = object()  # what the training screen sets while it trains
        # Recorded from the first snapshot on, before screen 5 was ever opened.
        for step, seed in ((10, 2), (20, 3)):
            lm = make_tiny_lm("gru", seed=seed)
            lm.meta["metrics"] = {"step": step}
            app.set_model(lm, announce=False)
            await settle(pilot)
        assert [s for s, _ in history] == [10, 20]
        assert all(r > 0 for _, r in history)
        await pilot.press("5")
        await settle(pilot)
        note = app.screen.query_one("#dy-eig-note").render()
        assert "ρ training" in str(note.renderables[1]) and "@20" in str(note.renderables[1])
        app.trainer = None


# ------------------------------------------------------------------- lab
LAB_TINY = {
    "spectral": dict(steps=20, hidden=16),
    "temperature": dict(length=40),
    "clipping": dict(steps=5000, hidden=16, embed=8, seq_len=16, batch=4),
}


@pytest.fixture
def tiny_lab(monkeypatch):
    from rnn_tui.screens.lab import LabScreen

    monkeypatch.setattr(LabScreen, "overrides", LAB_TINY)
    monkeypatch.setattr(session, "load_bundled", lambda name: make_tiny_lm(name, seed=1, level="word"))


async def test_lab_runs_an_experiment_cycles_views_and_stops(tiny_lab):
    from rnn_tui.engine.experiments import EXPERIMENTS
    from rnn_tui.screens.lab import LabScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("7")
        screen = app.screen
        assert isinstance(screen, LabScreen)
        await pilot.pause()
        assert screen.names == tuple(EXPERIMENTS)
        explain = str(screen.query_one("#lab-explain").content)
        assert EXPERIMENTS["parity"].explanation[0] in explain.replace("\n", " ")
        # Go to "spectral" with the keyboard and run it.
        for _ in range(screen.names.index("spectral")):
            await pilot.press("down")
        assert screen.selected == "spectral"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "spectral" in app.session.lab_results, what="the spectral result")
        await settle(pilot)
        result = app.session.lab_results["spectral"]
        assert result.norm_tanh.shape == (5, 21) and not result.stopped
        assert screen.view_of("spectral") == "tanh"
        await pilot.press("v")
        assert screen.view_of("spectral") == "linear"
        # Temperature: a text view with the samples side by side.
        screen.select("temperature")
        await pilot.press("r")
        await wait_for(pilot, lambda: "temperature" in app.session.lab_results, what="temperature")
        await settle(pilot)
        assert screen.query_one("#lab-text").display and not screen.query_one("#lab-chart").display
        # A long run stopped with escape keeps its partial result.
        screen.select("clipping")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.progress[0] > 0.01, what="progress")
        assert screen.running == "clipping"
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.running is None, what="the stop", timeout=30)
        assert app.session.lab_results["clipping"].stopped
        assert not [n for n in notes(app) if "Error" in n]


async def test_palette_offers_the_screens_and_the_experiments(tiny_lab):
    from rnn_tui.commands import RnnCommands

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        names = [name for name, _, _ in RnnCommands(app.screen)._commands()]
        for wanted in ("Go to Dynamics", "Go to Compare", "Go to Lab", "Go to Inspector",
                       "Run experiment: parity", "Run experiment: memory-horizon"):
            assert wanted in names, wanted
        from rnn_tui.commands import run_experiment

        run_experiment(app, "spectral")
        await wait_for(pilot, lambda: "spectral" in app.session.lab_results, what="palette run")
        assert app.current_mode == "lab"


# ------------------------------------------------------------------- compare
COMPARE_TINY = dict(steps=25, hidden=16, embed=8, seq_len=16, batch=8, distractors=(0, 3, 6), pairs=4)


async def test_compare_trains_three_cells_and_steps_the_distractor(tiny_lab, monkeypatch):
    from rnn_tui.engine.experiments import recurrent_parameters
    from rnn_tui.screens.compare import CompareScreen

    monkeypatch.setattr(CompareScreen, "overrides", COMPARE_TINY)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("6")
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await settle(pilot)
        table = screen.params["table"]
        # the recurrent layer at the models' own input size (embed=8): the one count the screen shows
        assert table["lstm"][16] == recurrent_parameters("lstm", 16, 8) == 4 * table["rnn"][16]
        assert screen.item is not None and screen.item.distractor_words == 4
        await pilot.press("t")
        await wait_for(pilot, lambda: set(screen.models) == {"rnn", "lstm", "gru"} and not screen.training,
                       what="three trained models", timeout=60)
        await settle(pilot)
        assert all(0.0 <= screen.p_right[c] <= 1.0 for c in ("rnn", "lstm", "gru"))
        assert list(screen.curves["rnn"].distractors) == [0, 3, 6]
        assert "25 steps each" in screen.source
        await pilot.press("right")
        await settle(pilot)
        assert screen.item.distractor_words == 5
        for _ in range(3):  # the slider stops where the accuracy chart does (6 words here)
            await pilot.press("right")
        await settle(pilot)
        assert screen.distractor == screen.max_distractor() == 6
        assert any("longest the accuracy chart measures" in n for n in notes(app))
        for _ in range(8):
            await pilot.press("minus")
        await settle(pilot)
        assert screen.distractor == 0 and screen.item.distractor_words == 0
        await pilot.press("p")
        await settle(pilot)
        assert not screen.item.plural
        await pilot.press("b")
        await wait_for(pilot, lambda: screen.source.startswith("bundled"), what="bundled models")
        assert not [n for n in notes(app) if "Error" in n]


def test_horizon_per_size_from_a_lab_result():
    from rnn_tui.engine.experiments.memory_horizon import MemoryResult
    from rnn_tui.screens.dynamics import lab_horizon_table

    def result(measured):
        nan = np.full((4, 2), np.nan)
        return MemoryResult(labels=("rnn H=32", "rnn H=64", "lstm H=64", "rnn H=128"),
                            cells=("rnn", "rnn", "lstm", "rnn"), hidden=np.array([32, 64, 64, 128]),
                            lags=np.arange(1, 3), tv=nan, tv_sem=nan, kl=nan, horizon=np.array([3, 4, 12, 0]),
                            threshold=0.02, val_loss=np.ones(4), parameters=np.ones(4, dtype=np.int64),
                            measured=np.array(measured), settings={}, seconds=0.0, stopped=not all(measured))

    assert lab_horizon_table({"memory-horizon": result([True, True, True, False])}) == \
        "per hidden size: rnn H32:3 H64:4 · lstm H64:12"
    assert lab_horizon_table({}) == ""
    # A stopped run names only what it measured: no "H=64 -> H=128: horizon 4 -> 0".
    partial = result([True, True, True, False])
    findings = " ".join(partial.findings())
    assert "H=128" not in findings.split("not measured")[0] and "not measured (stopped first): rnn H=128" in findings
    assert "not measured" in partial.table()[-1]
    full = " ".join(result([True, True, True, True]).findings())
    assert "H=64 -> H=128: horizon 4 -> 0" in full


def test_compare_counts_parameters_one_way():
    from rnn_tui.engine.experiments import recurrent_parameters
    from rnn_tui.engine.model import ModelConfig
    from rnn_tui.screens.compare import recurrent_count

    # The bars' count of a model is the table's count at its sizes (one definition).
    for cell in ("rnn", "lstm", "gru"):
        c = ModelConfig(vocab_size=30, cell=cell, embed=32, hidden=64)
        assert recurrent_count(c) == recurrent_parameters(cell, 64, 32)
    two = ModelConfig(vocab_size=30, cell="lstm", embed=32, hidden=64, layers=2)
    assert recurrent_count(two) == recurrent_parameters("lstm", 64, 32) + recurrent_parameters("lstm", 64, 64)




async def test_the_inspector_refuses_a_sentence_over_the_limit_and_offers_its_end():
    from rnn_tui.engine.config import MAX_TRACE_TOKENS
    from rnn_tui.screens.help import TextPrompt

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("8")
        screen = app.screen
        before = app.sentence
        screen.action_edit()
        await pilot.pause()
        prompt = app.screen
        assert isinstance(prompt, TextPrompt)
        pasted = "the dog was sad. " * 400  # 6,800 tokens
        prompt.query_one("#prompt-input").value = pasted
        await pilot.press("enter")
        await settle(pilot)
        assert app.sentence == before and app.sentence_version == 0
        again = app.screen  # a prompt again, holding the end that fits
        assert isinstance(again, TextPrompt) and again is not prompt
        assert again.query_one("#prompt-input").value == pasted.strip()[-MAX_TRACE_TOKENS:].lstrip()
        await pilot.press("escape")  # escape: the sentence stays as it was
        await settle(pilot)
        assert app.sentence == before and not isinstance(app.screen, TextPrompt)


def _plain(renderable) -> str:
    import io

    from rich.console import Console

    console = Console(width=200, record=True, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text()


async def test_inspector_index_stops_on_escape_and_is_cached_by_model_and_corpus(monkeypatch):
    """The corpus index shows its progress, stops on escape (the part done is searched), encodes
    it all on a second escape, and comes from the session's cache on a second visit: a new
    model_version with the same weights (the model loaded again) does not encode again."""
    import rnn_tui.engine.units as units

    monkeypatch.setattr(InspectorScreen, "corpus_limit", 20000)
    calls = []
    real = units.encode_corpus_states

    def slow(*args, stop=None, progress=None, **kw):  # small steps, so escape lands mid-way
        calls.append(1)

        def report(done, total):
            progress(done, total)
            time.sleep(0.02)
        return real(*args, stop=stop, progress=report, chunk=4, streams=8, **kw)

    monkeypatch.setattr(units, "encode_corpus_states", slow)
    lm = make_tiny_lm("lstm")
    app = make_app(lm)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("8")
        screen = app.screen
        await wait_for(pilot, lambda: screen.progress is not None and screen.progress[0] > 0,
                       what="progress of the encode")
        assert "escape stops" in _plain(screen.query_one("#in-matches").render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.corpus_key() in screen.states, what="the stopped index")
        states = screen.states[screen.corpus_key()]
        assert not states.complete and 0 < states.steps_done < states.steps_total
        assert "encode stopped at" in _plain(screen.query_one("#in-matches").render())
        await pilot.press("escape")  # encode it all
        await wait_for(pilot, lambda: screen.corpus_key() in screen.states
                       and screen.states[screen.corpus_key()].complete, timeout=60, what="the whole index")
        assert len(calls) == 2
        # The same weights again (a new model version): from the session's cache, no encode.
        import copy

        app.set_model(copy.deepcopy(lm))
        await wait_for(pilot, lambda: screen.corpus_key() in screen.states, what="the cached index")
        assert len(calls) == 2 and screen.states[screen.corpus_key()].complete
