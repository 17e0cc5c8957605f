"""What a training run writes as it goes: one metrics.jsonl line per logged step, and
TensorBoard scalars in RUN_DIR/tb when tensorboard is installed.

The line format and the whole-line append are ``rnn_tui.runs.metrics``'s; this module only
decides what is written where, and turns a write that cannot happen into a CheckpointError.
Under DDP only the main process has a RunLog with a directory.
"""

from __future__ import annotations

from pathlib import Path

from ..runs.layout import METRICS_NAME, TENSORBOARD_DIR
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
            # purge_step hides events a crashed run logged past the step it resumes from.
            self._tb = self._writer_cls(log_dir=str(self.run_dir / TENSORBOARD_DIR), flush_secs=10,
                                        purge_step=step + 1 if step else None)

    def write(self, m: StepMetrics) -> None:
        if self._metrics is not None and self._metrics.is_open:
            self._metrics.append(m.to_json())
        if self._tb is not None:
            for tag in TENSORBOARD_SCALARS:
                self._tb.add_scalar(tag, getattr(m, tag), m.step)
            if m.val_loss is not None:
                self._tb.add_scalar("val_loss", m.val_loss, m.step)

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
