"""`rnn-tui serve`: the same app in a web browser, with textual-serve.

textual-serve runs one app process per browser session: the command is
``python -m rnn_tui [MODEL]`` (``watch RUN_DIR...`` for several run directories) with the
interpreter running this, so the browser gets the environment the server has.

What it exposes, and how it is guarded. A session is the whole app, running as the user who
started the server: it reads and writes files (load a checkpoint, save a run). Listening on
127.0.0.1 (the default) keeps other machines out, but not a web page: any site open in the
user's browser can ask it to open a WebSocket to 127.0.0.1, and another user of the same
machine can connect to a loopback port too. So every request is checked (:class:`Guard`):

* **Host**: the request must name the address the server is bound to (``127.0.0.1:8000``,
  ``localhost:8000``...), which stops DNS rebinding (a site whose name resolves to 127.0.0.1);
* **Origin**: a WebSocket upgrade from a page on another origin is refused (a browser always
  says which page opened it);
* **token**: a per-server secret, printed in the URL at start (``http://127.0.0.1:8000/?token=…``,
  as Jupyter does). The page remembers it in a cookie for this port (HttpOnly, SameSite=Strict)
  so its WebSocket carries it; a request without it gets 403. ``--no-token`` turns it off, with
  a warning: then anyone who can connect can run the app as you.

Put the server on another address only on a network you trust (``ssh -L 8000:localhost:8000
host`` reaches a loopback server from another machine, token and all).

textual-serve is an optional dependency (``pip install "rnn-tui[serve]"``), imported only here.
"""

from __future__ import annotations

import hmac
import secrets
import shlex
import sys
from pathlib import Path
from urllib.parse import urlsplit

INSTALL_HINT = 'pip install "rnn-tui[serve]"'
LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARD = ("0.0.0.0", "::", "")
TOKEN_PARAM = "token"
NO_TOKEN_WARNING = ("--no-token: anyone who can connect to {where} (any user of this machine, "
                    "or a program they run) can open the app and read and write files as you")


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


def _netloc(host: str, port: int) -> str:
    name = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{name}:{port}".lower()


def allowed_hosts(host: str, port: int) -> frozenset[str] | None:
    """The Host headers a server bound to host:port answers (None: any, for a wildcard bind)."""
    if host in WILDCARD:
        return None
    names = set(LOOPBACK) if host in LOOPBACK else {host}
    allowed = {_netloc(n, port) for n in names}
    if port == 80:
        allowed |= {_netloc(n, port).rsplit(":", 1)[0] for n in names}
    return frozenset(allowed)


class Guard:
    """What a request must bring: a Host this server is bound to, no foreign Origin on a
    WebSocket upgrade, and the token (None: no token asked). ``check(method, path, headers,
    query, cookies)`` returns None (let it through) or why it is refused."""

    def __init__(self, host: str, port: int, token: str | None) -> None:
        self.hosts = allowed_hosts(host, port)
        self.token = token
        self.cookie = f"rnn-tui-token-{port}"  # cookies are shared by every port of a host

    def token_in(self, query, cookies) -> str | None:
        return query.get(TOKEN_PARAM) or cookies.get(self.cookie)

    def _token_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode("utf-8", "replace"),
                                                         self.token.encode("utf-8"))

    def check(self, path: str, headers, query, cookies) -> str | None:
        host = (headers.get("Host") or "").strip().lower()
        if not host or (self.hosts is not None and host not in self.hosts):
            return "unknown Host: this server answers only to the address it listens on"
        origin = headers.get("Origin")
        upgrade = "websocket" in (headers.get("Upgrade") or "").lower()
        if origin is not None and (upgrade or path.startswith("/ws")):
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or parts.netloc.lower() != host:
                return "cross-origin WebSocket refused: only the server's own page may connect"
        if path.startswith("/static/"):
            return None  # the page's scripts and fonts (textual-serve's own files, nothing of the user's)
        if self.token is not None and not self._token_ok(self.token_in(query, cookies)):
            return "this server needs its token: open the URL it printed at start (…/?token=…)"
        return None


def make_server(command: str, host: str, port: int, token: str | None, title: str = "rnn-tui"):
    """A textual-serve Server whose every request goes through a Guard."""
    from aiohttp import web
    from textual_serve.server import Server

    guard = Guard(host, port, token)

    class GuardedServer(Server):
        async def _make_app(self) -> web.Application:
            app = await super()._make_app()

            @web.middleware
            async def check(request: web.Request, handler):
                why = guard.check(request.path, request.headers, request.query, request.cookies)
                if why is not None:
                    return web.Response(status=403, text=f"rnn-tui: {why}\n")
                response = await handler(request)
                if not response.prepared:  # (a WebSocket has gone out already)
                    response.headers["Referrer-Policy"] = "no-referrer"  # the token stays out of Referer
                    if guard.token is not None and request.query.get(TOKEN_PARAM):
                        response.set_cookie(guard.cookie, guard.token, httponly=True, samesite="Strict", path="/")
                return response

            app.middlewares.append(check)
            return app

        async def handle_index(self, request: web.Request):
            # The page's WebSocket goes back to the address the page came from (localhost or
            # 127.0.0.1, whichever was typed; the Host was checked already): same origin, and the
            # token cookie goes with it.
            self.public_url = f"{request.scheme}://{request.host}"
            return await super().handle_index(request)

        async def on_startup(self, app) -> None:
            # print, not the console: a URL wrapped at 80 columns could not be pasted
            print(f"rnn-tui: serving on {self.url}  (Ctrl+C to stop)", flush=True)

    server = GuardedServer(command, host=host, port=port, title=title)
    server.url = url_for(host, port, token)
    server.guard = guard
    return server


def url_for(host: str, port: int, token: str | None) -> str:
    shown = "127.0.0.1" if host in WILDCARD else host
    base = f"http://{_netloc(shown, port)}/"
    return f"{base}?{TOKEN_PARAM}={token}" if token else base


def serve(models: list[str] | None = None, host: str = "127.0.0.1", port: int = 8000,
          device: str | None = None, corpus: str | None = None, token: bool = True) -> int:
    """Serve the app until Ctrl+C; returns the exit status. `token`: ask for a per-server secret
    token (printed in the URL); False serves without one, with a warning."""
    try:
        import textual_serve.server  # noqa: F401
    except ImportError:
        print(f"rnn-tui: error: the browser mode needs textual-serve: {INSTALL_HINT}", file=sys.stderr)
        return 2
    if host not in LOOPBACK:
        print(f"rnn-tui: note: listening on {host}: anyone who can reach this address and has the URL "
              f"can run the app as you (it reads and writes files)", file=sys.stderr)
    if not token:
        print(f"rnn-tui: warning: {NO_TOKEN_WARNING.format(where=f'{host}:{port}')}", file=sys.stderr)
    secret = secrets.token_urlsafe(24) if token else None
    server = make_server(app_command(models, device, corpus), host, port, secret)
    try:
        server.serve()
    except OSError as exc:
        print(f"rnn-tui: error: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0
