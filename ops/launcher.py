"""`make run`: start Redis, the local exchange, the worker, the dashboard, the REST API and the notifier;
keep them running (a process that dies is restarted with backoff, the others stay up, every restart is
logged); stop them all on Ctrl-C.

Checks the config and the ports first and says clearly what is wrong (which key, which port).
Logs go to var/log/ (BOT_VAR moves var/); the worker's log is also shown in this terminal.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ops.redis_server import port_in_use, port_of, start_redis, stop
from records.paths import exchange_state_file, var_dir
from settings import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]


def _wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def dashboard_command(port: int, address: str = "127.0.0.1") -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard.py"),
        "--server.port", str(port), "--server.address", address, "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        "--client.toolbarMode", "viewer",
    ]


def archiver_command(redis_url: str, store: Path) -> list[str]:
    """The records archiver (records.archiver): the Redis record streams into the long-term store."""
    return [sys.executable, "-m", "records.archiver", "--redis-url", redis_url, "--dir", str(store)]


def needs_local_exchange(app) -> bool:  # type: ignore[no-untyped-def]
    on_venue = any(b.mode == "live" for b in app.bots) or app.paper.venue == "testnet"
    return app.exchange.venue == "local" and not app.exchange.local_url and (
        app.market.source == "exchange" or on_venue)


def exchange_command(app, resume: dict[str, tuple[int, float]], state_file: Path) -> list[str]:  # type: ignore[no-untyped-def]
    """The local exchange on the same seeded market; continuing the stored candles when there are any,
    and the accounts kept in ``state_file`` (var/exchange-state.json)."""
    m, ex = app.market, app.exchange
    balances = ",".join(f"{k}={v:g}" for k, v in ex.spot_balances.items())
    cmd = [sys.executable, "-m", "simulator", "--host", "127.0.0.1", "--port", str(ex.local_port),
           "--source", "synthetic", "--seed", str(m.seed), "--speed", f"{m.speed:g}",
           "--symbols", ",".join(m.symbols), "--balances", balances, "--futures-balance", f"{ex.futures_balance:g}",
           "--warmup", str(max(m.warmup_candles, 50)),
           # the accounts (balances, orders, positions) survive a restart, as on a real venue
           "--state-file", str(state_file)]
    if resume and len(resume) == len(m.symbols):
        start = max(t for t, _ in resume.values()) + 60_000
        cmd += ["--start-ms", str(start), "--resume", ",".join(f"{s}={c!r}" for s, (_, c) in resume.items())]
    return cmd


def stored_market(url: str, symbols: list[str]) -> dict[str, tuple[int, float]]:
    """The last stored candle per symbol, so a restarted local exchange continues the same market."""
    from state.connection import connect
    from state.writer import StateWriter

    writer = StateWriter(connect(url))
    out = {}
    for s in symbols:
        last = writer.recent_candles(s, 1)
        if last:
            out[s] = (last[-1].open_time, last[-1].close)
    return out


@dataclass
class Child:
    """A process the launcher keeps running: restarted with backoff when it dies (1 s, 2 s, 4 s, ... 30 s;
    back to 1 s once it has run for a minute), the others untouched."""

    name: str
    start: Callable[[], "subprocess.Popen[bytes]"]
    proc: "subprocess.Popen[bytes] | None" = None
    started: float = 0.0
    backoff: float = 1.0
    restart_at: float | None = None
    restarts: int = 0

    def launch(self) -> None:
        self.proc, self.started, self.restart_at = self.start(), time.monotonic(), None

    def check(self, log: Callable[[str], None]) -> None:
        now = time.monotonic()
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restarts += 1
                log(f"restarting {self.name} (restart {self.restarts})")
                self.launch()
            return
        if self.proc is None or self.proc.poll() is None:
            return
        if now - self.started > 60:
            self.backoff = 1.0
        log(f"{self.name} exited with code {self.proc.returncode}; restarting it in {self.backoff:.0f} s "
            f"(see the log in var/log/{self.name}.log); everything else keeps running")
        self.restart_at = now + self.backoff
        self.backoff = min(self.backoff * 2, 30.0)


def main() -> int:
    try:
        app = load_config()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    var = var_dir()
    logs = var / "log"
    logs.mkdir(parents=True, exist_ok=True)
    redis_port = port_of(app.redis.url)
    taken = []
    if app.redis.embedded and port_in_use(redis_port):
        taken.append(f"port {redis_port} (Redis, from redis.url) is taken: stop what uses it, or set "
                     f"BOT_REDIS__URL=redis://127.0.0.1:OTHER/0")
    if needs_local_exchange(app) and port_in_use(app.exchange.local_port):
        taken.append(f"port {app.exchange.local_port} (local exchange) is taken: stop what uses it, or set "
                     f"BOT_EXCHANGE__LOCAL_PORT=OTHER")
    if port_in_use(app.dashboard.port):
        taken.append(f"port {app.dashboard.port} (dashboard) is taken: stop what uses it, or set "
                     f"BOT_DASHBOARD__PORT=OTHER")
    if taken:
        print("cannot start:\n  " + "\n  ".join(taken), file=sys.stderr)
        return 1
    from auth.users import default_path, users_path

    if users_path() is None and default_path().exists():  # `bot_manager.py user add` wrote the default file
        os.environ["BOT_USERS_FILE"] = str(default_path())
    if users_path() is None and app.dashboard.address not in ("127.0.0.1", "localhost", "::1"):
        print(f"cannot start: dashboard.address is {app.dashboard.address} but there is no users file: add a user "
              "(bot_manager.py user add NAME --role ROLE) or bind 127.0.0.1", file=sys.stderr)
        return 2

    stopping = False

    def shutdown(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # Redis ACL (ops.redis_acl): each process signs in as its own user; the exchange keys go to the worker only
    urls: dict[str, str] = {}
    acl_file: Path | None = None
    worker_auth: tuple[str, str] | None = None
    if app.redis.embedded and os.environ.get("BOT_REDIS_ACL", "1") != "0":
        from ops.redis_acl import passwords, url_for, write_acl

        pw = passwords()
        acl_file = write_acl(pw)
        worker_auth = ("worker", pw["worker"])
        urls = {name: url_for(app.redis.url, user, pw[user]) for name, user in
                (("worker", "worker"), ("exchange", "worker"), ("dashboard", "dashboard"), ("api", "api"),
                 ("notify", "notifier"), ("archiver", "archiver"))}
    launcher_log = open(logs / "launcher.log", "a")

    def log(msg: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        print(line, file=sys.stderr, flush=True)
        launcher_log.write(line + "\n")
        launcher_log.flush()

    def run(cmd: list[str], name: str) -> "subprocess.Popen[bytes]":
        mine = {k: v for k, v in env.items() if name == "worker" or not k.startswith("BOT_BINANCE_")}
        if name in urls:
            mine["BOT_REDIS__URL"] = urls[name]
        return subprocess.Popen(cmd, cwd=ROOT, env=mine, stdout=open(logs / f"{name}.log", "ab"),
                                stderr=subprocess.STDOUT)

    children: list[Child] = []
    try:
        if app.redis.embedded:
            print(f"starting Redis on 127.0.0.1:{redis_port} (AOF on, data in {app.redis.data_dir}/)")
            data = Path(app.redis.data_dir)
            data = data if data.is_absolute() else ROOT / data
            children.append(Child("redis", lambda: start_redis(redis_port, data, app.redis.appendfsync,
                                                               logs / "redis.log", acl_file, worker_auth)))
            children[-1].launch()
        if needs_local_exchange(app):
            port = app.exchange.local_port
            print(f"starting the local Binance-compatible exchange on 127.0.0.1:{port} (log: var/log/exchange.log)")
            exch = Child("exchange", lambda: run(exchange_command(app, stored_market(urls.get("worker", app.redis.url),
                                                                                     app.market.symbols),
                                                                  exchange_state_file()), "exchange"))
            children.append(exch)
            exch.launch()
            assert exch.proc is not None
            if not _wait_http(f"http://127.0.0.1:{port}/api/v3/ping", 30, exch.proc):
                print("the local exchange did not start; see var/log/exchange.log", file=sys.stderr)
                return 1
        print("starting the worker (log: var/log/worker.log)")
        children.append(Child("worker", lambda: run([sys.executable, str(ROOT / "bot_manager.py"), "run"], "worker")))
        children[-1].launch()
        print("starting the archiver: every record into var/records/ (log: var/log/archiver.log)")
        children.append(Child("archiver", lambda: run(archiver_command(urls.get("archiver", app.redis.url), var / "records"), "archiver")))
        children[-1].launch()
        print("starting the dashboard (log: var/log/dashboard.log)")
        dash = Child("dashboard", lambda: run(dashboard_command(app.dashboard.port, app.dashboard.address), "dashboard"))
        children.append(dash)
        dash.launch()
        # operator reach (issue 13): the REST API and the notifier (ops/reach.py), supervised like the rest
        from ops.reach import reach_processes

        for name, cmd in reach_processes():
            children.append(Child(name, lambda cmd=cmd, name=name: run(cmd, name)))
            children[-1].launch()
        url = f"http://127.0.0.1:{app.dashboard.port}"
        assert dash.proc is not None
        if _wait_http(url + "/_stcore/health", 60, dash.proc):
            print(f"\n  Dashboard: {url}\n  Press Ctrl-C to stop everything.\n", flush=True)
        tail = open(logs / "worker.log", "rb")
        tail.seek(0, os.SEEK_END)
        while not stopping:
            chunk = tail.read()
            if chunk:
                sys.stdout.write(chunk.decode(errors="replace"))
                sys.stdout.flush()
            for child in children:
                child.check(log)
            time.sleep(0.3)
    finally:
        for child in reversed(children):
            if child.proc is not None:
                print(f"stopping {child.name}")
                stop(child.proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
