"""The `rnn-tui` argument parsers: the TUI's own (`rnn-tui [MODEL]`) and the subcommands'.

The training flags are generated from ``engine.config.train_options()`` (``_add_config_flags``):
their help, choices and defaults are the config's own. Mistakes are one line on stderr with
exit status 2, pointing at --help.
"""

from __future__ import annotations

import argparse
import math

from .output import EXIT_USER_ERROR


SUBCOMMANDS = ("train", "sample", "trace", "grads", "jacobian", "info", "bench", "experiment", "watch", "serve")

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


def tui_parser() -> argparse.ArgumentParser:
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
    from ..engine.config import train_options

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


def sub_parser() -> argparse.ArgumentParser:
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
            q.add_argument("--method", choices=("auto", "exact", "estimate"), default="auto",
                           help="exact: every pair, float64 (short texts: the work grows as T^2 D^3); "
                           "estimate: rows at a screen's resolution from random probe vectors, the last "
                           "row exact where it fits; auto (default): exact when that is cheap")
            q.add_argument("--rows", default=None, metavar="N|all",
                           help="rows the estimate computes (default 32, evenly spaced, the last included)")
            q.add_argument("--probes", type=_int_at_least(2), default=None, metavar="P",
                           help="probe vectors per estimated row (default 24)")
            q.add_argument("--exact-last", action="store_true",
                           help="the estimate's last row exact whatever it costs (D probes)")
            q.add_argument("--seed", type=int, default=0, help="seed of the estimate's random probes")

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
    b.add_argument("--memory-mb", type=float, default=None, metavar="MB",
                   help="size of the generated corpus for the memory rows (default 1024, 32 with --quick; "
                   "0 skips them; needs about twice that on the temp disk)")

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
