"""Test support: real processes (redis-server, worker, dashboard) on free ports, a fast test config."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import redis
import yaml

from ops.redis_server import free_port, start_redis, stop
from state import keys
from state.models import BotSnapshot, CommandResult, Heartbeat

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


LOOSE_RISK: dict[str, Any] = {"max_position_pct": 100, "max_loss_per_trade_pct": None, "daily_loss_pct": None,
                              "max_drawdown_pct": None}


def fast_config(redis_url: str, **overrides: Any) -> dict[str, Any]:
    """A config that trades within seconds: 20 one-minute candles per second, twitchy strategies."""
    cfg: dict[str, Any] = {
        "redis": {"url": redis_url, "embedded": False},
        "market": {"symbols": ["BTCUSDT", "ETHUSDT"], "seed": 11, "speed": 1200, "warmup_candles": 60},
        "worker": {"heartbeat_ttl_s": 3, "heartbeat_every_s": 0.3},
        "ghost": {"horizon_candles": 20},
        # Twitchy bots with wide-open limits so the tests see trades within seconds; the risk
        # limits have their own tests.
        "bots": [
            {"name": "ghost-mom-btc", "mode": "ghost", "symbol": "BTCUSDT", "strategy": "momentum",
             "params": {"window": 5, "threshold_pct": 0.05}, "risk": LOOSE_RISK},
            {"name": "paper-mom-btc", "mode": "paper", "symbol": "BTCUSDT", "strategy": "momentum",
             "params": {"window": 5, "threshold_pct": 0.05}, "sizing": {"kind": "percent_equity", "value": 20},
             "max_hold_candles": 30, "risk": LOOSE_RISK},
            {"name": "paper-sma-eth", "mode": "paper", "symbol": "ETHUSDT", "strategy": "sma_crossover",
             "params": {"fast": 3, "slow": 8}, "sizing": {"kind": "percent_equity", "value": 20},
             "risk": LOOSE_RISK},
        ],
    }
    for k, v in overrides.items():
        cfg[k] = v
    return cfg


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


class RedisServer:
    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.proc = start_redis(self.port, data_dir, "always", data_dir / "redis.log")
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def client(self, decode: bool = False) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=decode)

    def close(self) -> None:
        stop(self.proc)


class WorkerProcess:
    """`python bot_manager.py run` as a real subprocess, its output in a log file."""

    def __init__(self, config: Path, log: Path, env: dict[str, str] | None = None, args: list[str] | None = None) -> None:
        # ``env``: extra environment for this worker only (BOT_RISK_OVERRIDE, BOT_CHAOS, ...); ``args``: more
        # `run` options (--shards 0,1)
        self.config, self.log_path, self.env, self.args = config, log, dict(env or {}), list(args or [])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "WorkerProcess":
        env = {**os.environ, **self.env, "BOT_CONFIG": str(self.config), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([PY, str(ROOT / "bot_manager.py"), "run", *self.args], cwd=ROOT, env=env,
                                     stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def start_worker(config: Path, log: Path, r: redis.Redis, env: dict[str, str] | None = None,
                 timeout: float = 30.0) -> WorkerProcess:
    """Start the worker and wait for its own heartbeat (this process's pid, not a predecessor's).
    If none comes the worker is stopped and the error carries its log."""
    w = WorkerProcess(config, log, env).start()
    try:
        wait_for(lambda: (hb := heartbeat(r)) is not None and hb.pid == w.proc.pid, timeout,
                 "the worker's heartbeat")
    except AssertionError:
        w.stop()
        raise AssertionError(f"no heartbeat from the worker within {timeout:.0f} s; its log:\n{w.log()}") from None
    return w


def start_dashboard(config: Path, redis_url: str, log: Path, timeout: float = 90.0
                    ) -> tuple[subprocess.Popen[bytes], str]:
    """The real Streamlit dashboard on a free port for this config; returns (process, url) once healthy."""
    import urllib.request

    from ops.launcher import dashboard_command

    port = free_port()
    env = {**os.environ, "BOT_CONFIG": str(config), "BOT_REDIS__URL": redis_url, "BOT_DASHBOARD__REFRESH_S": "0.5"}
    proc = subprocess.Popen(dashboard_command(port), cwd=ROOT, env=env, stdout=open(log, "ab"),
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    try:
        wait_for(healthy, timeout, "the dashboard's health endpoint", every=0.2)
    except AssertionError:
        stop(proc)
        raise
    return proc, url


# A loaded CI machine (two cores, a browser, several servers) runs the processes under test slower than a
# quiet one: every wait is this many times the timeout written at its call (a wait ends as soon as its
# condition holds, so a passing test is no slower). How fast something must be is measured in bench/.
TIMEOUT_SCALE = float(os.environ.get("TEST_TIMEOUT_SCALE", "2"))


def wait_for(cond: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    timeout *= TIMEOUT_SCALE
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def heartbeat(r: redis.Redis) -> Heartbeat | None:
    raw = r.get(keys.HEARTBEAT)
    return Heartbeat.model_validate_json(raw) if raw else None


def snapshots(r: redis.Redis) -> dict[str, BotSnapshot]:
    names = [n.decode() if isinstance(n, bytes) else n for n in r.hkeys(keys.BOTS)]
    out = {}
    for n in names:
        raw = r.get(keys.snapshot(n))
        if raw:
            out[n] = BotSnapshot.model_validate_json(raw)
    return out


def result_of(r: redis.Redis, nonce: str) -> CommandResult | None:
    raw = r.get(keys.command_result(nonce))
    return CommandResult.model_validate_json(raw) if raw else None
