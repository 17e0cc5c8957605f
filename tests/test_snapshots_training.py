"""Snapshots of the training and gradients screens at 80x24 and 120x40.

Nothing on them depends on time: the training pictures are taken before training starts,
or with runs whose metrics are synthetic (a fixed formula and seed, so no tokens/s or ETA
from the machine); the gradients are real probes of tiny seeded models. Regenerate with
`pytest tests/test_snapshots_training.py --snapshot-update` after a deliberate change and
look at the report before committing.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnn_tui.app import RnnTuiApp
from rnn_tui.render.colors import SERIES_RGB
from rnn_tui.screens.training import TrainingRun, TrainingScreen

from conftest import make_tiny_lm
from pilot_helpers import settle as _settle


async def settle(pilot) -> None:
    # snapshots: no toast left whose timeout races the picture
    await _settle(pilot, rounds=2, quiet=True)


SIZES = [(80, 24), (120, 40)]
TINY = dict(hidden=16, embed=8, seq_len=16, batch=8, eval_every=20, steps=400)


def make_app() -> RnnTuiApp:
    return RnnTuiApp(lm=make_tiny_lm("lstm"), cursor_blink=False, device="cpu", train_defaults=TINY)


pytestmark = pytest.mark.usefixtures("tiny_bundled")  # conftest: tiny bundled stand-ins


def synthetic_run(index: int, cell: str, steps: int = 400, seed: int = 0) -> TrainingRun:
    """A finished run whose metrics follow a fixed formula (no clock, no torch)."""
    from rnn_tui.engine.train import StepMetrics, TrainConfig

    config = TrainConfig(cell=cell, **{k: v for k, v in TINY.items() if k != "steps"}, steps=steps)
    run = TrainingRun(index=index, config=config, color=SERIES_RGB[index - 1], state="done")
    rng = np.random.default_rng(seed)
    tau = {"rnn": 260.0, "lstm": 120.0, "gru": 150.0}[cell]
    for step in range(1, steps + 1):
        loss = 0.9 + 2.4 * math.exp(-step / tau) + 0.08 * float(rng.standard_normal())
        grad = 0.4 + 0.5 * math.exp(-step / 80) + 0.05 * abs(float(rng.standard_normal()))
        val = 0.95 + 2.4 * math.exp(-step / tau) if step % 20 == 0 else None
        run.push(StepMetrics(step=step, epoch=step / 500, loss=loss, bits=loss / math.log(2),
                             ppl=math.exp(loss), grad_norm=grad, clipped=grad > 1, lr=3e-3,
                             tokens_per_s=50000.0 + 100 * index, wall_time=step * 0.01,
                             val_loss=val), wall=1.7e9 + step * 0.01)
    return run


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_training_before_a_run(snap_compare, size):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_training_two_runs_overlaid(snap_compare, size):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, TrainingScreen)
        screen.runs.extend([synthetic_run(1, "lstm"), synthetic_run(2, "rnn", seed=1)])
        screen.query_one("#tr-form").add_class("-hidden")  # as after starting a run
        screen.refresh_runs()
        await pilot.press("u")  # bits per token
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_gradients(snap_compare, size):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


def test_gradients_jacobian_view(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("j")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)
