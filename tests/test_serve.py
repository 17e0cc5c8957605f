"""`rnn-tui serve` refuses what a hostile web page (or another user) could send: a WebSocket
upgrade from another origin, a request naming another Host (DNS rebinding), and anything
without the server's token; the app process is never started for them.

A real aiohttp server on 127.0.0.1 runs textual-serve's routes; the "app" each session would
start is a one-line Python command that leaves a marker file.
"""

from __future__ import annotations

import asyncio
import sys

import pytest

pytest.importorskip("textual_serve")

from aiohttp import ClientSession, CookieJar, WSServerHandshakeError
from aiohttp.test_utils import TestServer, unused_port

from rnn_tui.serve import (
    NO_TOKEN_WARNING,
    Guard,
    allowed_hosts,
    make_server,
    serve,
    url_for,
)

TOKEN = "s3cret-token"


async def _serving(tmp_path, token=TOKEN):
    port = unused_port()
    marker = tmp_path / "app-started"
    command = f"{sys.executable} -c \"open({str(marker)!r}, 'w').write('x')\""
    server = make_server(command, "127.0.0.1", port, token)
    site = TestServer(await server._make_app(), host="127.0.0.1", port=port)
    await site.start_server()
    return site, f"http://127.0.0.1:{port}", port, marker


async def test_a_websocket_from_another_origin_is_refused_and_starts_nothing(tmp_path):
    site, base, port, marker = await _serving(tmp_path)
    try:
        async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as s:
            async with s.get(f"{base}/?token={TOKEN}") as r:  # the page sets the token cookie
                assert r.status == 200
            for origin in ("http://evil.example.com", "null", f"http://localhost:{port + 1}"):
                with pytest.raises(WSServerHandshakeError) as refused:
                    await s.ws_connect(f"{base}/ws?width=80&height=24", headers={"Origin": origin})
                assert refused.value.status == 403, origin
            assert not marker.exists()  # no app session was started for them
            # The page's own origin, with the token: the session starts.
            ws = await s.ws_connect(f"{base}/ws?width=80&height=24", headers={"Origin": base})
            for _ in range(200):  # the app process starts (and, being a one-liner, ends)
                if marker.exists():
                    break
                await asyncio.sleep(0.1)
            await ws.close()
            assert marker.exists()
    finally:
        await site.close()


async def test_a_request_naming_another_host_is_refused(tmp_path):
    site, base, port, _ = await _serving(tmp_path)
    try:
        async with ClientSession() as s:
            for host in (f"evil.example.com:{port}", f"127.0.0.1.nip.io:{port}", "127.0.0.1"):
                async with s.get(f"{base}/?token={TOKEN}", headers={"Host": host}) as r:
                    assert r.status == 403, host
                    assert "unknown Host" in await r.text()
            async with s.get(f"{base}/?token={TOKEN}", headers={"Host": f"localhost:{port}"}) as r:
                assert r.status == 200
                page = await r.text()
            # The page's WebSocket goes back to where it came from: same origin, cookie and all.
            assert f'data-session-websocket-url="ws://localhost:{port}/ws"' in page
            assert r.headers["Referrer-Policy"] == "no-referrer"
    finally:
        await site.close()


async def test_the_token_is_needed_and_remembered_in_a_cookie(tmp_path):
    site, base, port, marker = await _serving(tmp_path)
    try:
        async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as s:
            for url in ("/", "/?token=wrong", "/ws", "/download/x"):
                async with s.get(base + url) as r:
                    assert r.status == 403, url
                    assert "needs its token" in await r.text()
            async with s.get(f"{base}/static/js/textual.js") as r:  # textual-serve's own script
                assert r.status == 200
            with pytest.raises(WSServerHandshakeError):
                await s.ws_connect(f"{base}/ws", headers={"Origin": base})
            assert not marker.exists()
            async with s.get(f"{base}/?token={TOKEN}") as r:
                cookie = r.cookies[f"rnn-tui-token-{port}"]
                assert cookie.value == TOKEN and cookie["httponly"] and cookie["samesite"] == "Strict"
            async with s.get(f"{base}/") as r:  # the cookie stands for the token from now on
                assert r.status == 200
    finally:
        await site.close()


def test_the_guard_rules():
    assert allowed_hosts("127.0.0.1", 8000) == {"127.0.0.1:8000", "localhost:8000", "[::1]:8000"}
    assert allowed_hosts("0.0.0.0", 8000) is None  # any name reaches a wildcard bind: the token guards it
    open_guard = Guard("127.0.0.1", 8000, None)  # --no-token: Host and Origin are still checked
    assert open_guard.check("/", {"Host": "127.0.0.1:8000"}, {}, {}) is None
    assert "unknown Host" in open_guard.check("/", {"Host": "evil.example.com:8000"}, {}, {})
    assert "cross-origin" in open_guard.check("/ws", {"Host": "127.0.0.1:8000", "Origin": "http://evil.example.com",
                                                      "Upgrade": "websocket"}, {}, {})
    assert url_for("127.0.0.1", 8000, "abc") == "http://127.0.0.1:8000/?token=abc"


def test_no_token_is_said_loudly(monkeypatch, capsys):
    from textual_serve import server as ts

    monkeypatch.setattr(ts.Server, "serve", lambda self, debug=False: None)
    assert serve([], token=False) == 0
    err = capsys.readouterr().err
    assert NO_TOKEN_WARNING.format(where="127.0.0.1:8000") in err and "warning" in err
    assert serve([]) == 0
    assert "warning" not in capsys.readouterr().err
