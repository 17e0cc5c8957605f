"""`rnn-tui serve`: the same app in a web browser, with textual-serve.

textual-serve runs one app process per browser tab: the command is
``python -m rnn_tui [MODEL]`` (``watch RUN_DIR...`` for several run directories) with the
interpreter running this, so the browser gets the environment the server has. It listens on
127.0.0.1 by default: the app can read and write files as the user who started it, so put it
on another address only on a network you trust (``ssh -L 8000:localhost:8000 host`` reaches
a loopback server from another machine).

textual-serve is an optional dependency (``pip install "rnn-tui[serve]"``), imported only here.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

INSTALL_HINT = 'pip install "rnn-tui[serve]"'
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def app_command(models: list[str] | None = None, device: str | None = None,
                corpus: str | None = None) -> str:
    """The shell command textual-serve runs for each browser session."""
    argv = [sys.executable, "-m", "rnn_tui"]
    models = [str(Path(m).expanduser().resolve()) if Path(m).expanduser().exists() else m
              for m in (models or [])]
    if len(models) > 1:
        argv += ["watch", *models]
        if device:
            argv += ["--device", device]
    else:
        argv += models
        if device:
            argv += ["--device", device]
        if corpus:
            corpus_path = Path(corpus).expanduser()
            argv += ["--corpus", str(corpus_path.resolve()) if corpus_path.is_file() else corpus]
    return shlex.join(argv)


def serve(models: list[str] | None = None, host: str = "127.0.0.1", port: int = 8000,
          device: str | None = None, corpus: str | None = None) -> int:
    """Serve the app until Ctrl+C; returns the exit status."""
    try:
        from textual_serve.server import Server
    except ImportError:
        print(f"rnn-tui: error: the browser mode needs textual-serve: {INSTALL_HINT}", file=sys.stderr)
        return 2
    if host not in LOOPBACK:
        print(f"rnn-tui: note: listening on {host}: anyone who can reach this address can run the app "
              f"as you (it reads and writes files)", file=sys.stderr)
    command = app_command(models, device, corpus)
    server = Server(command, host=host, port=port, title="rnn-tui")
    try:
        server.serve()
    except OSError as exc:
        print(f"rnn-tui: error: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0
