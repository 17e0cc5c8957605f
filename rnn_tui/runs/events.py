"""What the watcher reports: one small frozen record for each thing that happened to a run.

:class:`~rnn_tui.runs.watch.Watcher` calls its ``report`` callback with these, in order, at the
end of each poll and on its own thread: a receiver that draws must hand them to its UI thread
(the app posts a message). Every event names the :class:`~rnn_tui.runs.watch.RunWatch` it is
about, whose plain attributes hold the rest of what the watcher knows of that run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    import numpy as np
# "RunWatch" (rnn_tui.runs.watch) is named as a string only: watch.py imports this module.


@dataclass(frozen=True, eq=False)
class RunAdded:
    """A run joined the watch: one it was given (at the first poll), or one that appeared in a
    watched folder of runs."""

    run: "RunWatch"  # noqa: F821 (see above)


@dataclass(frozen=True, eq=False)
class RowsRead:
    """New whole lines of the run's metrics.jsonl (or new events of a TensorBoard run), as rows
    of ``COLUMNS`` (an (n, 8) read-only float array, "wall" filled in). ``restarted``: the file
    was rewritten (a resume dropped the lines past its checkpoint) and these rows start the
    run's series over, as generation ``generation``; rows may then be empty. ``named``: the new
    points of the run's named series (``runs.named``), name -> an (m, 4) read-only array in
    ``NAMED_COLUMNS`` order (step, time, wall, value). ``purge``: a TensorBoard log restarted
    (a SessionLog START, ``SummaryWriter(purge_step=N)``) at this step: the points read before
    at this step and later are stale (these rows and points come after the restart)."""

    run: "RunWatch"  # noqa: F821 (see above)
    rows: "np.ndarray"
    generation: int
    restarted: bool
    named: Mapping[str, np.ndarray] = field(default_factory=dict)
    purge: float | None = None


@dataclass(frozen=True, eq=False)
class CheckpointFound:
    """The run's newest checkpoint (RUN_DIR or RUN_DIR/best, whichever committed last) changed."""

    run: "RunWatch"  # noqa: F821 (see above)
    directory: Path
    sha: str
    step: int | None


@dataclass(frozen=True, eq=False)
class ModelLoaded:
    """The watcher's ``load`` function loaded the model run's newest checkpoint; ``model`` is what
    it returned (its ``meta["watch"]`` names the run, directory and step)."""

    run: "RunWatch"  # noqa: F821 (see above)
    model: Any


@dataclass(frozen=True, eq=False)
class LoadFailed:
    """Loading the model run's newest checkpoint failed (the last good model stays); retried at
    later polls, further apart each time."""

    run: "RunWatch"  # noqa: F821 (see above)
    error: str


@dataclass(frozen=True, eq=False)
class StateChanged:
    """The run's state (``RunWatch.state``: waiting, new, live, stale, done) is not what it was."""

    run: "RunWatch"  # noqa: F821 (see above)
    state: str
    previous: str | None


WatchEvent = Union[RunAdded, RowsRead, CheckpointFound, ModelLoaded, LoadFailed, StateChanged]
