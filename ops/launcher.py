"""`make run`: start Redis, the worker, the dashboard, the API and the notifier; stop them all on Ctrl-C.

Checks the config and the ports first and says clearly what is wrong (which key, which port).
Logs go to var/log/; the worker's log is also shown in this terminal.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ops.redis_server import port_in_use, port_of, start_redis, stop
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


def dashboard_command(port: int) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard.py"),
        "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        "--client.toolbarMode", "viewer",
    ]


def needs_local_exchange(app) -> bool:  # type: ignore[no-untyped-def]
    on_venue = any(b.mode == "live" for b in app.bots) or app.paper.venue == "testnet"
    return app.exchange.venue == "local" and not app.exchange.local_url and (
        app.market.source == "exchange" or on_venue)


def exchange_command(app, resume: dict[str, tuple[int, float]]) -> list[str]:  # type: ignore[no-untyped-def]
    """The local exchange on the same seeded market; continuing the stored candles when there are any,
    and the accounts kept in var/exchange-state.json."""
    m, ex = app.market, app.exchange
    balances = ",".join(f"{k}={v:g}" for k, v in ex.spot_balances.items())
    cmd = [sys.executable, "-m", "simulator", "--host", "127.0.0.1", "--port", str(ex.local_port),
           "--source", "synthetic", "--seed", str(m.seed), "--speed", f"{m.speed:g}",
           "--symbols", ",".join(m.symbols), "--balances", balances, "--futures-balance", f"{ex.futures_balance:g}",
           "--warmup", str(max(m.warmup_candles, 50)),
           # the accounts (balances, orders, positions) survive a restart, as on a real venue
           "--state-file", str(ROOT / "var" / "exchange-state.json")]
    if resume and len(resume) == len(m.symbols):
        start = max(t for t, _ in resume.values()) + 60_000
        cmd += ["--start-ms", str(start), "--resume", ",".join(f"{s}={c!r}" for s, (_, c) in resume.items())]
    return cmd


def stored_market(url: str, symbols: list[str]) -> dict[str, tuple[int, float]]:
    """The last stored candle per symbol, so a restarted local exchange continues the same market."""
    import redis

    from state.writer import StateWriter

    writer = StateWriter(redis.Redis.from_url(url, socket_timeout=5))
    out = {}
    for s in symbols:
        last = writer.recent_candles(s, 1)
        if last:
            out[s] = (last[-1].open_time, last[-1].close)
    return out


def main() -> int:
    try:
        app = load_config()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    logs = ROOT / "var" / "log"
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

    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def shutdown(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        if app.redis.embedded:
            print(f"starting Redis on 127.0.0.1:{redis_port} (AOF on, data in {app.redis.data_dir}/)")
            procs.append(("redis", start_redis(redis_port, ROOT / app.redis.data_dir, app.redis.appendfsync,
                                               logs / "redis.log")))
        if needs_local_exchange(app):
            port = app.exchange.local_port
            print(f"starting the local Binance-compatible exchange on 127.0.0.1:{port} (log: var/log/exchange.log)")
            exch = subprocess.Popen(exchange_command(app, stored_market(app.redis.url, app.market.symbols)),
                                    cwd=ROOT, env=env, stdout=open(logs / "exchange.log", "ab"),
                                    stderr=subprocess.STDOUT)
            procs.append(("exchange", exch))
            if not _wait_http(f"http://127.0.0.1:{port}/api/v3/ping", 30, exch):
                print("the local exchange did not start; see var/log/exchange.log", file=sys.stderr)
                return 1
        print("starting the worker (log: var/log/worker.log)")
        worker_log = open(logs / "worker.log", "ab")
        procs.append(("worker", subprocess.Popen([sys.executable, str(ROOT / "bot_manager.py"), "run"],
                                                 cwd=ROOT, env=env, stdout=worker_log, stderr=subprocess.STDOUT)))
        print("starting the dashboard (log: var/log/dashboard.log)")
        dash = subprocess.Popen(dashboard_command(app.dashboard.port), cwd=ROOT, env=env,
                                stdout=open(logs / "dashboard.log", "ab"), stderr=subprocess.STDOUT)
        procs.append(("dashboard", dash))
        # ---- operator reach (issue 13): the REST API and the notifier, see ops/reach.py ----
        from ops.reach import reach_processes

        for name, cmd in reach_processes():
            procs.append((name, subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(logs / f"{name}.log", "ab"),
                                                 stderr=subprocess.STDOUT)))
        # ---- end of operator reach ----
        url = f"http://127.0.0.1:{app.dashboard.port}"
        if _wait_http(url + "/_stcore/health", 60, dash):
            print(f"\n  Dashboard: {url}\n  Press Ctrl-C to stop everything.\n", flush=True)
        tail = open(logs / "worker.log", "rb")
        tail.seek(0, os.SEEK_END)
        while not stopping:
            chunk = tail.read()
            if chunk:
                sys.stdout.write(chunk.decode(errors="replace"))
                sys.stdout.flush()
            for name, p in procs:
                if p.poll() is not None:
                    print(f"{name} exited with code {p.returncode}; stopping everything (see var/log/{name}.log)",
                          file=sys.stderr)
                    stopping = True
            time.sleep(0.3)
    finally:
        for name, p in reversed(procs):
            print(f"stopping {name}")
            stop(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
