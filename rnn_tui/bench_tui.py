"""TUI rows of `rnn-tui bench`: time to first paint, and keypress-to-paint latency while training.

First paint is measured in a fresh interpreter (cold imports, as a user's launch), headless:
from process start to the first refresh after mount, and whether torch was imported by then
(it must not be: the engine loads in a worker after the first frame).

Keypress latency is measured in-process on the real app while its training worker runs: the
time from a key being sent to the app being idle again with the change on screen.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable

_FIRST_PAINT_SCRIPT = r"""
import time, os
t_start = float(os.environ["RNN_TUI_BENCH_T0"])
t_python = time.time()
import asyncio, json, sys
import rnn_tui.app
from rnn_tui.app import RnnTuiApp

class Timed(RnnTuiApp):
    # A subclass defined here would look for app.tcss next to this script: point at the real one.
    CSS_PATH = os.path.join(os.path.dirname(rnn_tui.app.__file__), "app.tcss")
    painted = None
    def on_mount(self):
        super().on_mount()
        self.call_after_refresh(self._mark)
    def _mark(self):
        self.painted = time.time()
        self.torch_at_paint = "torch" in sys.modules

async def main():
    app = Timed(cursor_blink=False)
    async with app.run_test(size=(100, 30)) as pilot:
        while app.painted is None:
            await asyncio.sleep(0.001)
        while not app.engine_ready:
            await asyncio.sleep(0.01)
        ready = time.time()
    print(json.dumps({"python": t_python - t_start, "paint": app.painted - t_start,
                      "torch_at_paint": app.torch_at_paint, "ready": ready - t_start}))

asyncio.run(main())
"""


def first_paint(runs: int = 3) -> dict:
    results = []
    for _ in range(runs):
        env = dict(os.environ, RNN_TUI_BENCH_T0=repr(time.time()))
        proc = subprocess.run([sys.executable, "-c", _FIRST_PAINT_SCRIPT], env=env, capture_output=True,
                              text=True, timeout=180)
        if proc.returncode != 0:
            raise RuntimeError(f"first-paint run failed: {proc.stderr.strip().splitlines()[-1:]}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {
        "paint": statistics.median(r["paint"] for r in results),
        "ready": statistics.median(r["ready"] for r in results),
        "python": statistics.median(r["python"] for r in results),
        "torch_at_paint": any(r["torch_at_paint"] for r in results),
    }


async def _keypress_latency(presses: int) -> dict:
    from textual import events

    from .app import RnnTuiApp

    app = RnnTuiApp(cursor_blink=False)
    async with app.run_test(size=(100, 30)) as pilot:
        while not app.engine_ready:
            await asyncio.sleep(0.01)
        await pilot.press("2")
        await pilot.pause()
        app.action_train()
        deadline = time.perf_counter() + 30
        while (app.trainer is None or app.trainer.step < 5) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        if app.trainer is None:
            raise RuntimeError("training did not start")
        step0 = app.trainer.step
        screen = app.screen
        times = []
        for i in range(presses):
            # Pilot.press waits for the process to go idle, which never happens while a
            # worker trains; so send the key as the driver would and time it ourselves:
            # from the key event to the end of the first refresh after the change.
            before = screen.view.log_y
            painted = asyncio.Event()
            t0 = time.perf_counter()
            app._driver.send_message(events.Key("y", "y"))
            while screen.view.log_y == before:
                await asyncio.sleep(0.0005)
            app.call_after_refresh(painted.set)
            await painted.wait()
            times.append(time.perf_counter() - t0)
            await asyncio.sleep(0.1)
        steps = app.trainer.step - step0
        app.trainer.request_stop()
    times.sort()
    return {"median": statistics.median(times), "p95": times[int(0.95 * (len(times) - 1))],
            "max": times[-1], "steps_during": steps}


def bench_tui(log: Callable[[str], None] = print, presses: int = 30) -> list[dict]:
    log("bench: TUI time to first paint (fresh interpreter, 3 runs)")
    fp = first_paint()
    log("bench: TUI keypress latency while training")
    kp = asyncio.run(_keypress_latency(presses))
    torch_note = "torch NOT yet imported" if not fp["torch_at_paint"] else "torch already imported"
    return [
        {"kind": "tui", "what": f"first paint after process start ({torch_note})", "ms": fp["paint"] * 1000},
        {"kind": "tui", "what": "engine ready (torch + default model loaded)", "ms": fp["ready"] * 1000},
        {"kind": "tui", "what": f"keypress->paint while training, median ({presses} keys)", "ms": kp["median"] * 1000},
        {"kind": "tui", "what": "keypress->paint while training, p95", "ms": kp["p95"] * 1000},
        {"kind": "tui", "what": f"keypress->paint while training, max ({kp['steps_during']} steps ran)",
         "ms": kp["max"] * 1000},
    ]
