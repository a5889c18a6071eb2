"""Test helper: the local exchange (`python -m simulator`) as a real subprocess on a free port."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from exchange.client import ExchangeClient
from exchange.venues import venue_urls

REPO = Path(__file__).resolve().parents[2]
KEY, SECRET = "local-key", "local-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SimProcess:
    def __init__(self, log_path: Path, *args: str, port: int | None = None) -> None:
        # ``port``: reuse a stopped exchange's port, as a restart does (clients keep their URLs)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "simulator", "--host", "127.0.0.1", "--port", str(self.port), *args],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/api/v3/ping", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"local exchange did not start: {log_path.read_text()}")
            time.sleep(0.1)

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        req = urllib.request.Request(f"{self.url}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def client(self, market: str = "spot", key: str = KEY, secret: str = SECRET, **kw: Any) -> ExchangeClient:
        """An ExchangeClient of this exchange (the local venue's URLs) for ``market``."""
        return ExchangeClient(venue_urls("local", self.url), key, secret, market=market, **kw)  # type: ignore[arg-type]

    def faults(self, **kw: Any) -> Any:
        return self.admin("POST", "/admin/faults", kw)

    def clear(self) -> None:
        self.admin("DELETE", "/admin/faults")

    def set_price(self, symbol: str, price: str) -> None:
        self.admin("POST", "/admin/price", {"symbol": symbol, "price": price})

    def speed(self, x: float) -> None:
        self.admin("POST", "/admin/speed", {"speed": x})

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
