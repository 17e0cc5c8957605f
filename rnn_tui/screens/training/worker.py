"""What runs in the training screen's threads, and the messages it posts back.

`train` builds the run's Trainer and runs it. It never touches a widget: each logged step is
queued on the run (`TrainingRun.push`), and everything else reaches the screen as a message:
`TrainingStarted` once the trainer is built, a `ModelSnapshot` every few seconds (a CPU copy
of the weights for the other modes; a newer one supersedes one not yet handled) and a final
one, then `TrainingEnded` with the result or the error. `save` writes a run's checkpoint
(`CheckpointSaved`); saving before quitting ends with `SavedToQuit`. Torch is imported here, inside the thread, never on the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from textual.message import Message

from ...engine.errors import CheckpointError, RnnTuiError
from .runs import TrainingRun


@dataclass
class TrainingStarted(Message):
    run_index: int
    trainer: Any


@dataclass
class ModelSnapshot(Message):
    """Fresh weights from a training run, for the other modes. A newer one supersedes it."""

    run_index: int
    lm: Any
    final: bool = False

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ModelSnapshot) and not message.final


@dataclass
class TrainingEnded(Message):
    run_index: int
    result: Any = None  # TrainResult, or None when it never started
    error: BaseException | None = None  # why it failed (reported through the base's error path)


@dataclass
class CheckpointSaved(Message):
    run_index: int
    path: str = ""
    step: int = 0  # the step of the weights saved
    error: BaseException | None = None


@dataclass
class SavedToQuit(Message):
    """Every run asked for was saved (or failed to be) before quitting."""

    saved: list[CheckpointSaved]


# The named series an LSTM's or GRU's run gets (chart it with m): the share of keep-gate units
# (LSTM forget, GRU update) above 0.9 more than half the time, over 500 tokens of validation text.
SATURATION_NAME = {"lstm": "forget gates saturated", "gru": "update gates saturated"}


def train(run: TrainingRun, stop, post: Callable[[Message], Any], snapshot_every_s: Callable[[], float]) -> None:
    """Thread: train `run` until it is done or `stop` is set (``stop`` also reads the worker's
    cancellation); ``post`` sends a message to the screen."""
    try:
        from ...engine.train import Trainer

        last_snap = [time.monotonic()]
        holder: dict[str, Any] = {}

        def on_metrics(m) -> None:  # training thread, between steps (no lock held)
            run.push(m, time.time())
            saturation = holder.get("saturation")
            if saturation is not None and m.step % saturation.every == 0:
                saturation(m)  # the gates over a fixed piece of validation text, live weights
                run.push_named(SATURATION_NAME[run.config.cell], m.step, m.wall_time, time.time(),
                               saturation.fraction[-1])
            now = time.monotonic()
            if now - last_snap[0] >= snapshot_every_s() and "trainer" in holder:
                last_snap[0] = now
                post(ModelSnapshot(run.index, holder["trainer"].snapshot()))

        trainer = Trainer(run.config, on_metrics=on_metrics)
        holder["trainer"] = trainer
        if run.config.cell in SATURATION_NAME:  # Karpathy et al. 2015: how many keep gates saturate
            from ...engine.saturation import SaturationRecorder

            every = max(10, run.config.steps // 40)
            holder["saturation"] = SaturationRecorder(trainer.model, trainer.corpus.val[:500], every=every)
        if stop.is_set():
            post(TrainingEnded(run.index))
            return
        post(TrainingStarted(run.index, trainer))
        result = trainer.run(stop)
        if trainer.step > 0 and not stop.cancelled:
            post(ModelSnapshot(run.index, trainer.snapshot(), final=True))
        post(TrainingEnded(run.index, result))
    except Exception as exc:  # noqa: BLE001 - a bad corpus, the device, a bug: reported, never raised
        post(TrainingEnded(run.index, error=exc))
    finally:
        run.finished.set()


def save_target(runs_dir: Path, cell: str) -> Path:
    """runs/<time>-<cell>/ (with -2, -3… when taken)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    target = runs_dir / f"{stamp}-{cell}"
    n = 2
    while target.exists():
        target = runs_dir / f"{stamp}-{cell}-{n}"
        n += 1
    return target


def save(run: TrainingRun, target: Path) -> CheckpointSaved:
    """Thread: write the run's checkpoint (its trainer saves between two steps)."""
    step = run.trainer.step  # a paused or finished run's: what is saved
    try:
        path = run.trainer.save(target)
    except OSError as exc:
        return CheckpointSaved(run.index, error=CheckpointError(f"cannot write {target}: {exc.strerror or exc}"))
    except RnnTuiError as exc:
        return CheckpointSaved(run.index, error=exc)
    return CheckpointSaved(run.index, str(path), step)
