"""`rnn-tui train`: a run headless (new, or --resume), with a progress bar or progress lines.

Ctrl-C and SIGTERM end a run with a checkpoint saved (exit status 130); a run that diverged
exits with 3. Under --ddp (torchrun) only rank 0 prints and writes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .interrupts import Interrupts
from .output import warn


def _train_flags() -> list[str]:
    """`rnn-tui train` flags that set TrainConfig fields of the same name (None: not given)."""
    from ..engine.config import train_options

    return [o.name for o in train_options() if o.flag]


def _warn_unused_flags(given: dict, config) -> None:
    """Flags that do nothing for this model are said to do nothing (they are kept, not refused)."""
    if "nonlinearity" in given and config.cell != "rnn":
        warn(f"--nonlinearity only applies to the vanilla cell: the {config.cell.upper()} uses its own")
    if "spectral_radius" in given and config.init not in ("spectral", "echo"):
        warn("--spectral-radius only applies with --init spectral or echo: ignored")
    if given.get("dropout") and config.layers < 2:
        warn("--dropout acts between stacked layers: with --layers 1 it does nothing")
    if "bpe_vocab" in given and config.level != "bpe":
        warn(f"--bpe-vocab sizes a subword tokenizer: with --level {config.level} it does nothing")
    elif "bpe_vocab" in given and config.tokenizer is not None:
        warn("--bpe-vocab sizes a tokenizer trained here: with --tokenizer the file's own pieces are used")


def cmd_train(args) -> int:
    from ..engine.config import absolute_paths
    from ..engine.errors import ConfigError
    from ..engine.train import TrainConfig, Trainer
    from ..runs.layout import CONFIG_NAME, new_run_dir

    given = {k: getattr(args, k) for k in _train_flags() if getattr(args, k) is not None}
    flags = dict(given)  # what the command line says (a --config file writes every setting)
    if args.config:  # the file's settings, then the flags given on the command line over them
        from ..engine.config import load_train_toml

        given = {**load_train_toml(args.config), **given}
    if args.corpus_flag is not None:
        if args.corpus is not None and args.corpus != args.corpus_flag:
            raise ConfigError(f"two corpora given: {args.corpus!r} and --corpus {args.corpus_flag!r}; give one")
        args.corpus = args.corpus_flag
    if args.corpus is not None:
        given["corpus"] = args.corpus
    given = absolute_paths(given)  # --resume finds the files from any directory
    if given.get("tokenizer") is not None and "level" not in given and not args.resume:
        given["level"] = "bpe"  # a tokenizer file says which tokens: subword pieces
    cache_dir = None
    if not args.no_cache:
        from ..engine.corpus import default_cache_dir

        cache_dir = Path(args.cache_dir).expanduser() if args.cache_dir else default_cache_dir()
    dist = None
    if args.ddp:
        from ..engine.distributed import init_distributed

        dist = init_distributed(given.get("device", "auto"))
    try:
        if args.resume:
            out = Path(args.resume)
            if args.out and Path(args.out).resolve() != out.resolve():
                raise ConfigError("--out and --resume name different run directories: a resumed run "
                                  "goes on writing into its own (--resume RUN_DIR)")
            trainer = Trainer.from_run(out, overrides=given, dist=dist, tensorboard=args.tensorboard,
                                       cache_dir=cache_dir)
        else:
            if "corpus" not in given:
                raise ConfigError("name the corpus to train on: grammar, parity, agreement or a text file "
                                  "(or --resume RUN_DIR to continue a run)")
            config = TrainConfig(**given)
            if config.steps == 0:
                raise ConfigError("--steps 0: a new run needs at least one step to train (nothing was written)")
            _warn_unused_flags(flags, config)
            out = Path(args.out) if args.out else new_run_dir(config.cell)
            if dist is not None:
                out = Path(dist.broadcast_object(str(out)))  # every rank: rank 0's clock
            try:
                taken = (out / CONFIG_NAME).exists()
            except OSError as exc:  # a directory we may not look into
                raise ConfigError(f"cannot use --out {out}: {exc.strerror or exc}") from None
            if taken:
                raise ConfigError(f"{out} already holds a run: continue it with --resume {out}, "
                                  f"or give another --out")
            trainer = Trainer(config, run_dir=out, dist=dist, tensorboard=args.tensorboard,
                              cache_dir=cache_dir)
            if trainer.is_main:
                _keep_settings(out, trainer.config)
        from ..engine.threads import apply_threads, choose_threads

        c = trainer.config
        apply_threads(choose_threads(c.hidden, c.batch, c.cell, requested=args.threads))
        code = _run_training(trainer, out, args.resume is not None)
    except BaseException:
        if dist is not None:
            from ..engine.distributed import shutdown

            shutdown(clean=False)
        raise
    if dist is not None:
        from ..engine.distributed import shutdown

        shutdown(clean=code in (0, 3))  # 130: interrupted, the others may be gone
    return code


def _keep_settings(out: Path, config) -> None:
    """RUN/train.toml: the resolved settings, so the run can be made again as it was."""
    from ..engine.config import train_toml
    from ..runs.files import atomic_write
    from ..runs.layout import TRAIN_TOML_NAME

    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / TRAIN_TOML_NAME, train_toml(config).encode("utf-8"))
    except OSError as exc:
        warn(f"could not write {out / TRAIN_TOML_NAME}: {exc.strerror or exc}")


def _run_training(trainer, out: Path, resumed: bool) -> int:
    config = trainer.config
    main = trainer.is_main
    if main:
        for note in trainer.notes:
            warn(note)
        if resumed:
            warn(f"resuming {out} at step {trainer.step} of {config.steps}" if trainer.step < config.steps
                 else f"{out} is already at step {trainer.step} of {config.steps}: give a larger --steps "
                      f"to train on")
    start_step = trainer.step
    progress = _TrainProgress(config.steps, start=trainer.step) if main else None
    trainer.on_metrics = progress.update if progress is not None else None
    with Interrupts():
        try:
            result = trainer.run()
        except KeyboardInterrupt:  # later interrupts wait for the save (see Interrupts)
            if progress is not None:
                progress.close()
            trainer.save(out)
            if main:
                print(f"interrupted at step {trainer.step}; checkpoint saved to {out} "
                      f"(continue with: rnn-tui train --resume {out})", file=sys.stderr)
            return 130
    if progress is not None:
        progress.close()
    if not main:
        return 3 if result.diverged else 0
    if result.stopped_reason and result.diverged:
        print(f"rnn-tui: training stopped: {result.stopped_reason}", file=sys.stderr)
    if trainer.step == start_step and not result.diverged:
        print(f"nothing to train: {out} is unchanged (step {trainer.step})")
        return 0
    summary = trainer.history[-1] if trainer.history else None
    val = result.best_val_loss
    line = f"saved {out}  (step {trainer.step}"
    if summary is not None:
        line += f", train loss {summary.loss:.3f} nats = {summary.bits:.3f} bits/token"
    if val is not None:
        line += f", best val loss {val:.3f}"
    print(line + ")")
    return 3 if result.diverged else 0


LOG_EVERY_S = 30.0  # without a terminal: a progress line at least this often


class _TrainProgress:
    """A Rich progress bar on a terminal; a plain line every 10% otherwise (logs, CI)."""

    def __init__(self, total: int, start: int = 0):
        self.total = total
        self.tty = sys.stderr.isatty()
        self.next_report = start
        self.next_time = time.monotonic() + LOG_EVERY_S
        self.progress = None
        self.last_val: tuple[float, int] | None = None
        if self.tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                console=Console(stderr=True), transient=False,
            )
            self.task = self.progress.add_task("train", total=total, completed=start, info="")
            self.progress.start()

    def update(self, m) -> None:
        fresh = getattr(m, "val_loss", None) is not None
        if fresh:
            self.last_val = (m.val_loss, m.step)
        val = ""
        if self.last_val is not None:  # the bar keeps the latest validation, with the step it is from
            val = f" val {self.last_val[0]:.3f}" + ("" if fresh else f" @{self.last_val[1]}")
        info = f"loss {m.loss:.3f} ({m.bits:.2f} bits) |g| {m.grad_norm:.2g} {m.tokens_per_s:,.0f} tok/s{val}"
        if self.progress is not None:
            self.progress.update(self.task, completed=m.step, info=info)
        elif (fresh or m.step >= self.next_report or m.step == self.total
              or time.monotonic() >= self.next_time):
            # every 10% of the run, and at least every LOG_EVERY_S seconds of a long one
            print(f"step {m.step}/{self.total} {info}", file=sys.stderr, flush=True)
            if m.step >= self.next_report:
                self.next_report = m.step + max(1, self.total // 10)
            self.next_time = time.monotonic() + LOG_EVERY_S

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
