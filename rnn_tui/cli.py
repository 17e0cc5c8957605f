"""The `rnn-tui` command line.

`rnn-tui` alone opens the TUI; the subcommands run the engine headless and print text or JSON.
Every error reaches the user as one line on stderr with a non-zero exit status; set
RNN_TUI_DEBUG=1 to see the traceback of an unexpected one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

SUBCOMMANDS = ("train", "sample", "trace", "grads", "jacobian", "info", "bench", "experiment", "watch", "serve")

EXIT_USER_ERROR = 2
EXIT_INTERNAL = 1


def _int_at_least(low: int):
    """An argparse type: a whole number >= low, with a message that says which rule failed."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_nonneg_int = _int_at_least(0)


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


# --------------------------------------------------------------------------- parsers
class _Parser(argparse.ArgumentParser):
    """argparse with the house style for mistakes: one line on stderr, exit status 2
    (not the whole usage block), pointing at --help."""

    def error(self, message: str):  # noqa: D401 - argparse's name
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _tui_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="rnn-tui",
        description="Look inside recurrent networks (RNN, LSTM, GRU) while they read and train. "
        f"Subcommands: {', '.join(SUBCOMMANDS)} (rnn-tui SUBCOMMAND --help).",
    )
    p.add_argument("model", nargs="?", default=None,
                   help="run directory or bundled default (rnn, lstm, gru); default: lstm")
    p.add_argument("--corpus", default=None, help="corpus for training: a bundled name or a text file")
    p.add_argument("--sentence", default=None, help="the sentence to step through")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    return p


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig option (engine.config): its help, choices and default are the
    config's own. Flags default to None ("not given"): TrainConfig supplies the default named
    in the help, and --resume can tell a flag the user gave from one left alone."""
    from .engine.config import train_options

    for opt in train_options():
        if not opt.flag:
            continue
        text = opt.help
        text += f" (default {opt.default_text()})"
        if opt.kind == "bool":
            parser.add_argument(opt.flag_name, action=argparse.BooleanOptionalAction, default=None, help=text)
            continue
        if opt.kind == "int":
            kind = _int_at_least(int(opt.low or 0))
        elif opt.kind == "float":
            kind = _finite_float
        else:
            kind = str
        parser.add_argument(opt.flag_name, type=kind, default=None, help=text,
                            metavar=opt.name.upper() if opt.kind != "choice" else "{" + ",".join(opt.choices) + "}")


def _sub_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="rnn-tui")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p.subcommands = sub.choices  # name -> its parser

    # Training flags default to None ("not given"): TrainConfig supplies the defaults named in
    # the help, and --resume can tell a flag the user gave from one left alone.
    t = sub.add_parser("train", help="train a model headless, writing a run directory")
    t.add_argument("corpus", nargs="?", default=None,
                   help="bundled corpus (grammar, parity, agreement) or a UTF-8 text file "
                   "(with --resume: the run's own unless given)")
    # The TUI takes `--corpus FILE`; people type the same here.
    t.add_argument("--corpus", dest="corpus_flag", default=None, metavar="CORPUS", help="the same as CORPUS")
    _add_config_flags(t)
    t.add_argument("--out", default=None, help="run directory (default runs/<time>-<cell>)")
    t.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue the run in RUN_DIR: its step count, optimizer state and loss curve, "
                   "with its own settings (--steps, --eval-every, --log-every, --save-every, --device "
                   "and --amp may change)")
    t.add_argument("--tensorboard", action=argparse.BooleanOptionalAction, default=None,
                   help="TensorBoard events in RUN_DIR/tb (default: when tensorboard is installed)")
    t.add_argument("--ddp", action="store_true",
                   help="data-parallel over the processes torchrun starts: "
                   "torchrun --nproc_per_node=N -m rnn_tui train ... --ddp")
    t.add_argument("--cache-dir", default=None,
                   help="where text corpora's encodings are cached (default $RNN_TUI_CACHE_DIR, "
                   "else ~/.cache/rnn-tui/corpus)")
    t.add_argument("--no-cache", action="store_true", help="encode a text corpus afresh, without the cache")

    s = sub.add_parser("sample", help="sample text from a model")
    s.add_argument("model", help="run directory or bundled default (rnn, lstm, gru)")
    s.add_argument("--prime", default="", help="text the model reads first; the sample continues it")
    s.add_argument("--temperature", type=_finite_float, default=0.8,
                   help="> 0 (default 0.8): lower is safer and more repetitive, higher more surprising")
    s.add_argument("--top-k", type=_nonneg_int, default=0,
                   help="sample among the k likeliest tokens only (default 0: all of them)")
    s.add_argument("--length", type=_positive_int, default=200, help="tokens to generate (default 200)")
    s.add_argument("--seed", type=_nonneg_int, default=None, help="the same seed gives the same sample")
    s.add_argument("--greedy", action="store_true", help="always take the likeliest token (no temperature)")
    s.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")

    for name, what in (("trace", "hidden states, gates and next-token probabilities per step"),
                       ("grads", "gradient norm by timestep"),
                       ("jacobian", "Jacobian product norms and the recurrent spectrum")):
        q = sub.add_parser(name, help=what)
        q.add_argument("model", help="run directory or bundled default (rnn, lstm, gru)")
        q.add_argument("text", help="the text the model reads (characters it does not know are skipped)")
        q.add_argument("--json", action="store_true", help="print the probe as JSON")
        q.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
        if name == "trace":
            q.add_argument("--top-k", type=_positive_int, default=5,
                           help="next-token candidates per step (default 5)")
        if name == "grads":
            q.add_argument("--mode", choices=("last", "sum"), default="last",
                           help="the loss: at the last token (default) or summed over every prediction")
        if name == "jacobian":
            q.add_argument("--layer", type=int, default=-1, help="which layer (default -1: the top one)")

    i = sub.add_parser("info", help="config, parameter counts and metrics of a model")
    i.add_argument("model", help="run directory or bundled default (rnn, lstm, gru)")
    i.add_argument("--json", action="store_true", help="print it as JSON")

    b = sub.add_parser("bench", help="trainer vs bare torch loop, probe latency, TUI latency")
    b.add_argument("--device", default="cpu")
    b.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    b.add_argument("--json", action="store_true")
    b.add_argument("--no-tui", action="store_true", help="skip the TUI latency rows")
    b.add_argument("--sizes", default=None, metavar="HxB[,HxB...]",
                   help="training sizes, hidden x batch (default 256x32 on the CPU; with --device cuda "
                   "256x64,256x256,1024x64,1024x256 and the probes at H=1024)")
    b.add_argument("--no-encode", action="store_true", help="skip the corpus encoding rows")
    b.add_argument("--no-inspect", action="store_true", help="skip the unit inspector rows")

    e = sub.add_parser("experiment", help="run a named experiment headless (--list names them)")
    e.add_argument("name", nargs="?", default=None, help="parity, init-schemes, clipping, tbptt, zog, "
                   "temperature, agreement, memory-horizon or spectral")
    e.add_argument("--list", action="store_true", help="name every experiment with its explanation")
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.add_argument("--quick", action="store_true", help="smaller settings (a smoke run)")
    e.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting; VALUE is JSON (steps=200, cells='[\"rnn\",\"lstm\"]') "
                   "or plain text (model=gru)")

    w = sub.add_parser("watch", help="open the TUI on runs another process trains (rnn-tui train --out RUN_DIR)")
    w.add_argument("runs", nargs="+", metavar="RUN_DIR",
                   help="run directories (a folder of runs stands for the runs in it, and runs started in "
                   "it later join while watching; a directory that does not exist yet is waited for)")
    w.add_argument("--device", default="auto", help="where the checkpoints are loaded: auto, cpu, cuda or mps")
    w.add_argument("--sentence", default=None, help="the sentence the stepper reads")

    v = sub.add_parser("serve", help="run the TUI in a web browser (needs: pip install \"rnn-tui[serve]\")")
    v.add_argument("model", nargs="*", metavar="MODEL",
                   help="what each browser session opens: a run directory or bundled model, as for rnn-tui; "
                   "several run directories: watch them")
    v.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; reach it over "
                   "ssh -L 8000:localhost:8000)")
    v.add_argument("--port", type=_positive_int, default=8000, help="(default 8000)")
    v.add_argument("--device", default=None, help="auto, cpu, cuda or mps (passed to each session)")
    v.add_argument("--corpus", default=None, help="corpus for training (passed to each session)")
    return p


# --------------------------------------------------------------------------- commands
def _dump(obj) -> None:
    json.dump(obj, sys.stdout, indent=1, allow_nan=False)
    sys.stdout.write("\n")


def _warn(message: str | None) -> None:
    if message:
        print(f"rnn-tui: note: {message}", file=sys.stderr)


def _train_flags() -> list[str]:
    """`rnn-tui train` flags that set TrainConfig fields of the same name (None: not given)."""
    from .engine.config import train_options

    return [o.name for o in train_options() if o.flag]


def _corpus_spec(spec: str) -> str:
    """A text file as an absolute path, so --resume finds it from any directory."""
    from .engine.corpus import BUNDLED_CORPORA

    if spec.strip().lower() in BUNDLED_CORPORA:
        return spec
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.is_file() else spec


def _warn_unused_flags(given: dict, config) -> None:
    """Flags that do nothing for this model are said to do nothing (they are kept, not refused)."""
    if "nonlinearity" in given and config.cell != "rnn":
        _warn(f"--nonlinearity only applies to the vanilla cell: the {config.cell.upper()} uses its own")
    if "spectral_radius" in given and config.init not in ("spectral", "echo"):
        _warn("--spectral-radius only applies with --init spectral or echo: ignored")
    if given.get("dropout") and config.layers < 2:
        _warn("--dropout acts between stacked layers: with --layers 1 it does nothing")


def cmd_train(args) -> int:
    from .engine.errors import ConfigError
    from .engine.train import TrainConfig, Trainer

    given = {k: getattr(args, k) for k in _train_flags() if getattr(args, k) is not None}
    if args.corpus_flag is not None:
        if args.corpus is not None and args.corpus != args.corpus_flag:
            raise ConfigError(f"two corpora given: {args.corpus!r} and --corpus {args.corpus_flag!r}; give one")
        args.corpus = args.corpus_flag
    if args.corpus is not None:
        given["corpus"] = _corpus_spec(args.corpus)
    cache_dir = None
    if not args.no_cache:
        from .engine.corpus import default_cache_dir

        cache_dir = Path(args.cache_dir).expanduser() if args.cache_dir else default_cache_dir()
    dist = None
    if args.ddp:
        from .engine.distributed import init_distributed

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
            _warn_unused_flags(given, config)
            out = Path(args.out) if args.out else Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{config.cell}"
            if dist is not None:
                out = Path(dist.broadcast_object(str(out)))  # every rank: rank 0's clock
            if (out / "config.json").exists():
                raise ConfigError(f"{out} already holds a run: continue it with --resume {out}, "
                                  f"or give another --out")
            trainer = Trainer(config, run_dir=out, dist=dist, tensorboard=args.tensorboard,
                              cache_dir=cache_dir)
        code = _run_training(trainer, out, args.resume is not None)
    except BaseException:
        if dist is not None:
            from .engine.distributed import shutdown

            shutdown(clean=False)
        raise
    if dist is not None:
        from .engine.distributed import shutdown

        shutdown(clean=code in (0, 3))  # 130: interrupted, the others may be gone
    return code


def _term_as_interrupt():
    """Let SIGTERM (`kill PID`, a scheduler, torchrun stopping its workers) end training like
    Ctrl-C: with a checkpoint saved. Returns a function that puts the old handler back."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        return lambda: None

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, interrupt)
    return lambda: signal.signal(signal.SIGTERM, old)


def _run_training(trainer, out: Path, resumed: bool) -> int:
    config = trainer.config
    main = trainer.is_main
    if main:
        for note in trainer.notes:
            _warn(note)
        if resumed:
            _warn(f"resuming {out} at step {trainer.step} of {config.steps}" if trainer.step < config.steps
                  else f"{out} is already at step {trainer.step} of {config.steps}: give a larger --steps "
                       f"to train on")
    start_step = trainer.step
    progress = _TrainProgress(config.steps, start=trainer.step) if main else None
    trainer.on_metrics = progress.update if progress is not None else None
    restore_term = _term_as_interrupt()
    try:
        result = trainer.run()
    except KeyboardInterrupt:
        if progress is not None:
            progress.close()
        trainer.save(out)
        if main:
            print(f"interrupted at step {trainer.step}; checkpoint saved to {out} "
                  f"(continue with: rnn-tui train --resume {out})", file=sys.stderr)
        return 130
    finally:
        restore_term()
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
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                console=Console(stderr=True), transient=False,
            )
            self.task = self.progress.add_task("train", total=total, completed=start, info="")
            self.progress.start()

    def update(self, m) -> None:
        val = f" val {m.val_loss:.3f}" if getattr(m, "val_loss", None) is not None else ""
        info = f"loss {m.loss:.3f} ({m.bits:.2f} bits) |g| {m.grad_norm:.2g} {m.tokens_per_s:,.0f} tok/s{val}"
        if self.progress is not None:
            self.progress.update(self.task, completed=m.step, info=info)
        elif m.step >= self.next_report or m.step == self.total or time.monotonic() >= self.next_time:
            # every 10% of the run, and at least every LOG_EVERY_S seconds of a long one
            print(f"step {m.step}/{self.total} {info}", file=sys.stderr, flush=True)
            if m.step >= self.next_report:
                self.next_report = m.step + max(1, self.total // 10)
            self.next_time = time.monotonic() + LOG_EVERY_S

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def cmd_sample(args) -> int:
    from .engine.checkpoint import load_model
    from .engine.errors import ConfigError
    from .engine.sampling import sample_stream

    if args.greedy and args.temperature != 0.8:
        _warn("--greedy takes the likeliest token: --temperature is ignored")
    elif not args.greedy and args.temperature <= 0:
        raise ConfigError(f"--temperature must be > 0, got {args.temperature:g} (--greedy takes the likeliest token)")
    lm = load_model(args.model, device=args.device)
    unknown = [c for c in lm.vocab.split(args.prime) if c not in lm.vocab.tokens] if args.prime else []
    if unknown:
        _warn(lm.vocab.encode(args.prime, on_unknown="skip").message())
    sys.stdout.write(args.prime)
    for piece in sample_stream(lm, prime=args.prime, temperature=args.temperature, top_k=args.top_k,
                               length=args.length, seed=args.seed, greedy=args.greedy):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def _fmt_tok(tok: str) -> str:
    return {" ": "␣", "\n": "⏎", "\t": "⇥"}.get(tok, tok)


def cmd_trace(args) -> int:
    from .engine.checkpoint import load_model
    from .engine.probes import trace

    lm = load_model(args.model, device=args.device)
    tr = trace(lm, args.text, top_k=args.top_k)
    _warn(tr.unknown_message)
    if args.json:
        _dump(tr.to_json())
        return 0
    print(f"{lm.label}: {len(tr.tokens)} tokens, mean loss {tr.mean_loss:.3f} nats")
    print(f"{'t':>3} {'tok':>4} {'next':>4} {'p(next)':>8} {'loss':>6}  top-{min(args.top_k, len(lm.vocab.tokens))}")
    for t, tok in enumerate(tr.tokens):
        nxt = tr.next_ids[t]
        nxt_tok = _fmt_tok(lm.vocab.tokens[nxt]) if nxt >= 0 else ""
        p = f"{tr.next_prob[t]:.3f}" if nxt >= 0 else ""
        loss = f"{tr.next_loss[t]:.2f}" if nxt >= 0 else ""
        top = " ".join(f"{_fmt_tok(s)}:{q:.2f}" for s, q in zip(tr.topk_tokens[t], tr.topk_probs[t]))
        print(f"{t:>3} {_fmt_tok(tok):>4} {nxt_tok:>4} {p:>8} {loss:>6}  {top}")
    return 0


def cmd_grads(args) -> int:
    from .engine.checkpoint import load_model
    from .engine.probes import gradient_profile

    lm = load_model(args.model, device=args.device)
    gp = gradient_profile(lm, args.text, mode=args.mode)
    _warn(gp.unknown_message)
    if args.json:
        _dump(gp.to_json())
        return 0
    print(f"{lm.label}: |dL/dh_t| and |dL/dx_t| for the loss at {'the last step' if args.mode == 'last' else 'every step'}")
    top = gp.dh[-1]
    for t, tok in enumerate(gp.tokens):
        if not gp.affects_loss[t]:  # read after the last prediction: no loss depends on it
            flag = "  (feeds no loss: 0 by construction)"
        else:
            flag = "  (underflow: exactly 0)" if gp.underflow_h[-1][t] else ""
        print(f"{t:>3} {_fmt_tok(tok):>4}  dh {top[t]:.3e}  dx {gp.dx[t]:.3e}{flag}")
    print(gp.describe())
    return 0


def cmd_jacobian(args) -> int:
    from .engine.checkpoint import load_model
    from .engine.probes import jacobian_map, spectrum

    lm = load_model(args.model, device=args.device)
    jm = jacobian_map(lm, args.text, layer=args.layer)
    sp = spectrum(lm, layer=args.layer)
    _warn(jm.unknown_message)
    if args.json:
        data = jm.to_json()
        data["spectrum"] = sp.to_json()
        _dump(data)
        return 0
    print(f"{lm.label}: ||d state_t / d state_k|| (Frobenius), state = {jm.state}")
    last = jm.norms[-1]
    for k, tok in enumerate(jm.tokens):
        note = "  (k = T: the identity, sqrt of the state size)" if k == len(jm.tokens) - 1 else ""
        print(f"k={k:>3} {_fmt_tok(tok):>4}  ||d state_T / d state_k|| = {last[k]:.3e}{note}")
    radii = ", ".join(f"{name}: {r:.3f}" for name, r in sp.radius.items())
    print(f"spectral radius of the recurrent matrix ({sp.main} block drives the state): {radii}")
    return 0


def cmd_info(args) -> int:
    from .engine.checkpoint import describe, load_model

    lm = load_model(args.model, device="cpu")
    info = describe(lm)
    if args.json:
        _dump(info)
        return 0
    width = max(len(k) for k in info)
    for key, value in info.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={_short(v)}" for k, v in value.items())
        print(f"{key:<{width}}  {_short(value)}")
    return 0


def _short(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return v


def cmd_bench(args) -> int:
    if args.device.strip().lower().startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            print(f"rnn-tui: error: bench --device cuda: CUDA is not available here ({why}; "
                  f"torch {torch.__version__})", file=sys.stderr)
            return EXIT_USER_ERROR
    from .engine.bench import format_table, parse_sizes, run_bench

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    rows = run_bench(device=args.device, quick=args.quick, sizes=parse_sizes(args.sizes),
                     encode=not args.no_encode, inspect=not args.no_inspect, log=log)
    if not args.no_tui:
        from .bench_tui import bench_tui

        rows += bench_tui(log=log)
    if args.json:
        _dump(rows)
    else:
        print(format_table(rows))
    return 0


def _setting(text: str) -> tuple[str, object]:
    from .engine.errors import ConfigError

    key, sep, raw = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key:
        raise ConfigError(f"--set takes KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw  # plain text, e.g. model=lstm
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
    from .engine.errors import ConfigError
    from .engine.experiments import EXPERIMENTS, get_experiment

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
        result = exp.run(settings, progress=progress)
    finally:
        progress.close()
    if args.json:
        _dump(result.to_json())
    else:
        print(result.summary())
    return 0


def cmd_watch(args) -> int:
    from .app import run_app
    from .engine.errors import ConfigError
    from .runs import expand_run_dirs

    if (args.device or "auto").strip().lower() != "auto":
        from .engine.device import pick_device

        pick_device(args.device)  # a missing GPU is one line, not a watch that cannot load
    dirs, roots, notes = expand_run_dirs(args.runs)
    for note in notes:
        _warn(note)
    if not dirs and not roots:
        raise ConfigError("nothing to watch: give run directories (rnn-tui train ... --out RUN_DIR writes one)")
    # The first run that already has a checkpoint is the model at startup; the watcher then
    # follows the newest checkpoint of the selected run.
    first = next((d for d in dirs if (d / "config.json").is_file()), None)
    run_app(model=str(first) if first is not None else None, device=args.device, sentence=args.sentence,
            watch=[str(d) for d in dirs], mode="training", watch_roots=[str(r) for r in roots])
    return 0


def cmd_serve(args) -> int:
    from .serve import serve

    return serve(args.model, host=args.host, port=args.port, device=args.device, corpus=args.corpus)


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "trace": cmd_trace, "grads": cmd_grads,
            "jacobian": cmd_jacobian, "info": cmd_info, "bench": cmd_bench, "experiment": cmd_experiment,
            "watch": cmd_watch, "serve": cmd_serve}


def _check_tui_model(model: str | None) -> None:
    """Before the screen is taken over: `rnn-tui trian` is a typo, not a model to look for."""
    if model is None or Path(model).expanduser().exists():
        return
    from .engine.checkpoint import BUNDLED_MODELS
    from .engine.errors import ConfigError

    if model in BUNDLED_MODELS:
        return
    import difflib

    close = difflib.get_close_matches(model, SUBCOMMANDS, n=1, cutoff=0.6)
    if close:
        raise ConfigError(f"unknown command {model!r}: did you mean {close[0]!r}? (rnn-tui --help lists them)")
    raise ConfigError(f"no model at {model!r}: give a run directory (rnn-tui train ... --out DIR writes one) "
                      f"or a bundled default ({', '.join(BUNDLED_MODELS)})")


def cmd_tui(args) -> int:
    from .app import run_app

    # A run directory with a metrics.jsonl is followed too: its curves on the training screen,
    # its newest checkpoint in every mode (as `rnn-tui watch RUN_DIR`, opening on the stepper).
    watch, model = None, args.model
    if model and (Path(model).expanduser() / "metrics.jsonl").is_file():
        watch = [model]
        if not (Path(model).expanduser() / "config.json").is_file():
            model = None  # no checkpoint yet: the bundled model until the run saves one
    run_app(model=model, corpus=args.corpus, device=args.device, sentence=args.sentence, watch=watch)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in SUBCOMMANDS:
            parser = _sub_parser()
            args, extra = parser.parse_known_args(argv)
            if extra:  # say it in the subcommand's own words, not the top level's
                parser.subcommands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
            code = COMMANDS[args.command](args)
        else:
            args = _tui_parser().parse_args(argv)
            _check_tui_model(args.model)
            if (args.device or "auto").strip().lower() != "auto":
                # A device that is not there: one line now, not a TUI that runs without it. (Only
                # then is torch imported before the first frame.)
                from .engine.device import pick_device

                pick_device(args.device)
            code = cmd_tui(args)
    except KeyboardInterrupt:
        print("rnn-tui: interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:
        # `rnn-tui sample ... | head` closed the pipe: not an error worth a message.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into messages
        code = _report(exc)
    return code


def _report(exc: BaseException) -> int:
    from .engine.errors import RnnTuiError

    if os.environ.get("RNN_TUI_DEBUG"):
        import traceback

        traceback.print_exception(exc)
    if isinstance(exc, RnnTuiError):
        print(f"rnn-tui: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    try:
        from .engine.device import is_oom

        if is_oom(exc):
            print("rnn-tui: error: the device ran out of memory: try a smaller --batch, --hidden "
                  "or --seq-len, or --device cpu", file=sys.stderr)
            return EXIT_USER_ERROR
    except ImportError:
        pass
    if isinstance(exc, MemoryError):
        print("rnn-tui: error: out of memory", file=sys.stderr)
        return EXIT_USER_ERROR
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    print(f"rnn-tui: internal error: {type(exc).__name__}: {first} "
          "(set RNN_TUI_DEBUG=1 to see the traceback)", file=sys.stderr)
    return EXIT_INTERNAL


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
