"""The `rnn-tui` argument parsers: the TUI's own (`rnn-tui [MODEL]`) and the subcommands'.

The training flags are generated from ``engine.config.train_options()`` (``_add_config_flags``):
their help, choices and defaults are the config's own. Mistakes are one line on stderr with
exit status 2, pointing at --help.
"""

from __future__ import annotations

import argparse
import math

from .output import EXIT_USER_ERROR


SUBCOMMANDS = ("train", "sample", "trace", "grads", "jacobian", "info", "import", "bench", "experiment", "watch",
               "serve")

MAX_INT = 2**31 - 1  # engine.config.MAX_INT (not imported: the parser loads before anything else)
MAX_SEED = 2**64 - 1  # engine.config.MAX_SEED


def _int_at_least(low: int, high: int = MAX_INT):
    """An argparse type: a whole number in [low, high], with a message that says which rule failed."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:40]!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high:,}, got {str(value)[:40]}")
        return value

    return parse


_positive_int = _int_at_least(1)
_nonneg_int = _int_at_least(0)
_seed = _int_at_least(0, MAX_SEED)
_port = _int_at_least(1, 65535)


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


def _subcommand_list() -> str:
    """The subcommands, one a line with what each does (their own parsers' help)."""
    helps = {name: sub.description or "" for name, sub in sub_parser().subcommands.items()}
    width = max(map(len, SUBCOMMANDS))
    lines = [f"  {name:<{width}}  {helps.get(name, '')}" for name in SUBCOMMANDS]
    return "subcommands (rnn-tui SUBCOMMAND --help):\n" + "\n".join(lines)


class _TuiParser(_Parser):
    def format_help(self) -> str:
        self.epilog = _subcommand_list()  # built only when help is shown, not at every start
        return super().format_help()


def tui_parser() -> argparse.ArgumentParser:
    p = _TuiParser(
        prog="rnn-tui",
        description="Look inside recurrent networks (RNN, LSTM, GRU) while they read and train. "
        "Without a subcommand: the full-screen app on MODEL.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", nargs="?", default=None,
                   help="run directory or bundled default (rnn, lstm, gru); default: lstm")
    p.add_argument("--corpus", default=None, help="corpus for training: a bundled name or a text file")
    p.add_argument("--sentence", default=None, help="the sentence to step through")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    add_threads_flag(p)
    return p


def add_threads_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                        help="CPU threads for torch (default: 1 for a small model or a busy machine, "
                        "else the free CPUs; OMP_NUM_THREADS also sets it)")


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
            kind = _int_at_least(int(opt.low or 0), opt.high if opt.high is not None else MAX_INT)
        elif opt.kind == "float":
            kind = _finite_float
        else:
            kind = str
        parser.add_argument(opt.flag_name, type=kind, default=None, help=text,
                            metavar=opt.name.upper() if opt.kind != "choice" else "{" + ",".join(opt.choices) + "}")


def command(sub, name: str, help: str) -> argparse.ArgumentParser:
    """A subcommand whose one-line help is also its --help description."""
    return sub.add_parser(name, help=help, description=help)


def sub_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="rnn-tui")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p.subcommands = sub.choices  # name -> its parser

    # Training flags default to None ("not given"): TrainConfig supplies the defaults named in
    # the help, and --resume can tell a flag the user gave from one left alone.
    t = command(sub, "train", "train a model headless, writing a run directory")
    t.add_argument("corpus", nargs="?", default=None,
                   help="bundled corpus (grammar, parity, agreement) or a UTF-8 text file "
                   "(with --resume: the run's own unless given)")
    # The TUI takes `--corpus FILE`; people type the same here.
    t.add_argument("--corpus", dest="corpus_flag", default=None, metavar="CORPUS", help="the same as CORPUS")
    t.add_argument("--config", default=None, metavar="FILE.toml",
                   help="settings from a TOML file with the flags' names (seq_len = 32); flags given "
                   "here override it; every run keeps its own in RUN_DIR/train.toml")
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
    add_threads_flag(t)

    s = command(sub, "sample", "sample text from a model")
    s.add_argument("model", help="run directory or bundled default (rnn, lstm, gru)")
    s.add_argument("--prime", default="", help="text the model reads first; the sample continues it")
    s.add_argument("--temperature", type=_finite_float, default=0.8,
                   help="> 0 (default 0.8): lower is safer and more repetitive, higher more surprising")
    s.add_argument("--top-k", type=_nonneg_int, default=0,
                   help="sample among the k likeliest tokens only (default 0: all of them)")
    s.add_argument("--length", type=_positive_int, default=200, help="tokens to generate (default 200)")
    s.add_argument("--seed", type=_seed, default=None, help="the same seed gives the same sample")
    s.add_argument("--greedy", action="store_true", help="always take the likeliest token (no temperature)")
    s.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    add_threads_flag(s)

    for name, what in (("trace", "hidden states, gates and next-token probabilities per step"),
                       ("grads", "gradient norm by timestep"),
                       ("jacobian", "Jacobian product norms and the recurrent spectrum")):
        q = command(sub, name, what)
        q.add_argument("model", help="run directory or bundled default (rnn, lstm, gru)")
        q.add_argument("text", nargs="?", default=None,
                       help="the text the model reads (characters it does not know are skipped)")
        q.add_argument("--sentence", default=None, metavar="TEXT", help="the text, as the TUI's --sentence")
        q.add_argument("--json", action="store_true", help="print the probe as JSON")
        q.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
        add_threads_flag(q)
        q.add_argument("--window", type=_positive_int, default=None, metavar="N",
                       help="read only the last N tokens of the text (a text longer than the probe's "
                       "limit says how many fit)")
        if name == "trace":
            q.add_argument("--top-k", type=_positive_int, default=5,
                           help="next-token candidates per step (default 5)")
        if name == "grads":
            q.add_argument("--mode", choices=("auto", "verb", "last", "sum"), default="auto",
                           help="the loss: the verb's number (the prediction that tells 'was' from "
                           "'were'), the last token, or every prediction summed; auto (default): "
                           "verb when the text has a subject and its was/were, else last")
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

    i = command(sub, "info", "config, parameter counts and metrics of a model")
    i.add_argument("model", help="run directory or bundled default (rnn, lstm, gru)")
    i.add_argument("--json", action="store_true", help="print it as JSON")

    m = command(sub, "import", "a state_dict made elsewhere (word_language_model, a char-RNN...) as a run")
    m.add_argument("state_dict", help=".pt / .pth (read with torch.load(weights_only=True): never unpickled) "
                   "or .safetensors; torch's names: embedding, rnn.weight_ih_l0..., an output Linear")
    m.add_argument("--vocab", required=True, metavar="FILE",
                   help="one token per line in id order (word_language_model's idx2word), a JSON list, "
                   "or the training text to rebuild it from")
    m.add_argument("--level", choices=("char", "word", "bpe"), default="char",
                   help="(default char); bpe: --vocab is the tokenizer.json it was trained with")
    m.add_argument("--out", required=True, metavar="RUN_DIR", help="the run directory to write")
    m.add_argument("--nonlinearity", choices=("tanh", "relu"), default="tanh",
                   help="a vanilla RNN's: word_language_model's RNN_TANH or RNN_RELU (default tanh)")
    m.add_argument("--embedding", default=None, metavar="NAME", help="the embedding's tensor (default: found)")
    m.add_argument("--head", default=None, metavar="NAME", help="the output layer's weight (default: found)")
    m.add_argument("--corpus", default=None, help="what it was trained on, in words (shown in headers)")

    b = command(sub, "bench", "trainer vs bare torch loop, probe latency, TUI latency")
    b.add_argument("--device", default="cpu")
    b.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    b.add_argument("--json", action="store_true")
    b.add_argument("--no-tui", action="store_true", help="skip the TUI latency rows")
    b.add_argument("--sizes", default=None, metavar="HxB[,HxB...]",
                   help="training sizes, hidden x batch (default 256x32 on the CPU; with --device cuda "
                   "256x64,256x256,1024x64,1024x256 and the probes at H=1024)")
    b.add_argument("--no-encode", action="store_true", help="skip the corpus encoding rows")
    b.add_argument("--no-inspect", action="store_true", help="skip the unit inspector rows")
    b.add_argument("--no-threads", action="store_true", help="skip the CPU threads rows (a busy neighbour)")
    b.add_argument("--memory-mb", type=float, default=None, metavar="MB",
                   help="size of the generated corpus for the memory rows (default 1024, 32 with --quick; "
                   "0 skips them; needs about twice that on the temp disk)")

    e = command(sub, "experiment", "run a named experiment headless (--list names them)")
    e.add_argument("name", nargs="?", default=None, help="parity, init-schemes, clipping, tbptt, zog, "
                   "temperature, agreement, memory-horizon or spectral")
    e.add_argument("--list", action="store_true", help="name every experiment with its explanation")
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.add_argument("--quick", action="store_true", help="smaller settings (a smoke run)")
    e.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting; VALUE is JSON (steps=200, cells='[\"rnn\",\"lstm\"]') "
                   "or plain text (model=gru)")
    add_threads_flag(e)

    w = command(sub, "watch", "open the TUI on runs another process trains (rnn-tui train --out RUN_DIR)")
    w.add_argument("runs", nargs="+", metavar="RUN_DIR",
                   help="run directories (a folder of runs stands for the runs in it, and runs started in "
                   "it later join while watching; a directory that does not exist yet is waited for)")
    w.add_argument("--device", default="auto", help="where the checkpoints are loaded: auto, cpu, cuda or mps")
    w.add_argument("--sentence", default=None, help="the sentence the stepper reads")
    add_threads_flag(w)

    v = command(sub, "serve", "run the TUI in a web browser (needs: pip install \"rnn-tui[serve]\")")
    v.add_argument("model", nargs="*", metavar="MODEL",
                   help="what each browser session opens: a run directory or bundled model, as for rnn-tui; "
                   "several run directories: watch them")
    v.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; reach it over "
                   "ssh -L 8000:localhost:8000)")
    v.add_argument("--port", type=_port, default=8000, help="1-65535 (default 8000)")
    v.add_argument("--no-token", action="store_true",
                   help="serve without the secret token in the URL (then anyone who can reach the "
                   "address, any user of this machine included, can run the app as you)")
    v.add_argument("--device", default=None, help="auto, cpu, cuda or mps (passed to each session)")
    v.add_argument("--corpus", default=None, help="corpus for training (passed to each session)")
    return p
