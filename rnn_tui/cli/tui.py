"""The commands that open the TUI: `rnn-tui [MODEL]`, `rnn-tui watch RUN_DIR...` and `rnn-tui
serve` (the TUI in a browser)."""

from __future__ import annotations

from pathlib import Path

from .output import warn
from .parser import SUBCOMMANDS


WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors", ".pkl")


def check_tui_model(model: str | None) -> None:
    """Before the screen is taken over: `rnn-tui trian` is a typo, not a model to look for; a
    text or weights file, or a directory with no run in it, is said to be one, with what to do."""
    from ..engine.errors import ConfigError

    if model is None:
        return
    path = Path(model).expanduser()
    if path.exists():
        _check_existing(model, path)
        return
    from ..engine.config import BUNDLED_MODELS

    if model in BUNDLED_MODELS:
        return
    import difflib

    close = difflib.get_close_matches(model, SUBCOMMANDS, n=1, cutoff=0.6)
    if close:
        raise ConfigError(f"unknown command {model!r}: did you mean {close[0]!r}? (rnn-tui --help lists them)")
    raise ConfigError(f"no model at {model!r}: give a run directory (rnn-tui train ... --out DIR writes one) "
                      f"or a bundled default ({', '.join(BUNDLED_MODELS)})")


def _check_existing(model: str, path: Path) -> None:
    from ..engine.errors import ConfigError
    from ..runs.layout import CONFIG_NAME, WEIGHTS_NAME, is_watchable

    try:
        if path.is_file():
            if path.name in (CONFIG_NAME, WEIGHTS_NAME):
                return  # a checkpoint's own file: its directory is loaded
            if path.suffix.lower() in WEIGHT_SUFFIXES:
                raise ConfigError(f"{model} is a weights file, not a run directory: make it one with "
                                  f"rnn-tui import {model} --vocab VOCAB --out RUN, then rnn-tui RUN")
            raise ConfigError(f"{model} is a file, not a run directory: to train on a text, rnn-tui train "
                              f"{model} (or rnn-tui --corpus {model} for the app's training screen)")
        if path.is_dir() and not is_watchable(path) and not _folder_of_runs(path):
            from ..engine.config import BUNDLED_MODELS

            if model in BUNDLED_MODELS:
                return  # `rnn-tui lstm` beside a folder named lstm: the bundled model, as ever
            raise ConfigError(f"{model} holds no run (no {CONFIG_NAME} or metrics): rnn-tui train ... --out "
                              f"{model} writes one, and rnn-tui watch {model} waits for it")
    except OSError as exc:
        raise ConfigError(f"cannot read {model}: {exc.strerror or exc}") from None


def cmd_tui(args) -> int:
    from ..app import run_app
    from ..settings import AppSettings
    from ..runs.layout import has_checkpoint, has_metrics

    # A run directory with a metrics.jsonl is followed too: its curves on the training screen,
    # its newest checkpoint in every mode (as `rnn-tui watch RUN_DIR`, opening on the stepper).
    watch, model = None, args.model
    if model and _folder_of_runs(Path(model).expanduser()):
        # A folder of runs or of TensorBoard logs (not a run itself): what `rnn-tui watch` does.
        args.runs = [model]
        if args.corpus:
            warn("--corpus is not used when watching a folder of runs: each run reads its own")
        return cmd_watch(args)
    if model and has_metrics(Path(model).expanduser()):
        watch = [model]
        if not has_checkpoint(Path(model).expanduser()):
            model = None  # no checkpoint yet: the bundled model until the run saves one
    run_app(AppSettings(model=model, corpus=args.corpus, device=args.device, sentence=args.sentence,
                        watch=tuple(watch or ()), threads=args.threads))
    return 0


def _folder_of_runs(path: Path) -> bool:
    """A directory that is no run itself but holds runs (rnn-tui's or TensorBoard logs)."""
    from ..runs.layout import is_run, runs_in

    try:
        return path.is_dir() and not is_run(path) and bool(runs_in(path))
    except OSError:
        return False


def cmd_watch(args) -> int:
    from ..app import run_app
    from ..settings import AppSettings
    from ..engine.errors import ConfigError
    from ..runs.layout import expand_run_dirs, has_checkpoint

    if (args.device or "auto").strip().lower() != "auto":
        from ..engine.device import pick_device

        pick_device(args.device)  # a missing GPU is one line, not a watch that cannot load
    dirs, roots, notes = expand_run_dirs(args.runs)
    for note in notes:
        warn(note)
    if not dirs and not roots:
        raise ConfigError("nothing to watch: give run directories (rnn-tui train ... --out RUN_DIR writes one)")
    _check_tensorboard(dirs)
    # The first run that already has a checkpoint is the model at startup; the watcher then
    # follows the newest checkpoint of the selected run.
    first = next((d for d in dirs if has_checkpoint(d)), None)
    run_app(AppSettings(model=str(first) if first is not None else None, device=args.device,
                        sentence=args.sentence, watch=tuple(str(d) for d in dirs), mode="training",
                        watch_roots=tuple(str(r) for r in roots), threads=args.threads))
    return 0


def _check_tensorboard(dirs) -> None:
    """TensorBoard logs need the tensorboard package: one line saying how to install it (an
    error when there is nothing else to watch, else a warning)."""
    from ..engine.errors import ConfigError
    from ..runs.layout import is_run, is_tensorboard_run
    from ..runs.tblog import MISSING, tensorboard_available

    logs = [d for d in dirs if d.is_dir() and is_tensorboard_run(d)]
    if not logs or tensorboard_available():
        return
    if not any(is_run(d) or not d.exists() for d in dirs):
        raise ConfigError(MISSING)
    warn(f"{MISSING} ({len(logs)} TensorBoard log{'s' if len(logs) > 1 else ''} not charted)")


def cmd_serve(args) -> int:
    from ..serve import serve

    return serve(args.model, host=args.host, port=args.port, device=args.device, corpus=args.corpus,
                 token=not args.no_token)
