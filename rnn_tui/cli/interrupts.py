"""Ctrl-C and SIGTERM: the first one stops the command, later ones never print a traceback.

Two handlers share one process-wide `STOPPING` flag:

- `quiet_after_first` is the SIGINT handler the `rnn-tui` command runs under. The first Ctrl-C
  raises KeyboardInterrupt as Python's own handler does; once the process is stopping, any later
  one is ignored, however soon it comes.
- `Interrupts` is what training runs under: the first interrupt stops training (the checkpoint
  is then saved), later ones only say the save is under way.

Training hands its handler back when it ends; because both read `STOPPING`, a Ctrl-C that comes
after training was interrupted (while the command prints its last line and the interpreter shuts
down) is ignored too, not a KeyboardInterrupt outside every handler.

The trade-off: once one Ctrl-C has stopped a command, Ctrl-C no longer stops it; a clean-up that
hangs (a DDP shutdown whose peers are gone) ends with SIGTERM (`kill PID`) or `kill -9`.
"""

from __future__ import annotations

import os
import signal
import threading

STOPPING = threading.Event()


def quiet_after_first(signum, frame) -> None:
    if STOPPING.is_set():
        return
    STOPPING.set()
    raise KeyboardInterrupt


def install_quiet_handler() -> None:
    """Run the rest of the process under `quiet_after_first` (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, quiet_after_first)


def ignore_from_now_on() -> None:
    """Nothing is left to stop: ignore SIGINT at the OS level too. (The interpreter resets the
    handlers it installed as it shuts down; a Ctrl-C then would end the process by signal.)"""
    STOPPING.set()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


class Interrupts:
    """Ctrl-C and SIGTERM (`kill PID`, a scheduler, torchrun stopping its workers) while training.

    The first one stops training as Ctrl-C always does (a KeyboardInterrupt: the checkpoint is
    then saved). Any later one, however soon it comes (two Ctrl-C 2 ms apart), does not cut the
    save short: it only says the save is under way. No traceback, no death by signal.
    """

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self) -> None:
        self.count = 0
        self._told = False
        self._old: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                if hasattr(signal, name):
                    self._old[name] = signal.signal(getattr(signal, name), self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.count += 1
        if self.count == 1:
            STOPPING.set()
            raise KeyboardInterrupt
        if not self._told:  # os.write: a print() here could be re-entered
            self._told = True
            os.write(2, b"rnn-tui: stopping: the checkpoint is being saved, one moment\n")

    def __exit__(self, *exc) -> None:
        for name, old in self._old.items():
            signal.signal(getattr(signal, name), old)
        self._old.clear()
