"""What a run directory holds and where: every file name, telling a run from a folder of runs,
finding runs, naming them.

A run directory, as ``rnn-tui train --out RUN_DIR`` writes it::

    RUN_DIR/
        config.json                  the latest checkpoint's config: the commit point of its
                                     atomic save (model, vocab, train, metrics summary,
                                     tensors_sha256, and "resume" for --resume)
        model.safetensors            its weights (model.next.safetensors between the two
                                     renames of a save)
        train_state.safetensors      optimizer moments and the carried hidden state, for
                                     --resume (train_state.next.safetensors likewise)
        metrics.jsonl                one JSON object per logged step, whole lines only
        best/                        the checkpoint with the lowest validation loss so far
            config.json
            model.safetensors
        tb/                          TensorBoard events (when tensorboard is installed)

How the checkpoint files are written and read is ``engine/checkpoint.py``'s job; the lines of
metrics.jsonl are ``runs/metrics.py``'s. A directory is a run when it holds a metrics.jsonl or a
config.json; ``best/`` inside a run is a checkpoint of that run, never a run of its own.

A directory of TensorBoard event files written by any tool (``events.out.tfevents.*``: a name
with "tfevents" in it, TensorBoard's own rule) is a run too, a *TensorBoard run*, read by
``runs/tblog.py``; in a watched folder they are looked for as TensorBoard does, in every
directory below it (``logdir/run1/``, ``lightning_logs/version_0/``, ``fit/train/``), except
inside rnn-tui runs (``RUN_DIR/tb/`` is that run's copy of its own metrics).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .files import read_bounded

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
NEXT_WEIGHTS_NAME = "model.next.safetensors"  # only between steps 1 and 3 of a save
STATE_NAME = "train_state.safetensors"  # optimizer + carried state, for --resume (latest only)
NEXT_STATE_NAME = "train_state.next.safetensors"
METRICS_NAME = "metrics.jsonl"
TOKENIZER_NAME = "tokenizer.json"  # a subword run's tokenizer, for the user's tools (config.json has it too)
TRAIN_TOML_NAME = "train.toml"  # the run's resolved settings: rnn-tui train --config RUN/train.toml
BEST_NAME = "best"  # RUN_DIR/best: the lowest validation loss
TENSORBOARD_DIR = "tb"
RUNS_ROOT = "runs"  # where `rnn-tui train` puts a run given no --out
EVENTS_MARK = "tfevents"  # in the name of every TensorBoard event file
MAX_LISTED = 10_000  # entries of one directory looked at when telling what it holds
TB_DEPTH = 6  # how far below a watched folder TensorBoard runs are looked for
MAX_SEARCHED = 2_000  # directories looked into by one search
# A config.json holds the vocabulary (a word-level one runs to megabytes); far past that it is
# not a checkpoint config, and reading it whole would only cost memory.
MAX_CONFIG_BYTES = 32 << 20


def checkpoint_dirs(run: Path) -> tuple[Path, Path]:
    """The checkpoint directories of a run: the latest (RUN_DIR itself) and best/."""
    return run, run / BEST_NAME


def has_checkpoint(path: str | os.PathLike) -> bool:
    """A checkpoint was committed here (its config.json exists)."""
    return (Path(path) / CONFIG_NAME).is_file()


def has_metrics(path: str | os.PathLike) -> bool:
    return (Path(path) / METRICS_NAME).is_file()


def is_run(path: str | os.PathLike) -> bool:
    """A run directory: it holds a metrics.jsonl or a checkpoint."""
    path = Path(path)
    return (path / METRICS_NAME).exists() or (path / CONFIG_NAME).exists()


def _entries(path: Path):
    """The first MAX_LISTED entries of a directory (none when it cannot be listed)."""
    try:
        with os.scandir(path) as it:
            for i, entry in enumerate(it):
                if i >= MAX_LISTED:
                    return
                yield entry
    except OSError:
        return


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def event_files(path: str | os.PathLike) -> list[Path]:
    """The TensorBoard event files directly in `path`, by name (so by the time they were begun)."""
    return sorted(Path(e.path) for e in _entries(Path(path)) if EVENTS_MARK in e.name and _is_file(e))


def has_event_files(path: str | os.PathLike) -> bool:
    return any(EVENTS_MARK in e.name and _is_file(e) for e in _entries(Path(path)))


def is_tensorboard_run(path: str | os.PathLike) -> bool:
    """A directory of TensorBoard event files that is not an rnn-tui run."""
    return not is_run(path) and has_event_files(path)


def is_watchable(path: str | os.PathLike) -> bool:
    """An rnn-tui run or a TensorBoard run."""
    return is_run(path) or has_event_files(path)


def read_config(directory: Path) -> dict | None:
    """The checkpoint config in `directory` (bounded read); None when missing, torn, too large
    or not a JSON object (a save replacing it while we read: the next look sees the new one)."""
    try:
        config = json.loads(read_bounded(directory / CONFIG_NAME, MAX_CONFIG_BYTES))
    except (OSError, ValueError, RecursionError):
        return None
    return config if isinstance(config, dict) else None


def new_run_dir(cell: str, root: str | os.PathLike = RUNS_ROOT, now: float | None = None) -> Path:
    """Where a new run goes when no --out is given: runs/<yyyymmdd-hhmmss>-<cell>."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return Path(root) / f"{stamp}-{cell}"


def run_names(paths: list[Path]) -> list[str]:
    """Short unique names for run directories: the last path part, more parts when needed."""
    parts = [Path(os.path.normpath(str(p))).parts or (str(p),) for p in paths]
    depth = [1] * len(paths)
    for _ in range(8):
        names = ["/".join(ps[-d:]) for ps, d in zip(parts, depth)]
        dupes = {n for n in names if names.count(n) > 1}
        if not dupes:
            return names
        depth = [d + 1 if n in dupes else d for n, d in zip(names, depth)]
    return [str(p) for p in paths]


def expand_run_dirs(specs: list[str]) -> tuple[list[Path], list[Path], list[str]]:
    """Run directories to watch, folders of runs to keep looking in, and notes.

    A directory that holds no run itself (``runs/``) is a folder of runs: the runs inside
    it now are watched, and runs that appear in it later are added while watching. A path
    that does not exist yet is kept (the watcher waits for a run there); a file
    (``runs/big.log`` from ``rnn-tui watch runs/*``) is left out with a note.
    """
    out: list[Path] = []
    roots: list[Path] = []
    notes: list[str] = []
    for spec in specs:
        path = Path(spec).expanduser()
        if path.exists() and not path.is_dir():
            notes.append(f"{spec} is a file, not a run directory: left out")
            continue
        if path.is_dir() and not is_run(path):
            roots.append(path)
            out.extend(runs_in(path))
            continue
        out.append(path)
    return unique_paths(out), unique_paths(roots), notes


def runs_in(folder: Path) -> list[Path]:
    """The rnn-tui runs directly inside `folder` and the TensorBoard runs in it or below it
    (`folder` itself when it holds event files), sorted ([] when it cannot be listed)."""
    folder = Path(folder)
    found = [folder] if has_event_files(folder) else []
    level, searched = [folder], 0
    for depth in range(1, TB_DEPTH + 1):
        deeper = []
        for directory in level:
            for entry in _entries(directory):
                if searched >= MAX_SEARCHED:
                    break
                if not _is_dir(entry):
                    continue
                searched += 1
                path = Path(entry.path)
                if is_run(path):  # an rnn-tui run (its best/ and tb/ are its own)
                    if depth == 1:
                        found.append(path)
                    continue
                if has_event_files(path):
                    found.append(path)
                deeper.append(path)
        level = deeper
    return sorted(found)


def unique_paths(paths: list[Path]) -> list[Path]:
    """`paths` without repeats (the same directory named twice), in order."""
    seen: set[str] = set()
    unique = []
    for p in paths:
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique
