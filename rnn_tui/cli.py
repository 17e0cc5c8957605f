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

SUBCOMMANDS = ("train", "sample", "trace", "grads", "jacobian", "info", "bench")

EXIT_USER_ERROR = 2
EXIT_INTERNAL = 1


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


# --------------------------------------------------------------------------- parsers
def _tui_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
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


def _sub_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rnn-tui")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model headless, writing a run directory")
    t.add_argument("corpus", help="bundled corpus (grammar, parity, agreement) or a UTF-8 text file")
    t.add_argument("--level", default="char", help="char or word tokens (default char)")
    t.add_argument("--cell", default="lstm", help="rnn, lstm or gru (default lstm)")
    t.add_argument("--hidden", type=_positive_int, default=64)
    t.add_argument("--embed", type=_positive_int, default=32)
    t.add_argument("--layers", type=_positive_int, default=1)
    t.add_argument("--nonlinearity", default="auto", help="tanh or relu (vanilla cell; auto: relu for --init identity)")
    t.add_argument("--seq-len", type=_positive_int, default=64)
    t.add_argument("--batch", type=_positive_int, default=32)
    t.add_argument("--lr", type=_finite_float, default=3e-3)
    t.add_argument("--optimizer", default="adam", help="adam, adamw or sgd")
    t.add_argument("--clip", type=_finite_float, default=1.0, help="clip the global grad norm (0: off)")
    t.add_argument("--init", default="default",
                   help="default, orthogonal, xavier, identity, spectral or echo")
    t.add_argument("--spectral-radius", type=_finite_float, default=None)
    t.add_argument("--steps", type=_positive_int, default=1000)
    t.add_argument("--eval-every", type=_positive_int, default=100)
    t.add_argument("--seed", type=_nonneg_int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--out", default=None, help="run directory (default runs/<time>-<cell>)")

    s = sub.add_parser("sample", help="sample text from a model")
    s.add_argument("model")
    s.add_argument("--prime", default="")
    s.add_argument("--temperature", type=_finite_float, default=0.8)
    s.add_argument("--top-k", type=_nonneg_int, default=0)
    s.add_argument("--length", type=_positive_int, default=200)
    s.add_argument("--seed", type=_nonneg_int, default=None)
    s.add_argument("--greedy", action="store_true")
    s.add_argument("--device", default="auto")

    for name, what in (("trace", "hidden states, gates and next-token probabilities per step"),
                       ("grads", "gradient norm by timestep"),
                       ("jacobian", "Jacobian product norms and the recurrent spectrum")):
        q = sub.add_parser(name, help=what)
        q.add_argument("model")
        q.add_argument("text")
        q.add_argument("--json", action="store_true", help="print the probe as JSON")
        q.add_argument("--device", default="auto")
        if name == "trace":
            q.add_argument("--top-k", type=_positive_int, default=5)
        if name == "grads":
            q.add_argument("--mode", choices=("last", "sum"), default="last")
        if name == "jacobian":
            q.add_argument("--layer", type=int, default=-1)

    i = sub.add_parser("info", help="config, parameter counts and metrics of a model")
    i.add_argument("model")
    i.add_argument("--json", action="store_true")

    b = sub.add_parser("bench", help="trainer vs bare torch loop, probe latency, TUI latency")
    b.add_argument("--device", default="cpu")
    b.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    b.add_argument("--json", action="store_true")
    b.add_argument("--no-tui", action="store_true", help="skip the TUI latency rows")
    return p


# --------------------------------------------------------------------------- commands
def _dump(obj) -> None:
    json.dump(obj, sys.stdout, indent=1, allow_nan=False)
    sys.stdout.write("\n")


def _warn(message: str | None) -> None:
    if message:
        print(f"rnn-tui: note: {message}", file=sys.stderr)


def cmd_train(args) -> int:
    from .engine.train import TrainConfig, Trainer

    config = TrainConfig(
        corpus=args.corpus, level=args.level, cell=args.cell, embed=args.embed, hidden=args.hidden,
        layers=args.layers, nonlinearity=args.nonlinearity, init=args.init,
        spectral_radius=args.spectral_radius, seq_len=args.seq_len, batch=args.batch, lr=args.lr,
        optimizer=args.optimizer, clip=args.clip, steps=args.steps, eval_every=args.eval_every,
        seed=args.seed, device=args.device,
    )
    out = Path(args.out) if args.out else Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{config.cell}"
    trainer = Trainer(config, run_dir=out)
    progress = _TrainProgress(config.steps, start=trainer.step)
    trainer.on_metrics = progress.update
    try:
        result = trainer.run()
    except KeyboardInterrupt:
        progress.close()
        trainer.save(out)
        print(f"interrupted at step {trainer.step}; checkpoint saved to {out}", file=sys.stderr)
        return 130
    progress.close()
    if result.stopped_reason and result.diverged:
        print(f"rnn-tui: training stopped: {result.stopped_reason}", file=sys.stderr)
    summary = trainer.history[-1] if trainer.history else None
    val = result.best_val_loss
    line = f"saved {out}  (step {trainer.step}"
    if summary is not None:
        line += f", train loss {summary.loss:.3f} nats = {summary.bits:.3f} bits/token"
    if val is not None:
        line += f", best val loss {val:.3f}"
    print(line + ")")
    return 3 if result.diverged else 0


class _TrainProgress:
    """A Rich progress bar on a terminal; a plain line every 10% otherwise (logs, CI)."""

    def __init__(self, total: int, start: int = 0):
        self.total = total
        self.tty = sys.stderr.isatty()
        self.next_report = start
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
        elif m.step >= self.next_report or m.step == self.total:
            print(f"step {m.step}/{self.total} {info}", file=sys.stderr, flush=True)
            self.next_report = m.step + max(1, self.total // 10)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def cmd_sample(args) -> int:
    from .engine.checkpoint import load_model
    from .engine.sampling import sample_stream

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
    print(f"{'t':>3} {'tok':>4} {'next':>4} {'p(next)':>8} {'loss':>6}  top-{args.top_k}")
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
    import numpy as np

    print(f"{lm.label}: ||d state_t / d state_k|| (Frobenius), state = {jm.state}")
    last = jm.norms[-1]
    for k, tok in enumerate(jm.tokens):
        print(f"k={k:>3} {_fmt_tok(tok):>4}  ||d state_T / d state_k|| = {last[k]:.3e}")
    radii = ", ".join(f"{name}: {r:.3f}" for name, r in sp.radius.items())
    print(f"spectral radius of the recurrent matrix ({sp.main} block drives the state): {radii}")
    del np
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
    from .engine.bench import format_table, run_bench

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    rows = run_bench(device=args.device, quick=args.quick, log=log)
    if not args.no_tui:
        from .bench_tui import bench_tui

        rows += bench_tui(log=log)
    if args.json:
        _dump(rows)
    else:
        print(format_table(rows))
    return 0


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "trace": cmd_trace, "grads": cmd_grads,
            "jacobian": cmd_jacobian, "info": cmd_info, "bench": cmd_bench}


def cmd_tui(args) -> int:
    from .app import run_app

    run_app(model=args.model, corpus=args.corpus, device=args.device, sentence=args.sentence)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in SUBCOMMANDS:
            args = _sub_parser().parse_args(argv)
            code = COMMANDS[args.command](args)
        else:
            args = _tui_parser().parse_args(argv)
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
