"""The lessons on the screens: the stepper's agreement line and p, the Gradients screen's loss
at the verb, on tiny seeded models (and tiny stand-ins for the bundled ones)."""

from __future__ import annotations

from pathlib import Path

import pytest

import rnn_tui.app
from rnn_tui.app import DEFAULT_SENTENCE, RnnTuiApp
from rnn_tui.screens.stepper import StepperScreen

from conftest import make_tiny_lm
from pilot_helpers import settle, wait_for

SIZE = (80, 24)
PLURAL = "the cats that we saw yesterday were happy"


pytestmark = pytest.mark.usefixtures("tiny_bundled")  # conftest: tiny bundled stand-ins


def plain(renderable, width: int = 100) -> str:
    import io

    from rich.console import Console

    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return " ".join(console.export_text().split())


async def test_stepper_agreement_line_flip_and_verb_step():
    app = RnnTuiApp(lm=make_tiny_lm("lstm"), cursor_blink=False, device="cpu")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, rounds=3)
        screen = app.screen
        assert isinstance(screen, StepperScreen)
        await wait_for(pilot, lambda: screen.agreement is not None, what="the agreement rows")
        rows = screen.agreement
        # this model first, then every bundled cell (none of them is the current model)
        assert [r[0] for r in rows] == ["current", "rnn", "lstm", "gru"]
        va = rows[0][2]
        assert va.subject == "cat" and not va.plural and va.correct == "was" and va.distance == 23
        text = plain(screen._build_agreement(100, 4))
        assert "“cat” is singular → was, decided 23 steps later (v)" in text
        assert "P(was):P(were) this lstm" in text and " rnn " in text and " gru " in text
        assert ("✓" in text) or ("✗" in text)
        narrow = plain(screen._build_agreement(60, 4), width=60)  # the right form's share alone
        assert "P(was) of the two this lstm" in narrow
        # v: the step whose prediction decides the form (the "w" of "was")
        await pilot.press("v")
        assert DEFAULT_SENTENCE[screen.step] == "w" and DEFAULT_SENTENCE[screen.step + 1] == "a"
        # p: the plural twin, and back
        await pilot.press("p")
        assert app.sentence == PLURAL
        await settle(pilot, rounds=3)
        await wait_for(pilot, lambda: screen.agreement is not None and screen.agreement[0][2].plural,
                       what="the plural twin's agreement")
        assert screen.agreement[0][2].correct == "were"
        assert "“cats” is plural → were" in plain(screen._build_agreement(100, 4))
        assert "P(were) of the two" in plain(screen._build_agreement(60, 4), width=60)
        await pilot.press("p")
        assert app.sentence == DEFAULT_SENTENCE
        # the concepts quote what the stepper measured
        facts = app.session.facts
        assert "stepper.agreement" in facts and "stepper.alias" in facts
        await settle(pilot, rounds=3)
        assert "stepper.reach" in facts


async def test_stepper_without_a_verb_slot_says_so_and_p_does_nothing():
    app = RnnTuiApp(lm=make_tiny_lm("gru"), cursor_blink=False, device="cpu",
                    sentence="the girl reads the book")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, rounds=3)
        screen = app.screen
        await wait_for(pilot, lambda: screen.agreement is not None, what="the agreement rows")
        assert screen.agreement[0][2] is None
        assert "no subject noun with a was/were after it" in plain(screen._build_agreement(100, 4))
        await pilot.press("p")
        assert app.sentence == "the girl reads the book"
        assert any("nothing to flip" in str(n.message) for n in app._notifications)


class GradientsFirst(RnnTuiApp):
    DEFAULT_MODE = "gradients"
    CSS_PATH = str(Path(rnn_tui.app.__file__).with_name("app.tcss"))


async def test_gradients_loss_falls_back_to_the_last_token_without_a_verb():
    app = GradientsFirst(lm=make_tiny_lm("rnn"), cursor_blink=False, device="cpu",
                         sentence="the girl reads the book")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.result is not None and not screen.computing, what="the gradients")
        await pilot.pause()
        assert screen.loss_mode == "verb" and screen.result.mode == "last"
        info = plain(screen.query_one("#gr-info").content)
        assert "last token (no was/were after a subject here)" in info
        assert all(e.profile.mode == "last" for e in screen.result.entries)
        assert screen.result.carriers is None
        # a vanilla RNN's one step back, in words: rho(W) against the tanh slope
        jac = plain(screen.jacobian_view(screen.result))
        assert "Jₜ = ∂hₜ/∂hₜ₋₁ = diag(1−hₜ²)·W_hh" in jac and "tanh slope 1−hₜ² averages" in jac


def test_concepts_say_where_their_number_comes_from_before_anything_is_measured():
    from types import SimpleNamespace

    from rnn_tui.screens.concepts import CONCEPTS, concept_rows

    app = SimpleNamespace(session=SimpleNamespace(facts={}, lab_results={}))
    for mode in CONCEPTS:
        rows = concept_rows(app, mode)
        assert rows and all(text.startswith("[") and "cannot say" not in text for _, text in rows), mode
    lab = dict(concept_rows(app, "lab"))
    assert "Lab → failure-modes measures all three" in lab["three failures"]
    assert "Elman (1990" in dict(concept_rows(app, "stepper"))["Elman 1990"]


async def test_help_concepts_quote_the_numbers_the_screens_measured():
    from rnn_tui.screens.concepts import concept_rows

    app = RnnTuiApp(lm=make_tiny_lm("lstm"), cursor_blink=False, device="cpu")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, rounds=3)
        await wait_for(pilot, lambda: "stepper.reach" in app.session.facts, what="the stepper's facts")
        await pilot.press("3")
        await wait_for(pilot, lambda: "gradients" in app.session.facts, what="the gradients' facts")
        stepper = dict(concept_rows(app, "stepper"))
        assert "the share each model gives the right form: this lstm" in stepper["agreement"].lower()
        assert "'the man that she chased was happy'" in stepper["not a recording"]
        assert "tokens back at >= 1%" in stepper["not infinite"]
        grads = dict(concept_rows(app, "gradients"))
        assert "Here 31 steps to the loss: a 31-layer net." in grads["unrolling"]
        assert "median rho(J_t)" in grads["one step back"]
        assert "Measured here: this" in grads["not zero"] and "The vanilla RNN here:" in grads["vanish / explode"]
        await pilot.press("question_mark")
        await pilot.pause()
        from rnn_tui.screens.help import HelpScreen

        assert isinstance(app.screen, HelpScreen)
        texts = [plain(part.content) for part in app.screen.query(".help-part")]
        assert any("concepts: what the data above shows" in t for t in texts)
        assert any("a 31-layer net" in t for t in texts)
