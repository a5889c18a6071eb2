"""Local stand-ins for the outside world the notifier talks to (no internet here): an HTTP sink
that records what apprise's JSON target posts, and a Telegram Bot API stand-in that
python-telegram-bot polls (its ``base_url`` points here). Both run on free loopback ports in a
thread of the test process."""
from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiohttp import web

from ops.redis_server import free_port


class HttpSink:
    """Records every POST body (JSON) by path; ``fail`` > 0 answers that many requests with 500."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.arrived: list[float] = []  # wall-clock time of each recorded body
        self.fail = 0
        self.failed = 0
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with sink.lock:
                    if sink.fail > 0:
                        sink.fail -= 1
                        sink.failed += 1
                        self.send_response(500)
                        self.end_headers()
                        return
                    sink.received.append(json.loads(body or b"{}"))
                    sink.paths.append(self.path)
                    sink.arrived.append(time.time())
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def messages(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class TelegramStandIn:
    """Enough of the Bot API for python-telegram-bot's polling: getMe, deleteWebhook, getUpdates
    (long poll over a queue the test fills with :meth:`say`), sendMessage (recorded). Requests must
    carry ``token`` in their path, as the real API's do."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.port = free_port()
        self.sent: list[dict[str, Any]] = []
        self.requests: list[str] = []
        self._updates: list[dict[str, Any]] = []
        self._next_update = 1
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("telegram stand-in did not start")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    def say(self, chat_id: int, text: str) -> None:
        """A message from ``chat_id`` to the bot (a command when it starts with '/')."""
        with self._lock:
            uid = self._next_update
            self._next_update += 1
            cmd_len = len(text.split()[0]) if text.startswith("/") else 0
            msg: dict[str, Any] = {"message_id": uid, "date": int(time.time()),
                                   "chat": {"id": chat_id, "type": "private"},
                                   "from": {"id": chat_id, "is_bot": False, "first_name": "Operator"}, "text": text}
            if cmd_len:
                msg["entities"] = [{"type": "bot_command", "offset": 0, "length": cmd_len}]
            self._updates.append({"update_id": uid, "message": msg})

    def replies(self, chat_id: int) -> list[str]:
        with self._lock:
            return [m["text"] for m in self.sent if int(m.get("chat_id", 0)) == chat_id]

    async def _handle(self, request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"]
        self.requests.append(method)
        if token != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = {k: v for k, v in (await request.post()).items()}
        me = {"id": 4242, "is_bot": True, "first_name": "TradingBot", "username": "trading_test_bot"}
        if method == "getMe":
            return web.json_response({"ok": True, "result": me})
        if method in ("deleteWebhook", "setMyCommands"):
            return web.json_response({"ok": True, "result": True})
        if method == "getUpdates":
            offset = int(params.get("offset") or 0)
            deadline = time.monotonic() + min(float(params.get("timeout") or 0), 1.0)
            while True:
                with self._lock:
                    out = [u for u in self._updates if u["update_id"] >= offset]
                if out or time.monotonic() >= deadline:
                    return web.json_response({"ok": True, "result": out})
                await asyncio.sleep(0.05)
        if method == "sendMessage":
            with self._lock:
                self.sent.append(dict(params))
                mid = len(self.sent)
            chat = int(params["chat_id"])
            return web.json_response({"ok": True, "result": {
                "message_id": 10_000 + mid, "date": int(time.time()), "chat": {"id": chat, "type": "private"},
                "from": me, "text": params.get("text", "")}})
        return web.json_response({"ok": False, "error_code": 404, "description": f"no method {method}"}, status=404)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("POST", "/bot{token}/{method}", self._handle)
        app.router.add_route("GET", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    def close(self) -> None:
        async def _stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        fut = asyncio.run_coroutine_threadsafe(_stop(), self._loop)
        try:
            fut.result(5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self.thread.join(5)
