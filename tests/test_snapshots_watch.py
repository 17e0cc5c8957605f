"""Snapshot of `rnn-tui watch` at 80x24: four runs (done, live and pinned, stale, not started).

Nothing on it depends on time: the metrics files are written by the test with a fixed
formula, their mtimes are set, and the watcher's clock is frozen, so "updated 5 s ago" and
"stale" are always the same. Regenerate with
`pytest tests/test_snapshots_watch.py --snapshot-update` after a deliberate change.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time

from rnn_tui.runs import watch as watch_mod
from rnn_tui.app import RnnTuiApp

from conftest import make_tiny_lm

NOW = 1_700_000_000.0


def write_run(path, steps: int, tau: float, age: float, seed: int) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    path.mkdir(parents=True)
    lines = []
    for step in range(1, steps + 1):
        loss = 0.9 + 2.4 * math.exp(-step / tau) + 0.05 * float(rng.standard_normal())
        val = 0.95 + 2.4 * math.exp(-step / tau) if step % 50 == 0 else None
        lines.append(json.dumps({"step": step, "epoch": step / 500, "loss": loss, "grad_norm": 0.5,
                                 "tokens_per_s": 40000.0 + 1000 * seed, "wall_time": step * 0.02,
                                 "val_loss": val}) + "\n")
    (path / "metrics.jsonl").write_text("".join(lines))
    os.utime(path / "metrics.jsonl", (NOW - age, NOW - age))


def test_watch_view(snap_compare, tmp_path, monkeypatch):
    from rnn_tui.engine.checkpoint import save_checkpoint

    monkeypatch.setattr(watch_mod, "clock", lambda: NOW)
    write_run(tmp_path / "lstm-a", 400, 90.0, 5.0, 0)
    lm = make_tiny_lm("lstm")
    save_checkpoint(tmp_path / "lstm-a", lm.model, lm.vocab,
                    {"corpus": "grammar", "level": "char", "metrics": {"step": 400},
                     "train": {"cell": "lstm", "hidden": 24, "lr": 3e-3, "steps": 400, "clip": 1.0}})
    write_run(tmp_path / "gru-b", 250, 120.0, 5.0, 1)
    write_run(tmp_path / "rnn-c", 300, 200.0, 600.0, 2)
    dirs = [tmp_path / n for n in ("lstm-a", "gru-b", "rnn-c", "later")]
    app = RnnTuiApp(lm=make_tiny_lm("lstm"), cursor_blink=False, device="cpu", mode="training",
                    watch=[str(d) for d in dirs], watch_poll_s=0.05)

    async def wait_for(pilot, condition, what):
        deadline = time.monotonic() + 15
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await pilot.pause(0.05)

    async def tap(pilot, key):
        done = asyncio.Event()
        pilot.app.simulate_key(key)
        pilot.app.call_later(lambda: pilot.app.screen.call_later(done.set))
        await asyncio.wait_for(done.wait(), 10)

    async def run_before(pilot):
        await wait_for(pilot, lambda: app.watcher is not None and app.watcher.loads >= 1, "the checkpoint")
        screen = app.screen
        await wait_for(pilot, lambda: sum(len(r.cols) for r in screen.runs) == 950, "every line")
        for key in ("down", "p", "up"):  # pin gru-b (on top, first in the legend), back to lstm-a
            await tap(pilot, key)
        await pilot.pause(0.4)
        screen.redraw()
        app.clear_notifications()
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
