"""Pilot tests for mode 3, Gradients: real probes on tiny seeded models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rnn_tui.app
import rnn_tui.session as session
from rnn_tui.app import DEFAULT_SENTENCE, RnnTuiApp
from rnn_tui.screens.gradients import GradientsScreen, ratio_words, underflow_floor
from rnn_tui.widgets.chart import Chart

from conftest import make_tiny_lm
from pilot_helpers import text_of, wait_for

SIZE = (80, 24)


class GradientsFirstApp(RnnTuiApp):
    """The real app, opening on the gradients screen."""

    DEFAULT_MODE = "gradients"
    CSS_PATH = str(Path(rnn_tui.app.__file__).with_name("app.tcss"))


pytestmark = pytest.mark.usefixtures("tiny_bundled")  # conftest: tiny bundled stand-ins


@pytest.fixture(autouse=True)
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def underflowing_rnn():
    """A vanilla RNN whose recurrence shrinks everything 50x a step: over the default
    sentence the early gradients underflow to exactly zero in float32."""
    from rnn_tui.engine.model import set_spectral_radius

    lm = make_tiny_lm("rnn")
    set_spectral_radius(lm.model, 0.02)
    return lm


async def computed(pilot) -> GradientsScreen:
    screen = pilot.app.screen
    assert isinstance(screen, GradientsScreen)
    await wait_for(pilot, lambda: screen.result is not None and not screen.computing,
                   what="the gradients")
    await pilot.pause()
    return screen


def test_ratio_words_and_floor():
    assert ratio_words(0.5, False).endswith("(kept)")
    assert ratio_words(1e-2, False).endswith("(fades)")
    assert ratio_words(1e-9, False).endswith("(vanishes)")
    assert ratio_words(0.0, True) == "exactly 0 (underflow)"
    assert underflow_floor(np.array([0.0, 1e-8, 1.0])) == pytest.approx(1e-9)
    assert underflow_floor(np.array([0.0])) > 0


async def test_profiles_for_every_cell_in_plain_words():
    app = GradientsFirstApp(lm=make_tiny_lm("lstm"), cursor_blink=False, device="cpu")
    async with app.run_test(size=SIZE) as pilot:
        screen = await computed(pilot)
        names = [e.name for e in screen.result.entries]
        assert names == ["current", "rnn", "lstm", "gru"]
        assert all(e.profile is not None for e in screen.result.entries)
        # The default loss: the prediction that decides the verb's number (the letter after "w").
        assert screen.result.mode == "verb"
        current = screen.result.entries[0].profile
        assert current.mode == "verb" and current.subject_word == "cat"
        assert DEFAULT_SENTENCE[current.position] == "w" and current.dc is not None  # an LSTM: dL/dc too
        words = text_of(screen, "#gr-words")
        assert "of the verb's gradient, the subject 'cat' (23 back) gets:" in words
        for name in ("this", "rnn", "lstm", "gru"):
            assert f"■ {name} " in words
        # which units carry the number is worked out, but an untrained LSTM that does not know
        # the number (it says "was" for both twins) gets no explanation of a memory it lacks
        assert screen.result.carriers is not None and not screen.result.carriers.knows_number
        assert "carry the number" not in words
        assert "‖dL/dc_t‖ this lstm's cell state" in words and "subject · loss" in words
        chart = screen.query_one("#gr-chart", Chart)
        chart.render()
        assert chart.drawn.underflow_points == 0
        assert "the verb's number" in text_of(screen, "#gr-info")
        assert "computing" not in text_of(screen, "#gr-info")

        # m: the loss at the last token.
        await pilot.press("m")
        assert screen.loss_mode == "last"
        screen = await computed(pilot)
        assert screen.result.entries[0].profile.mode == "last"
        assert "first token's gradient is" in text_of(screen, "#gr-words")  # GradientProfile.describe()

        # m: the loss summed over every prediction.
        await pilot.press("m")
        assert screen.loss_mode == "sum"
        screen = await computed(pilot)
        assert screen.result.entries[0].profile.mode == "sum"
        assert "summed over all" in text_of(screen, "#gr-words")

        # The Jacobian view: the map, its legend and the spectral radius.
        assert screen.view == "profile"  # 24 rows: one view at a time
        await pilot.press("j")
        assert screen.view == "jacobian"
        assert screen.query_one("#gr-jacobian").display
        assert not screen.query_one("#gr-profile").display
        await pilot.pause()
        jac = text_of(screen, "#gr-jac")
        assert "spectral radius" in jac and "Jacobian map" in jac and "log scale" in jac
        assert "unrolled: 38 steps of one cell = a 38-layer network" in jac  # summed: all but the last token
        assert "the c→c block of Jₜ is diag(fₜ)" in jac  # one step back, in words
        assert "Frobenius norm" in jac and "identity" in jac  # what the norm is, why the diagonal is √D
        jm = screen.result.jacobian
        assert jm.norms.shape == (len(DEFAULT_SENTENCE), len(DEFAULT_SENTENCE))
        await pilot.press("j")
        assert screen.view == "both"


async def test_underflow_is_drawn_and_named_not_a_crash():
    app = GradientsFirstApp(lm=underflowing_rnn(), cursor_blink=False, device="cpu")
    async with app.run_test(size=SIZE) as pilot:
        screen = await computed(pilot)
        await pilot.press("m")  # the loss at the last token: the first token's gradient underflows
        screen = await computed(pilot)
        current = screen.result.entries[0]
        assert current.name == "current" and current.profile.underflow_h[-1].any()
        chart = screen.query_one("#gr-chart", Chart)
        chart.render()
        assert chart.drawn.underflow_points > 0
        words = text_of(screen, "#gr-words")
        assert "underflowed to exactly zero" in words
        assert "exactly 0 in float32" in words
        assert "exactly 0 (underflow)" in words  # the first/last line for this model
        # The chart renders (log axis, the zeros at a floor).
        assert "1e-" in str(chart.render())
        assert "1e-" in str(chart.render())  # a second build of the same log chart works too


async def test_model_and_sentence_changes_recompute():
    app = GradientsFirstApp(lm=make_tiny_lm("lstm"), cursor_blink=False, device="cpu")
    async with app.run_test(size=SIZE) as pilot:
        screen = await computed(pilot)
        first = screen.result
        app.set_model(make_tiny_lm("gru", seed=3))
        await wait_for(pilot, lambda: screen.result is not first and not screen.computing,
                       what="a recompute for the new model")
        assert screen.result.spectrum.main == "n"  # GRU's candidate block
        second = screen.result
        app.set_sentence("the dog was happy")
        await wait_for(pilot, lambda: screen.result is not second and not screen.computing,
                       what="a recompute for the new sentence")
        assert len(screen.result.entries[0].profile.tokens) == len("the dog was happy")
        assert "'the dog was happy'" in text_of(screen, "#gr-info")


async def test_missing_bundled_models_are_named(monkeypatch):
    from rnn_tui.engine.errors import CheckpointError

    def missing(name):
        raise CheckpointError(f"bundled model {name!r} is missing")

    monkeypatch.setattr(session, "load_bundled", missing)
    app = GradientsFirstApp(lm=make_tiny_lm("lstm"), cursor_blink=False, device="cpu")
    async with app.run_test(size=SIZE) as pilot:
        screen = await computed(pilot)
        words = " ".join(text_of(screen, "#gr-words").split())
        assert "rnn: n/a" in words
        assert "not drawn" in words and "missing" in words
        assert screen.query_one("#gr-chart", Chart).render()  # the current model still draws


def test_bindings_have_ids_and_tooltips():
    for binding in GradientsScreen.BINDINGS:
        assert binding.id and binding.tooltip, binding


async def test_a_long_text_gets_an_estimated_map_that_says_so():
    """200 tokens at H = 64: the exact map would cost T^2 D^3; the screen shows the estimate's
    rows and names the method (and the short default sentence stays exact: the other tests)."""
    sentence = ("the cat that we saw yesterday was happy. " * 5)[:200]
    app = GradientsFirstApp(lm=make_tiny_lm("gru", hidden=64), sentence=sentence, cursor_blink=False,
                            device="cpu")
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await computed(pilot)
        jm = screen.result.jacobian
        assert jm.method == "estimated" and len(jm.tokens) == 200 and jm.offset == 0
        assert len(jm.rows) == 24 and jm.rows[-1] == 199 and jm.row_method(199) == "exact"
        jac = text_of(screen, "#gr-jac", width=120)
        assert "estimated with 24 probes a row, last row exact, 24 of 200 rows" in jac
        assert "(24 rows computed)" in jac


def test_shares_read_as_percentages():
    from rnn_tui.screens.gradients.draw import _share

    assert [_share(x) for x in (0.997, 0.22, 0.022, 0.0004)] == ["100%", "22%", "2.2%", "0.0004"]
