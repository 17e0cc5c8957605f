"""What a training run writes as it goes: one metrics.jsonl line per logged step, and
TensorBoard scalars in RUN_DIR/tb when tensorboard is installed.

The line format and the whole-line append are ``rnn_tui.runs.metrics``'s; this module only
decides what is written where, and turns a write that cannot happen (a full disk, a link in
the run directory) into a CheckpointError: one line for the user, with no torn line left in
metrics.jsonl and the checkpoints already saved untouched. Under DDP only the main process
has a RunLog with a directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..runs.files import (
    open_regular,
    real_dir,
    refuse_link,
    remove_dead_temps,
    unlink_quietly,
)
from ..runs.layout import (
    BEST_NAME,
    CONFIG_NAME,
    METRICS_NAME,
    NEXT_WEIGHTS_NAME,
    TENSORBOARD_DIR,
    WEIGHTS_NAME,
)
from ..runs.metrics import MetricsWriter, StepMetrics
from .errors import CheckpointError

TENSORBOARD_SCALARS = ("loss", "bits", "grad_norm", "lr", "tokens_per_s")  # + val_loss when present
TENSORBOARD_MISSING = ("tensorboard is not installed (pip install 'rnn-tui[tensorboard]'): "
                       "metrics go to metrics.jsonl only")


def find_tensorboard(wanted: bool | None, notes: list[str]):
    """TensorBoard's SummaryWriter class, or None. `wanted`: True (say in `notes` when it cannot
    be had), None (when installed), False (never)."""
    if wanted is False:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception as exc:  # noqa: BLE001 - ImportError, or a broken install (protobuf)
        if wanted:
            missing = isinstance(exc, ImportError)
            notes.append(TENSORBOARD_MISSING if missing else
                         f"tensorboard cannot be used ({type(exc).__name__}: {exc}): "
                         "metrics go to metrics.jsonl only")
        return None
    return SummaryWriter


def _count_lines(path: Path, limit: int = 64 << 20) -> int:
    try:
        with open_regular(path) as fh:
            return fh.read(limit).count(b"\n")
    except OSError:
        return 0


def start_over(run_dir: Path) -> str | None:
    """A new run in the directory of one that was killed before its first checkpoint: its
    metrics.jsonl (and a best/ it saved) would mix with the new run's (steps 1-5 twice), and
    it cannot be resumed (no checkpoint). They are removed; returns a note saying so (None
    when there was nothing to remove). A directory with a checkpoint is left alone (the
    command line refuses to start a new run there)."""
    metrics = run_dir / METRICS_NAME
    if (run_dir / CONFIG_NAME).exists() or not os.path.lexists(metrics):
        return None
    lines = _count_lines(metrics)
    try:
        refuse_link(metrics)  # a link is refused, as when appending to it
        os.unlink(metrics)
        best = run_dir / BEST_NAME
        if os.path.isdir(best) and not os.path.islink(best):
            for name in (CONFIG_NAME, WEIGHTS_NAME, NEXT_WEIGHTS_NAME):
                unlink_quietly(best / name)
            remove_dead_temps(best)
            try:
                best.rmdir()
            except OSError:
                pass  # something else in it: left as it is
    except OSError as exc:
        raise CheckpointError(f"cannot start a new run in {run_dir}: {exc.strerror or exc}") from None
    return (f"{run_dir} held a run that stopped before its first checkpoint ({lines} lines of "
            f"{METRICS_NAME}): it cannot be resumed, so the new run starts it over")


class RunLog:
    """The metrics.jsonl and TensorBoard writers of one run directory (None: write nothing)."""

    def __init__(self, run_dir: Path | None, tensorboard_writer=None) -> None:
        self.run_dir = run_dir
        self._metrics = MetricsWriter(run_dir / METRICS_NAME) if run_dir is not None else None
        self._writer_cls = tensorboard_writer if run_dir is not None else None
        self._tb = None

    def open(self, step: int) -> None:
        """Open the files (again) before training from `step` on."""
        if self._metrics is not None and not self._metrics.is_open:
            try:
                self._metrics.open()
            except OSError as exc:
                raise CheckpointError(f"cannot write {self._metrics.path}: {exc.strerror or exc}") from None
        if self._writer_cls is not None and self._tb is None:
            tb_dir = self.run_dir / TENSORBOARD_DIR
            try:
                real_dir(tb_dir)  # never a link: the event files stay inside the run directory
            except OSError as exc:
                raise CheckpointError(f"cannot write TensorBoard events to {tb_dir}: {exc.strerror or exc}") from None
            # purge_step hides events logged past the step this run starts from: a crashed run's
            # (resumed from its checkpoint) or one killed before its first checkpoint (a new run).
            self._tb = self._writer_cls(log_dir=str(tb_dir), flush_secs=10, purge_step=step + 1)

    def write(self, m: StepMetrics) -> None:
        if self._metrics is not None and self._metrics.is_open:
            try:
                self._metrics.append(m.to_json())
            except OSError as exc:
                raise CheckpointError(f"cannot write {self._metrics.path} at step {m.step}: "
                                      f"{exc.strerror or exc}; training stopped, the checkpoints saved "
                                      f"so far are intact (free space, then rnn-tui train --resume "
                                      f"{self.run_dir})") from None
        if self._tb is not None:
            for tag in TENSORBOARD_SCALARS:
                self._tb.add_scalar(tag, getattr(m, tag), m.step)
            if m.val_loss is not None:
                self._tb.add_scalar("val_loss", m.val_loss, m.step)

    def sync(self) -> None:
        """Make the lines written so far durable (before each checkpoint: after a power loss the
        curve never ends before the step of the checkpoint that survived)."""
        if self._metrics is not None and self._metrics.is_open:
            try:
                self._metrics.sync()
            except OSError as exc:
                raise CheckpointError(f"cannot write {self._metrics.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        try:
            if self._metrics is not None:
                self._metrics.close()
        finally:
            if self._tb is not None:
                try:
                    self._tb.close()
                finally:
                    self._tb = None


def write_history(run_dir: Path, history: list[StepMetrics]) -> None:
    """RUN_DIR/metrics.jsonl as the whole curve so far, replacing what was there: a run that
    logs nowhere (the TUI's) saved into a directory, which then holds a whole run (its curve for
    `watch`, the training screen and `info`). A CheckpointError when it cannot be written."""
    from ..runs.files import atomic_write

    path = Path(run_dir) / METRICS_NAME
    data = "".join(m.to_json() + "\n" for m in history).encode("utf-8")
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise CheckpointError(f"cannot write {path}: {exc.strerror or exc}") from None
