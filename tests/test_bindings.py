"""Every key binding carries an id (so users can remap it) and a tooltip (the help and footer)."""

import importlib
import inspect
import pkgutil

from textual.binding import Binding

import rnn_tui.screens as screens_pkg
from rnn_tui.app import RnnTuiApp


def _classes_with_bindings():
    found = {RnnTuiApp, *RnnTuiApp.MODES.values()}
    for info in pkgutil.iter_modules(screens_pkg.__path__):
        module = importlib.import_module(f"rnn_tui.screens.{info.name}")
        for obj in vars(module).values():
            if inspect.isclass(obj) and obj.__module__ == module.__name__ and "BINDINGS" in vars(obj):
                found.add(obj)
    return sorted(found, key=lambda c: c.__name__)


def test_every_binding_has_an_id_and_a_tooltip():
    classes = _classes_with_bindings()
    assert len(classes) >= 9  # the app and its eight screens, at least
    problems = []
    for cls in classes:
        ids = []
        for b in cls.BINDINGS:
            if not isinstance(b, Binding):
                problems.append(f"{cls.__name__}: {b!r} is not a Binding")
                continue
            if not b.id or not b.tooltip:
                problems.append(f"{cls.__name__}: {b.key!r} lacks an id or a tooltip")
            ids.append(b.id)
        dupes = {i for i in ids if ids.count(i) > 1}
        if dupes:
            problems.append(f"{cls.__name__}: duplicate binding ids {sorted(dupes)}")
    assert not problems, "\n".join(problems)


def test_modes_are_switched_by_number_keys():
    keys = {key: b.action for b in RnnTuiApp.BINDINGS for key in b.key.split(",")}
    for n, mode in enumerate(RnnTuiApp.MODES, 1):
        assert keys[str(n)] == f"switch_mode('{mode}')"
        assert keys[f"alt+{n}"] == f"switch_mode('{mode}')"  # escape then N, typed quickly


async def test_escape_then_a_number_typed_quickly_still_switches_screens():
    app = RnnTuiApp(cursor_blink=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("alt+4")
        await pilot.pause()
        assert app.current_mode == "sampling"


def test_keymap_tables_read_every_column():
    import pytest

    from rnn_tui.screens.keymap import keymap

    a, b = keymap("""
        left,h = ←  | step(-1) | Prev  | s.prev | Step back one token
        ctrl+c      | stop !   | -Stop | s.stop | Stop it | even with a bar in the tooltip
    """)
    assert (a.key, a.action, a.description, a.key_display, a.show, a.priority, a.id, a.tooltip) == \
        ("left,h", "step(-1)", "Prev", "←", True, False, "s.prev", "Step back one token")
    assert (b.action, b.description, b.show, b.priority, b.key_display) == ("stop", "Stop", False, True, None)
    assert b.tooltip == "Stop it | even with a bar in the tooltip"
    with pytest.raises(ValueError, match="5 columns"):
        keymap("x | y | z")


async def test_a_screens_number_closes_the_help_and_goes_there():
    from rnn_tui.screens.help import HelpScreen

    app = RnnTuiApp(cursor_blink=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("alt+3")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen) and app.current_mode == "gradients"
        await pilot.press("question_mark")
        await pilot.pause()
        await pilot.press("7")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen) and app.current_mode == "lab"
