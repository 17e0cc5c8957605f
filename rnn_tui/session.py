"""`Session`: what the screens share besides the model and the sentence.

One per app, created with it: the lab's results (other screens quote them), the numbers the
screens measured that the help's concepts quote (`facts`), the compare
screen's trained models (so leaving and coming back keeps them), the spectral radius of
every training snapshot (the Dynamics screen draws it, opened or not), and the bundled trained
models (rnn, lstm, gru) that several screens draw next to the current one, each loaded once
and shared. `bundled()` is called from worker threads: it is thread-safe and never runs on
the event loop.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from .engine.config import BUNDLED_MODELS


def load_bundled(name: str):
    """The bundled trained model `name` on the CPU (a worker thread; tests replace this)."""
    from .engine.checkpoint import load_model

    return load_model(name, device="cpu")


class Session:
    def __init__(self) -> None:
        self.lab_results: dict[str, Any] = {}  # experiment name -> its latest result
        # What the screens measured that the concepts in ? quote ("stepper.alias", "gradients.profiles"...)
        self.facts: dict[str, Any] = {}
        self.compare: Any = None  # the compare screen's models and curves, once trained or loaded
        # (training step, spectral radius) of every snapshot of the run training in the app
        self.radius_history: list[tuple[int, float]] = []
        self._bundled: dict[str, Any] = {}  # name -> LoadedModel, or the RnnTuiError it raised
        self._lock = threading.Lock()
        # The inspector's corpus indexes (CorpusStates), by (model fingerprint, value, layer,
        # corpus fingerprint): a second visit, or the same weights loaded again, is instant.
        self._states: OrderedDict[tuple, Any] = OrderedDict()
        self._states_lock = threading.Lock()

    CORPUS_STATES_KEPT = 4  # N x H bytes each: 63 MiB for 1 MB of text at H = 64

    def corpus_states(self, key: tuple):
        """The complete corpus index cached for key, or None (any thread)."""
        with self._states_lock:
            hit = self._states.get(key)
            if hit is not None:
                self._states.move_to_end(key)
            return hit

    def keep_corpus_states(self, key: tuple, states) -> None:
        with self._states_lock:
            self._states[key] = states
            self._states.move_to_end(key)
            while len(self._states) > self.CORPUS_STATES_KEPT:
                self._states.popitem(last=False)

    def add_radius(self, step: int, radius: float) -> bool:
        """Record ρ at a training step; an earlier step than the last means a new run
        (the history starts again). False when the step is already recorded."""
        history = self.radius_history
        if history and step <= history[-1][0]:
            if step == history[-1][0]:
                return False
            history.clear()
        history.append((step, radius))
        return True

    def bundled(self, name: str):
        """The bundled model `name`, loaded on first use; raises the RnnTuiError loading gave,
        every time it is asked (a missing file is not retried on every redraw)."""
        from .engine.errors import RnnTuiError

        with self._lock:
            hit = self._bundled.get(name)
            if hit is None:
                try:
                    hit = load_bundled(name)
                except RnnTuiError as exc:
                    hit = exc
                self._bundled[name] = hit
        if isinstance(hit, Exception):
            raise hit
        return hit

    @staticmethod
    def bundled_name(lm) -> str | None:
        """'lstm' when `lm` is the bundled LSTM itself (loaded from the package's files)."""
        source = lm.meta.get("source") if lm is not None else None
        if not source:
            return None
        from .engine.checkpoint import DEFAULTS_DIR

        try:
            src = Path(source).resolve()
        except (OSError, RuntimeError):
            return None
        for name in BUNDLED_MODELS:
            if src == (DEFAULTS_DIR / name).resolve():
                return name
        return None
