"""Helpers the Pilot (App.run_test) tests share: waiting for workers, polling, pressing keys."""

from __future__ import annotations

import asyncio
import io
import time

from rich.console import Console
from textual.worker import WorkerCancelled, WorkerFailed


async def settle(pilot, rounds: int = 2, quiet: bool = False) -> None:
    """Let workers finish and their messages be handled (a trace posts twice).

    A failed or cancelled worker is not an error here: the app reports it as a notification,
    which the tests look for. `quiet` then clears the notifications, so no toast whose
    timeout races a snapshot is left on screen.
    """
    for _ in range(rounds):
        try:
            await pilot.app.workers.wait_for_complete()
        except (WorkerFailed, WorkerCancelled):
            pass
        await pilot.pause()
    if quiet:
        pilot.app.clear_notifications()
        await pilot.pause()


async def wait_for(pilot, condition, timeout: float = 30.0, what: str = "condition",
                   every: float = 0.05) -> None:
    """Poll (letting the UI run) until condition() is true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(every)


async def tap(pilot, *keys: str) -> None:
    """Press keys without Pilot.press's wait for an idle CPU, which never comes while a
    training thread runs (Pilot would wait up to a second per key). Each key is handled
    before this returns: the app forwards it to the screen's queue, and a callback queued
    on the screen after that runs after it."""
    app = pilot.app
    for key in keys:
        done = asyncio.Event()
        app.simulate_key(key)
        app.call_later(lambda: app.screen.call_later(done.set))
        await asyncio.wait_for(done.wait(), 10)
        await pilot.pause(0)


def notes(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


def text_of(screen, selector: str, width: int = 100) -> str:
    """The plain text of a Static's content (Rich Text or a Group of renderables)."""
    content = screen.query_one(selector).content
    if isinstance(content, str):
        return content
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(content)
    return console.export_text()
