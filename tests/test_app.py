"""Pilot tests: drive every screen of the TUI by keyboard, on tiny seeded models (real engine)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from rnn_tui.app import DEFAULT_SENTENCE, RnnTuiApp
from rnn_tui.screens import ModeBar
from rnn_tui.screens.help import HelpScreen, TextPrompt
from rnn_tui.screens.sampling import PRESET_TEMPERATURES, SamplingScreen
from rnn_tui.screens.stepper import StepperScreen, token_strip

from conftest import make_tiny_lm
from pilot_helpers import notes, settle

SIZE = (80, 24)


pytestmark = pytest.mark.usefixtures("tiny_bundled")  # conftest: tiny bundled stand-ins


def app_with(lm=None, **kw) -> RnnTuiApp:
    return RnnTuiApp(lm=lm if lm is not None else make_tiny_lm(), cursor_blink=False, **kw)


def test_first_frame_does_not_import_torch():
    code = "import sys, rnn_tui.app; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


async def test_loading_state_then_ready():
    app = app_with(start_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert not app.engine_ready
        assert app.lm is None
        assert "loading engine" in app.sub_title
        screen = app.screen
        assert isinstance(screen, StepperScreen)
        assert screen.query_one("#stepper-loading").display
        assert not screen.query_one("#stepper-main").display
        app.start_engine()
        await settle(pilot)
        assert app.engine_ready
        assert app.title == "rnn-tui"
        assert app.sub_title == f"{app.lm.label} — cpu"
        assert not screen.query_one("#stepper-loading").display
        assert screen.trace is not None
        assert len(screen.trace.tokens) == len(DEFAULT_SENTENCE)


async def test_stepper_keys():
    app = app_with()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        s = app.screen
        assert isinstance(s, StepperScreen)
        assert s.step == 0
        await pilot.press("right", "right", "l")
        assert s.step == 3
        await pilot.press("left", "h")
        assert s.step == 1
        await pilot.press("end")
        assert s.step == len(DEFAULT_SENTENCE) - 1
        await pilot.press("right")  # stays on the last token
        assert s.step == len(DEFAULT_SENTENCE) - 1
        await pilot.press("home")
        assert s.step == 0
        # Sorting cycles index -> activation -> variance -> index.
        assert s.sort == "index"
        await pilot.press("s")
        assert s.sort == "activation"
        await pilot.press("s")
        assert s.sort == "variance"
        hidden = s.trace.hidden[0]
        order = s.unit_order()
        var = hidden.var(axis=0)
        assert var[order[0]] == pytest.approx(var.max())
        await pilot.press("s")
        assert s.sort == "index"
        # H=24 does not fit at 80x24: the heatmap scrolls, and stops at the end.
        assert s.heat_rows < 24
        await pilot.press("down", "down")
        assert s.row_offset == 2
        await pilot.press("pagedown", "pagedown", "pagedown")
        assert s.row_offset == 24 - s.heat_rows
        await pilot.press("up")
        assert s.row_offset == 24 - s.heat_rows - 1
        await pilot.press("pageup", "pageup", "pageup")
        assert s.row_offset == 0
        # The memory row arrives after the trace: ||dh_t/dh_k|| for this sentence.
        assert s.memory and 0 in s.memory
        assert s.memory[0].norms.shape == (len(DEFAULT_SENTENCE),) * 2


async def test_stepper_memory_row_for_a_long_text_is_estimated_and_says_so():
    sentence = ("the cat that we saw yesterday was happy. " * 5)[:200]  # over the old 160-token cap
    app = app_with(make_tiny_lm("lstm", hidden=64), sentence=sentence)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, rounds=3)
        s = app.screen
        assert s.memory and 0 in s.memory
        jm = s.memory[0]
        assert jm.method == "estimated" and len(jm.rows) == 200  # every step has its row
        assert np.isfinite(jm.log10_norms[150, :151]).all()
        await pilot.press("end")
        heat = s.query_one("#stepper-heat").render()
        from rich.console import Console

        console = Console(width=100, record=True, color_system=None)
        console.print(heat)
        assert "mem (estimated)" in console.export_text()


async def test_stepper_draws_the_current_token_and_gates():
    app = app_with()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        s = app.screen
        await pilot.press("right", "right", "right", "right")  # "c" of "cat"
        probs = str(s.query_one("#stepper-probs").render())
        tokens = s.query_one("#stepper-tokens").render()
        gates = s.query_one("#stepper-gates").render()
        from rich.console import Console

        console = Console(width=80, record=True, color_system=None)
        console.print(tokens)
        console.print(s.query_one("#stepper-probs").render())
        console.print(gates)
        text = console.export_text()
        assert DEFAULT_SENTENCE in text
        assert "after “c” (5/39)" in text
        assert "next “a”" in text  # the actual next token is named with its loss
        assert "nats" in text
        for gate in ("i input", "f forget", "o output", "c cell"):
            assert gate in text
        assert probs  # rendered without a drawing error
        assert "cannot draw" not in text


def bits_lm():
    """A tiny model that reads only '0' and '1': the default sentence means nothing to it."""
    from rnn_tui.engine.corpus import Vocab
    from rnn_tui.engine.model import LoadedModel, ModelConfig, build_model

    vocab = Vocab(tokens=("0", "1"), level="char")
    model = build_model(ModelConfig(vocab_size=2, cell="rnn", embed=4, hidden=6), seed=0, device="cpu")
    return LoadedModel(model.eval(), vocab, {"corpus": "bits", "level": "char"})


async def test_an_unreadable_sentence_is_refused_and_a_model_that_cannot_read_it_says_so():
    app = app_with()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        s = app.screen
        before, tokens = app.sentence, s.trace.tokens
        await pilot.press("e")
        s.query_one("#sentence-input").value = "123!?"
        await pilot.press("enter")
        await settle(pilot)
        assert app.sentence == before and app.sentence_version == 0  # nothing lost
        assert any("can read none of this sentence" in n for n in notes(app)), notes(app)
        assert s.trace.tokens == tokens

        app.set_model(bits_lm())  # reads none of the sentence: no stale trace stays on show
        await settle(pilot)
        loading = s.query_one("#stepper-loading")
        assert loading.display and "cannot read this sentence" in str(loading.render())
        errors = [n for n in notes(app) if "nothing to probe" in n]
        assert len(errors) == 1
        await pilot.press("2")
        await pilot.press("1")
        await settle(pilot)
        assert len([n for n in notes(app) if "nothing to probe" in n]) == 1  # said once

        await pilot.press("e")
        s.query_one("#sentence-input").value = "0110"
        await pilot.press("enter")
        await settle(pilot)
        assert not loading.display and "".join(s.trace.tokens) == "0110"
        app.set_sentence(before)  # the unreadable sentence again (as the palette could set it)
        await settle(pilot)
        assert loading.display and "cannot read this sentence" in str(loading.render())
        assert len([n for n in notes(app) if "nothing to probe" in n]) == 2


async def test_edit_sentence_reports_skipped_characters():
    app = app_with()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        s = app.screen
        await pilot.press("e")
        inp = s.query_one("#sentence-input")
        assert inp.display and inp.has_focus
        inp.value = ""
        await pilot.press(*"The dog, 42 sleeps")
        await pilot.press("enter")
        await settle(pilot)
        assert not inp.display
        # The model has no capitals: "The" is read as "the" (and the user is told), the rest
        # of what it cannot read is skipped and named.
        assert app.sentence == "the dog, 42 sleeps"
        assert app.sentence_version == 1
        assert "".join(s.trace.tokens) == "the dog  sleeps"
        assert any("lowercased" in n for n in notes(app)), notes(app)
        skipped = [n for n in notes(app) if "skipped" in n]
        assert skipped, notes(app)
        for ch in (",", "4", "2"):
            assert ch in skipped[-1]
        assert "'T'" not in skipped[-1]
        assert s.step == 0
        # Escape leaves the editor without changing anything.
        await pilot.press("e", "x", "escape")
        assert not inp.display
        assert app.sentence == "the dog, 42 sleeps"


async def test_unreadable_sentence_is_an_error_not_a_crash():
    app = app_with()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.set_sentence("12345")
        await settle(pilot)
        assert app.is_running
        assert any("none" in n or "nothing to probe" in n for n in notes(app)), notes(app)


async def test_stacked_model_layer_selector_and_gru_gates():
    lm = make_tiny_lm("gru", hidden=16, layers=2)
    app = app_with(lm)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        s = app.screen
        assert s.trace.hidden.shape[0] == 2
        assert s.layer_index == 0
        await pilot.press("]")
        assert s.layer_index == 1
        await pilot.press("]")
        assert s.layer_index == 0
        await pilot.press("[")
        assert s.layer_index == 1
        from rich.console import Console

        console = Console(width=80, record=True, color_system=None)
        console.print(s.query_one("#stepper-heat").render())
        console.print(s.query_one("#stepper-gates").render())
        text = console.export_text()
        assert "layer 2/2" in text
        assert "r reset" in text and "z update" in text


async def test_vanilla_rnn_has_no_gate_panel():
    app = app_with(make_tiny_lm("rnn"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert not app.screen.query_one("#stepper-gates").display


def test_token_strip_word_level_categories():
    lm = make_tiny_lm("lstm", level="word")
    tokens = tuple(lm.vocab.encode("the cat sleeps", on_unknown="skip").tokens)
    strip = token_strip(tokens, 1, 60, "word", lm.categories)
    lines = strip.plain.split("\n")
    assert lines[0].startswith("the cat sleeps")
    assert lines[1].split()[:3] == ["fn", "n.a", "v.int"]
    assert lines[1].endswith("   cat: noun (animal)")  # the lit word's tag, in words
    spans = [span for span in strip.spans if span.start <= 4 < span.end]
    assert spans  # the current token is styled


async def test_mode_switching_and_tab_bar():
    app = app_with()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for key, mode in (("4", "sampling"), ("2", "training"), ("3", "gradients"), ("1", "stepper")):
            await pilot.press(key)
            await pilot.pause()
            assert app.current_mode == mode
            bar = app.screen.query(ModeBar)
            if bar:
                assert bar.first().mode == mode


async def test_help_lists_bindings_and_panels():
    app = app_with()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        from rich.console import Console

        console = Console(width=100, record=True, color_system=None)
        for part in app.screen.query(".help-part"):
            console.print(part.content)
        text = console.export_text()
        for phrase in ("Step forward one token", "Sort units", "hidden state", "memory",
                       "Temperature up by 0.1", "Command palette", "Stepper", "Sampling"):
            assert phrase in text, phrase
        await pilot.press("escape")
        assert isinstance(app.screen, StepperScreen)


async def run_command(pilot, words: str) -> None:
    """Open the command palette, type `words`, take the first match."""
    await pilot.press("ctrl+p")
    await pilot.pause()
    await pilot.press(*words)
    await pilot.pause(0.3)
    await pilot.press("enter")
    await pilot.pause()
    await pilot.pause()


async def test_command_palette_goes_to_sampling_and_changes_sentence():
    app = app_with()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run_command(pilot, "Go to Sampling")
        assert app.current_mode == "sampling"
        await run_command(pilot, "Change sentence")
        assert app.current_mode == "stepper"
        inp = app.screen.query_one("#sentence-input")
        assert inp.display and inp.has_focus


async def test_palette_commands_are_offered():
    from rnn_tui.commands import RnnCommands

    app = app_with()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        provider = RnnCommands(app.screen)
        names = [name for name, _, _ in provider._commands()]
        names += [c.title for c in app.get_system_commands(app.screen)]
        for wanted in ("Switch cell: GRU", "Load model…", "Train",
                       "Save checkpoint", "Change sentence…", "Go to Stepper", "Go to Training",
                       "Go to Gradients", "Go to Sampling", "Toggle dark mode", "Help", "Quit"):
            assert names.count(wanted) == 1, wanted
        # one entry per action: the bundled models are offered as "Switch cell" only
        assert not [n for n in names if n.startswith("Load model: bundled")]


async def test_the_palette_finds_the_lessons_by_their_words():
    app = app_with()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run_command(pilot, "vanish")
        assert app.current_mode == "gradients"
        assert isinstance(app.screen, HelpScreen)  # on the gradients' section, its concepts below
        assert app.screen.query_one("#help-here").content.plain.split() == ["3", "Gradients"]
        await pilot.press("escape")
        await run_command(pilot, "gates change")
        assert app.current_mode == "compare"


async def test_load_model_prompt_bad_path_notifies():
    app = app_with()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.action_load_model_prompt()
        await pilot.pause()
        assert isinstance(app.screen, TextPrompt)
        await pilot.press(*"/no/such/run")
        await pilot.press("enter")
        await settle(pilot)
        assert app.is_running
        assert any("/no/such/run" in n for n in notes(app)), notes(app)
        assert app.lm is not None  # the old model stays


async def test_bad_model_at_start_is_a_notification():
    app = RnnTuiApp(model="/no/such/run", cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.is_running
        assert app.engine_ready and app.lm is None
        assert any("/no/such/run" in n for n in notes(app)), notes(app)
        assert "no model" in str(app.screen.query_one("#stepper-loading").render())


async def test_set_model_redraws_the_stepper():
    app = app_with()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        before = app.screen.trace.hidden.copy()
        app.set_model(make_tiny_lm("gru", seed=3))
        await settle(pilot)
        assert app.model_version == 2
        assert "gru" in app.sub_title
        assert not np.allclose(app.screen.trace.hidden, before)


async def test_sampling_console():
    app = app_with()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await pilot.pause()
        s = app.screen
        assert isinstance(s, SamplingScreen)
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert s.temperature == pytest.approx(0.6)
        await pilot.press("right_square_bracket")
        assert s.temperature == pytest.approx(0.7)
        await pilot.press("k", "k")
        assert s.top_k == 3
        await pilot.press("minus", "minus")
        assert s.length == 50
        # Edit the prompt, sample with enter.
        await pilot.press("p")
        prompt = s.query_one("#prompt")
        assert prompt.has_focus
        prompt.value = ""
        await pilot.press(*"the dog", "enter")
        await settle(pilot)
        assert len(s.history) == 1
        rec = s.history[0]
        assert rec.prime == "the dog" and rec.temperatures == (0.7,) and rec.top_k == 3
        assert len(rec.texts[0]) == 50  # char level: one character per token
        assert rec.done and not rec.stopped
        assert s.seed == rec.seed + 1
        # Compare: three temperatures, same prime and seed, side by side.
        await pilot.press("c")
        await settle(pilot)
        rec = s.history[0]
        assert rec.temperatures == PRESET_TEMPERATURES
        assert len(rec.texts) == 3 and all(len(t) == 50 for t in rec.texts)
        from rnn_tui.engine.sampling import sample

        again = sample(app.lm, "the dog", temperature=1.5, top_k=3, length=50, seed=rec.seed)
        assert again.text == rec.texts[2]
        assert len(s.history) == 2


async def test_sampling_stop_with_ctrl_c():
    app = app_with()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await pilot.pause()
        s = app.screen
        for _ in range(6):
            await pilot.press("plus")
        assert s.length == 1600
        s.action_compare()  # 4800 tokens: far more than can finish before the key
        await pilot.press("ctrl+c")
        await settle(pilot)
        assert s.running is None
        rec = s.history[0] if s.history else None
        assert rec is not None and rec.stopped
        assert sum(len(t) for t in rec.texts) < 3 * 1600
        assert app.is_running  # ctrl+c stopped the sample, not the app


async def test_sampling_prompt_follows_the_stepper_rules_for_capitals():
    app = app_with()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await pilot.pause()
        s = app.screen
        s.query_one("#prompt").value = "The Cat "
        s.action_sample()
        await settle(pilot)
        assert s.query_one("#prompt").value == "the cat "  # the trailing space is kept
        assert s.history[0].prime == "the cat " and any("lowercased" in n for n in notes(app))
        s.query_one("#prompt").value = "123"
        s.action_sample()
        await settle(pilot)
        assert len(s.history) == 1 and any("can read none of this prompt" in n for n in notes(app))


async def test_a_new_sample_supersedes_a_running_one():
    app = app_with()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await pilot.pause()
        s = app.screen
        for _ in range(6):
            await pilot.press("plus")
        s.action_compare()
        s.action_sample()  # exclusive worker: the comparison is cancelled, started or not
        await settle(pilot)
        assert s.running is None and not s.sampler.busy  # nothing left open
        assert [r.number for r in s.history] == [2, 1]
        assert s.history[0].done and not s.history[0].stopped and len(s.history[0].texts[0]) > 0
        assert s.history[1].stopped


async def test_train_action_switches_to_training():
    app = app_with()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.action_train()
        await pilot.pause()
        await pilot.pause()
        assert app.current_mode == "training"
        assert app.is_running
        stop = getattr(app.screen, "action_stop", None)
        if stop is not None:
            stop()
        await settle(pilot)


async def test_a_terminal_too_small_says_the_size_it_needs():
    from rnn_tui.screens.base import MIN_SIZE

    app = app_with()
    async with app.run_test(size=(40, 12)) as pilot:
        await settle(pilot)
        notice = app.screen.query_one("#too-small")
        assert notice.display and app.screen.has_class("-too-small")
        text = str(notice.render())
        assert f"at least {MIN_SIZE[0]}x{MIN_SIZE[1]}" in text and "this one is 40x12" in text
        assert not app.screen.query_one("#stepper-heat").display or not app.screen.query_one("#stepper-body").display
        await pilot.resize_terminal(*MIN_SIZE)
        await settle(pilot)
        assert not app.screen.has_class("-too-small") and not notice.display


async def test_layer_keys_on_a_one_layer_model_say_so():
    app = app_with()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("]")
        await settle(pilot)
        assert any("one layer" in n for n in notes(app))
        await pilot.press("8")
        await settle(pilot)
        await pilot.press("L")
        await settle(pilot)
        assert sum("one layer" in n for n in notes(app)) >= 2


async def test_a_pasted_sentence_over_the_limit_is_refused_and_its_end_offered():
    from rnn_tui.engine.config import MAX_TRACE_TOKENS

    app = app_with()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        s = app.screen
        before, tokens = app.sentence, s.trace.tokens
        await pilot.press("e")
        inp = s.query_one("#sentence-input")
        pasted = "the cat saw a dog. " * 600  # 11,400 characters: 11,400 tokens of a character model
        inp.value = pasted
        await pilot.press("enter")
        await settle(pilot)
        assert app.sentence == before and app.sentence_version == 0 and s.trace.tokens == tokens  # nothing lost
        assert any(f"more than the {MAX_TRACE_TOKENS:,} the screens read" in n for n in notes(app)), notes(app)
        tail = pasted.strip()[-MAX_TRACE_TOKENS:].lstrip()
        assert inp.display and inp.value == tail  # the editor offers the last 4,096 tokens (less a space)
        await pilot.press("enter")
        await settle(pilot)
        assert app.sentence == tail and len(s.trace.tokens) == len(tail) == MAX_TRACE_TOKENS - 1


def test_a_vocabulary_gives_the_end_of_a_text_that_holds_its_last_n_tokens():
    from rnn_tui.engine.corpus import Vocab

    chars = Vocab(tokens=tuple("abc "), level="char")
    assert chars.tail("abc xyz cab", 4) == " cab" and chars.tail("ab", 5) == "ab"
    assert chars.tail("a?b?c", 2) == "b?c"  # '?' is not read: it does not count
    words = Vocab(tokens=("<unk>", "the", "cat", "sat", "."), level="word", unk="<unk>")
    assert words.tail("the cat sat on the mat.", 3) == "sat on the mat."  # "on", "mat" skipped


def test_stepper_memory_row_is_blank_where_the_estimate_skipped_the_row():
    from rnn_tui.engine.probes import jacobian_map
    from rnn_tui.screens.stepper import memory_row

    sentence = ("the cat that we saw yesterday was happy. " * 5)[:200]
    jm = jacobian_map(make_tiny_lm("gru", hidden=32), sentence, method="estimate", rows=8)
    shown = int(jm.rows[-2])
    skipped = shown - 1
    assert jm.probes[skipped] == -1
    coloured = [seg for seg in memory_row(jm, shown, 0, 200, 1, 3).spans if seg.style.bgcolor is not None]
    blank = [seg for seg in memory_row(jm, skipped, 0, 200, 1, 3).spans if seg.style.bgcolor is not None]
    assert len(coloured) == shown + 1 and blank == []
