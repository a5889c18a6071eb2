"""Test support for the operator-reach processes: the REST API (`python -m api`, real uvicorn) and
the notifier (`python -m notify`) as subprocesses on free ports, with their environment."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ops.redis_server import free_port, stop
from support import ROOT, RedisServer, wait_for

OPS_TOKEN = "ops-token-0123456789abcdefghij"
READ_TOKEN = "read-token-0123456789abcdefghij"
TOKENS = f"ops:operator:{OPS_TOKEN},viewer:read:{READ_TOKEN}"


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self.proc = subprocess.Popen([sys.executable, *args], cwd=ROOT,
                                     env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
                                     stdout=open(log, "ab"), stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        stop(self.proc)

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


class ApiProcess(Proc):
    """The real API server; ``call`` sends one request and returns (status, JSON body)."""

    def __init__(self, config: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(["-m", "api"], {"BOT_CONFIG": str(config), "BOT_API_PORT": str(self.port),
                                         "BOT_API_TOKENS": TOKENS, **(env or {})}, log)
        try:
            wait_for(lambda: not self.alive() or self.call("GET", "/api/v1/health")[0] in (200, 503), 30,
                     "the API server")
        except AssertionError:
            self.stop()
            raise AssertionError(f"the API did not start; its log:\n{self.log()}") from None
        if not self.alive():
            raise AssertionError(f"the API exited; its log:\n{self.log()}")

    def call(self, method: str, path: str, body: Any = None, token: str | None = OPS_TOKEN,
             headers: dict[str, str] | None = None, raw: bytes | None = None, timeout: float = 30) -> tuple[int, Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        h = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {}),
             **(headers or {})}
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                text = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            text, status = exc.read(), exc.code
        except (ConnectionError, urllib.error.URLError):
            return 0, None
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text.decode(errors="replace")


def start_notifier(config: Path, log: Path, env: dict[str, str]) -> Proc:
    return Proc(["-m", "notify"], {"BOT_CONFIG": str(config), **env}, log)


def api_redis_url(server: RedisServer) -> str:
    """A Redis user that may read everything and write nothing but XADDs to the command stream
    (Redis 7 ACL selectors): the API runs as it in the tests, so any other write fails loudly."""
    from state import keys

    admin = server.client()
    admin.execute_command("ACL", "SETUSER", "api", "reset", "on", ">api-test-password-0123", "%R~*",
                          f"%W~{keys.COMMANDS}", "+@read", "+xadd", "+ping")
    return f"redis://api:api-test-password-0123@127.0.0.1:{server.port}/0"
