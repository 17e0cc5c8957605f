"""Run directories: the one owner of their format, and the watcher that follows them.

* ``layout``: every file and directory name of a run (config.json, model.safetensors,
  train_state.safetensors and their ``.next`` temps, metrics.jsonl, best/, tb/), telling a run
  from a folder of runs, finding the runs in a folder, naming runs.
* ``metrics``: what a metrics.jsonl line holds (``StepMetrics``, ``RECORD_KEYS``, the chart
  ``COLUMNS``, the checkpoint's ``SUMMARY_KEYS``), reading whole lines only (bounded), appending
  one whole line, trimming a resumed run's lines.
* ``named``: the named series, every metric with no column of its own (a RunWriter run's
  ``accuracy``, a TensorBoard tag), bounded in how many names a run keeps.
* ``tblog``: TensorBoard runs, directories of event files written by any tool, read with
  tensorboard's own loader (an optional dependency, imported only when one is polled).
* ``files``: bounded reads and atomic writes, for files that may come from anywhere.
* ``watch`` and ``events``: the :class:`Watcher`, which polls run directories from a thread of
  its own and reports what changed through a callback.

Nothing here imports torch or textual, nor the engine or the app: the engine writes runs with
these names, the CLI and the app read them, and a checkpoint is loaded by a function the
watcher is given.
"""

from .events import CheckpointFound, LoadFailed, ModelLoaded, RowsRead, RunAdded, StateChanged, WatchEvent
from .layout import (BEST_NAME, CONFIG_NAME, METRICS_NAME, NEXT_STATE_NAME, NEXT_WEIGHTS_NAME, STATE_NAME,
                     TENSORBOARD_DIR, WEIGHTS_NAME, checkpoint_dirs, expand_run_dirs, has_checkpoint,
                     has_metrics, is_run, new_run_dir, read_config, run_names, runs_in)
from .metrics import (COLUMNS, RECORD_KEYS, SUMMARY_KEYS, MetricsCursor, MetricsWriter, StepMetrics,
                      read_metrics, record_row, trim_metrics)
from .watch import POLL_S, RunWatch, Watcher, fmt_age

__all__ = [
    "BEST_NAME", "CONFIG_NAME", "METRICS_NAME", "NEXT_STATE_NAME", "NEXT_WEIGHTS_NAME", "STATE_NAME",
    "TENSORBOARD_DIR", "WEIGHTS_NAME", "checkpoint_dirs", "expand_run_dirs", "has_checkpoint",
    "has_metrics", "is_run", "new_run_dir", "read_config", "run_names", "runs_in",
    "COLUMNS", "RECORD_KEYS", "SUMMARY_KEYS", "MetricsCursor", "MetricsWriter", "StepMetrics",
    "read_metrics", "record_row", "trim_metrics",
    "POLL_S", "RunWatch", "Watcher", "fmt_age",
    "CheckpointFound", "LoadFailed", "ModelLoaded", "RowsRead", "RunAdded", "StateChanged", "WatchEvent",
]
