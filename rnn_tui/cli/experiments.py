"""The commands that measure: `rnn-tui bench` and `rnn-tui experiment` (headless, with progress
on stderr and the result as a table or JSON on stdout)."""

from __future__ import annotations

import json
import math
import sys

from .output import EXIT_USER_ERROR, dump


def cmd_bench(args) -> int:
    if args.device.strip().lower().startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            print(f"rnn-tui: error: bench --device cuda: CUDA is not available here ({why}; "
                  f"torch {torch.__version__})", file=sys.stderr)
            return EXIT_USER_ERROR
    from ..engine.bench import format_table, parse_sizes, run_bench

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    rows = run_bench(device=args.device, quick=args.quick, sizes=parse_sizes(args.sizes),
                     encode=not args.no_encode, inspect=not args.no_inspect, threads=not args.no_threads,
                     memory_mb=args.memory_mb, log=log)
    if not args.no_tui:
        from ..bench_tui import bench_tui

        rows += bench_tui(log=log)
    if args.json:
        dump(rows)
    else:
        print(format_table(rows))
    return 0


def _setting(text: str) -> tuple[str, object]:
    from ..engine.errors import ConfigError

    key, sep, raw = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key:
        raise ConfigError(f"--set takes KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw  # plain text, e.g. model=lstm
    except RecursionError:
        raise ConfigError(f"--set {key}: the value is nested too deeply to be a setting") from None
    return key, value


class _ExperimentProgress:
    """One line on stderr, redrawn on a terminal; every 10% otherwise (logs, CI)."""

    def __init__(self):
        self.tty = sys.stderr.isatty()
        self.next_report = 0.0

    def __call__(self, fraction: float, message: str) -> None:
        if self.tty:
            sys.stderr.write(f"\r\x1b[K{fraction:4.0%} {message}"[:200])
            sys.stderr.flush()
        elif fraction >= self.next_report:
            print(f"{fraction:4.0%} {message}", file=sys.stderr, flush=True)
            self.next_report = math.floor(fraction * 10 + 1) / 10

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def cmd_experiment(args) -> int:
    from ..engine.errors import ConfigError
    from ..engine.experiments import EXPERIMENTS, get_experiment

    if args.list:
        names = [get_experiment(args.name).name] if args.name else list(EXPERIMENTS)  # one, or all
        width = max(len(n) for n in names)
        for name in names:
            exp = EXPERIMENTS[name]
            print(f"{name:<{width}}  {exp.explanation[0]}")
            print(f"{'':<{width}}  {exp.explanation[1]}")
        return 0
    if not args.name:
        raise ConfigError(f"name an experiment ({', '.join(EXPERIMENTS)}) or use --list")
    exp = get_experiment(args.name)
    settings = exp.settings(dict(_setting(t) for t in args.set), quick=args.quick)
    progress = _ExperimentProgress()
    try:
        # The experiments train many small models: one thread each unless --threads says more.
        result = exp.run(settings, progress=progress, threads=args.threads or 1)
    finally:
        progress.close()
    if args.json:
        dump(result.to_json())
    else:
        print(result.summary())
    return 0
