"""The `rnn-tui` command line.

`rnn-tui` alone opens the TUI; the subcommands run the engine headless and print text or JSON.
``main`` parses, dispatches to a command and turns every error into one line on stderr with a
non-zero exit status (set RNN_TUI_DEBUG=1 to see the traceback of an unexpected one).

    parser.py       the argument parsers (the train flags come from engine.config)
    output.py       exit statuses, JSON and notes, one-line errors
    train.py        rnn-tui train, and its progress
    probes.py       sample, trace, grads, jacobian, info
    experiments.py  bench, experiment
    tui.py          the TUI itself, watch, serve

Nothing here imports torch at module level: `rnn-tui --help` and the TUI's first frame do not
wait for it.
"""

from __future__ import annotations

import os
import sys

from .experiments import cmd_bench, cmd_experiment
from .imports import cmd_import
from .interrupts import ignore_from_now_on, install_quiet_handler
from .output import report_error
from .parser import SUBCOMMANDS, sub_parser, tui_parser
from .probes import cmd_grads, cmd_info, cmd_jacobian, cmd_sample, cmd_trace
from .train import cmd_train
from .tui import check_tui_model, cmd_serve, cmd_tui, cmd_watch


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "trace": cmd_trace, "grads": cmd_grads,
            "jacobian": cmd_jacobian, "info": cmd_info, "import": cmd_import, "bench": cmd_bench,
            "experiment": cmd_experiment,
            "watch": cmd_watch, "serve": cmd_serve}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in SUBCOMMANDS:
            parser = sub_parser()
            args, extra = parser.parse_known_args(argv)
            if extra:  # say it in the subcommand's own words, not the top level's
                parser.subcommands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
            code = COMMANDS[args.command](args)
        else:
            args = tui_parser().parse_args(argv)
            check_tui_model(args.model)
            if (args.device or "auto").strip().lower() != "auto":
                # A device that is not there: one line now, not a TUI that runs without it. (Only
                # then is torch imported before the first frame.)
                from ..engine.device import pick_device

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
        code = report_error(exc)
    return code


def entry() -> None:
    """The `rnn-tui` command: main(), then exit with its status.

    It runs under `quiet_after_first`: the first Ctrl-C is a KeyboardInterrupt that main turns
    into one line and status 130; once the process is stopping, later ones are ignored, so a
    second Ctrl-C while the last line is printed or the interpreter shuts down never prints a
    traceback or ends the process by signal.
    """
    install_quiet_handler()
    code = 130
    try:
        code = main()
    except KeyboardInterrupt:  # an interrupt between main's own handlers
        code = 130
    ignore_from_now_on()
    sys.exit(code)
