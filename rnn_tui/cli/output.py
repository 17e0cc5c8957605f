"""The house style of what the commands print: JSON on stdout, notes and errors on stderr as
one line each, and the exit statuses.

Every error reaches the user as one line on stderr with a non-zero exit status
(``report_error``); set RNN_TUI_DEBUG=1 to see the traceback of an unexpected one.
"""

from __future__ import annotations

import json
import os
import sys

EXIT_USER_ERROR = 2
EXIT_INTERNAL = 1


def dump(obj) -> None:
    json.dump(obj, sys.stdout, indent=1, allow_nan=False)
    sys.stdout.write("\n")


def warn(message: str | None) -> None:
    if message:
        print(f"rnn-tui: note: {message}", file=sys.stderr)


def report_error(exc: BaseException) -> int:
    """Say what went wrong in one line on stderr; returns the exit status."""
    from ..engine.errors import RnnTuiError

    if os.environ.get("RNN_TUI_DEBUG"):
        import traceback

        traceback.print_exception(exc)
    from ..engine.errors import one_line

    if isinstance(exc, RnnTuiError):
        print(f"rnn-tui: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_USER_ERROR
    if isinstance(exc, OSError) and exc.errno is not None and exc.strerror:
        # The machine said no (permissions, a full disk, a missing directory): the user's to fix.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"rnn-tui: error: {one_line(where + exc.strerror, 500)}", file=sys.stderr)
        return EXIT_USER_ERROR
    if isinstance(exc, RecursionError):
        print("rnn-tui: error: the input is nested too deeply to be read", file=sys.stderr)
        return EXIT_USER_ERROR
    try:
        from ..engine.device import is_oom

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
    print(f"rnn-tui: internal error: {type(exc).__name__}: {one_line(first, 300)} "
          "(set RNN_TUI_DEBUG=1 to see the traceback)", file=sys.stderr)
    return EXIT_INTERNAL
