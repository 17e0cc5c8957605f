"""Snapshots of each of my screens at 80x24 and 120x40 (pytest-textual-snapshot).

Seeded tiny models, workers awaited before the picture, cursor blink off. Regenerate with
`pytest tests/test_snapshots.py --snapshot-update` after a deliberate change, and look at
the report before committing.
"""

from __future__ import annotations

import pytest

from rnn_tui.app import RnnTuiApp

from conftest import make_tiny_lm
from pilot_helpers import settle as _settle


async def settle(pilot) -> None:
    # snapshots: no toast left whose timeout races the picture
    await _settle(pilot, rounds=2, quiet=True)


SIZES = [(80, 24), (120, 40)]


pytestmark = pytest.mark.usefixtures("tiny_bundled")  # conftest: tiny bundled stand-ins


def make_app(**kw) -> RnnTuiApp:
    return RnnTuiApp(lm=make_tiny_lm("lstm", hidden=32), cursor_blink=False, **kw)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_stepper(snap_compare, size):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press(*["right"] * 5)  # on the "a" of "cat"
        await pilot.press("s", "s")  # units sorted by variance
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_sampling_compare(snap_compare, size):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("4")
        await pilot.press("minus")  # length 100
        await pilot.press("s")
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


def test_loading_engine(snap_compare):
    async def run_before(pilot):
        await pilot.pause()

    assert snap_compare(make_app(start_engine=False), terminal_size=(80, 24), run_before=run_before)


def test_help(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)


def test_stepper_word_level_stacked_gru(snap_compare):
    """Word tokens (wider columns, categories under each word), two layers, GRU gates."""

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("right", "right", "]")
        await settle(pilot)

    lm = make_tiny_lm("gru", hidden=16, layers=2, level="word")
    app = RnnTuiApp(lm=lm, cursor_blink=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
