"""Snapshots of modes 5-8 (dynamics, compare, lab, inspector) at 80x24 and 120x40.

Real engine, tiny seeded models, one torch thread: the pictures are deterministic. Nothing
time-dependent is on screen (the Lab's result is shown with its run time set to 0). Regenerate
with `pytest tests/test_snapshots_lab.py --snapshot-update` after a deliberate change and look
at the report before committing.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import rnn_tui.screens.dynamics.screen as dynamics_screen
from rnn_tui.app import RnnTuiApp
from rnn_tui.screens.compare import CompareScreen
from rnn_tui.screens.inspector import InspectorScreen
from rnn_tui.screens.lab import LabScreen

from conftest import make_tiny_lm
from pilot_helpers import settle as _settle, wait_for


async def settle(pilot) -> None:
    # snapshots: no toast left whose timeout races the picture
    await _settle(pilot, rounds=3, quiet=True)


SIZES = [(80, 24), (120, 40)]
IDS = lambda s: f"{s[0]}x{s[1]}"  # noqa: E731


@pytest.fixture(autouse=True)
def tiny_world(monkeypatch, tiny_bundled):
    monkeypatch.setattr(dynamics_screen, "HORIZON_CONTEXTS", 16)
    monkeypatch.setattr(InspectorScreen, "corpus_limit", 6000)
    monkeypatch.setattr(LabScreen, "overrides", {"spectral": dict(steps=30, hidden=16)})
    monkeypatch.setattr(CompareScreen, "overrides",
                        dict(steps=25, hidden=16, embed=8, seq_len=16, batch=8, distractors=(0, 3, 6, 9),
                             pairs=4))


def make_app() -> RnnTuiApp:
    return RnnTuiApp(lm=make_tiny_lm("lstm"), cursor_blink=False, device="cpu")


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_dynamics(snap_compare, size):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        await pilot.press("r", "r", "r", "r")  # rho 1.1
        # The linear map h <- W h: with tanh at rho > 1 the free recurrence can be chaotic, and
        # then the last bits of the BLAS arithmetic (which differ between CPUs) move the curve.
        await pilot.press("t")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


def test_dynamics_memory_view(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        await pilot.press("v")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_compare_trained(snap_compare, size):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("6")
        await settle(pilot)
        await pilot.press("t")
        await wait_for(pilot, lambda: len(pilot.app.screen.models) == 3 and not pilot.app.screen.training,
                       timeout=60)
        await settle(pilot)
        await pilot.press("right", "right")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


def steady(result):
    """The spectral result with its tanh rows made from the linear ones (saturated at sqrt(H)):
    tanh(rho W h) at rho > 1 can be chaotic, so its measured norms depend on the last bits of
    the arithmetic and would differ from one CPU to another. No run time on screen either."""
    from rnn_tui.engine.dynamics import growth_rate

    norms = np.minimum(result.norm_linear, np.sqrt(16.0))  # hidden=16 in the overrides below
    rates = np.array([growth_rate(n) for n in norms])
    return dataclasses.replace(result, seconds=0.0, norm_tanh=norms, rate_tanh=rates)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_lab_spectral(snap_compare, size):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        screen = pilot.app.screen
        screen.select("spectral")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "spectral" in pilot.app.session.lab_results and screen.running is None,
                       timeout=60)
        result = pilot.app.session.lab_results["spectral"]
        pilot.app.session.lab_results["spectral"] = steady(result)
        screen.show_selected()
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_inspector(snap_compare, size, bundled_lm):
    """The bundled (trained) LSTM: an untrained model's units hardly ever pass a threshold."""

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("8")
        await settle(pilot)
        await pilot.press("plus", "plus")  # 0.6: fewer units, more matches
        await settle(pilot)

    app = RnnTuiApp(lm=bundled_lm, cursor_blink=False, device="cpu")
    assert snap_compare(app, terminal_size=size, run_before=run_before)
