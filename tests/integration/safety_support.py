"""Helpers of the issue-12 ("Money safety II") tests: a live config on the local exchange, the venue's
side of the books, the bot's side (fills, positions, drift audits), candles driven by hand.

Everything goes through real processes: the worker (``support.start_worker``), the local exchange
(``sim_process.SimProcess``) and a real redis-server."""
from __future__ import annotations

import json
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import redis

from sim_process import SimProcess
from state import keys
from state.commands import new_command, post_command
from state.intents import IntentRecord, RedisIntentStore
from state.models import AuditRecord, FillRecord
from support import result_of, snapshots, wait_for, write_config

# the clock-bound ceilings would make a test depend on the hour: lifted, audited
OVERRIDE = {"BOT_RISK_OVERRIDE": "money safety II test: no blackout hours"}
OPEN_RISK: dict[str, Any] = {"blackout_hours_utc": None, "min_entry_interval_s": 0, "max_position_pct": 90,
                             "max_orders_per_minute": 200, "max_position_value": 400,
                             "max_mode_exposure_value": 1500}


def venue(tmp_path: Path, symbols: str = "BTCUSDT", speed: float = 0, seed: int = 5) -> SimProcess:
    """The local exchange; at ``speed`` 0 the market moves only when the test advances it."""
    return SimProcess(tmp_path / "exchange.log", "--source", "synthetic", "--symbols", symbols, "--seed", str(seed),
                      "--speed", str(speed), "--warmup", "60")


def live_config(tmp_path: Path, redis_url: str, venue_url: str, bots: list[dict[str, Any]],
                symbols: tuple[str, ...] = ("BTCUSDT",), **exchange: Any) -> Path:
    return write_config(tmp_path / "config.yaml", {
        "redis": {"url": redis_url, "embedded": False},
        "market": {"source": "exchange", "symbols": list(symbols), "warmup_candles": 30},
        "exchange": {"venue": "local", "local_url": venue_url, "reconcile_every_s": 1, **exchange},
        "worker": {"heartbeat_ttl_s": 3, "heartbeat_every_s": 0.3},
        "bots": bots,
    })


def advance(sim: SimProcess, steps: int = 1) -> int:
    """Close ``steps`` candles on the exchange; returns its market time."""
    return int(sim.admin("POST", "/admin/advance", {"steps": steps})["marketTime"])


def send_signal(r: redis.Redis, bot: str, side: str, *, stop: float | None = None, take: float | None = None,
                alert: str, symbol: str = "BTCUSDT") -> None:
    body: dict[str, Any] = {"side": side, "symbol": symbol, "alert_time": int(time.time() * 1000), "alert_id": alert}
    if stop is not None:
        body["stop_loss"] = stop
    if take is not None:
        body["take_profit"] = take
    cmd = new_command("signal", "bot", bot, user="pytest", payload=json.dumps(body))
    post_command(r, cmd)
    res = wait_for(lambda: result_of(r, cmd.nonce), 20, "the worker's answer to the signal")
    assert res.status == "applied" and "denied" not in res.message, res


def held(r: redis.Redis, bot: str) -> float:
    """What the bot's saved books hold (every open position of the bot)."""
    s = snapshots(r).get(bot)
    return sum(p.quantity for p in s.open_positions) if s is not None else 0.0


def last_price(r: redis.Redis, bot: str) -> float:
    s = snapshots(r).get(bot)
    return s.last_price if s is not None else 0.0


def venue_holding(sim: SimProcess, market: str, symbol: str = "BTCUSDT") -> Decimal:
    if market == "futures":
        pos = next((p for p in sim.client("futures").positions() if p.symbol == symbol), None)
        return pos.amount if pos is not None else Decimal(0)
    b = sim.client().balances().get(symbol.removesuffix("USDT"))
    return b.total if b is not None else Decimal(0)


def baseline(r: redis.Redis, bot: str, asset: str = "BTC") -> Decimal:
    """Spot: what the bot wrote off as not its own (dust, holdings from before it)."""
    return Decimal((r.hget(keys.recon_baseline(bot), asset) or b"0").decode())


def venue_orders(sim: SimProcess, market: str, symbol: str = "BTCUSDT") -> list[dict[str, Any]]:
    c = sim.client(market).raw
    return c.futures_get_all_orders(symbol=symbol) if market == "futures" else c.get_all_orders(symbol=symbol)


def intents(r: redis.Redis, bot: str) -> list[IntentRecord]:
    return RedisIntentStore(r).all(bot)


def fills(r: redis.Redis, bot: str) -> list[FillRecord]:
    return [FillRecord.model_validate_json(f[b"data"]) for _, f in r.xrange(keys.fills(bot))]


def audits(r: redis.Redis) -> list[AuditRecord]:
    return [AuditRecord.model_validate_json(f[b"data"]) for _, f in r.xrange(keys.AUDIT)]


def drift_audits(r: redis.Redis) -> list[str]:
    return [f"{a.target}: {a.detail}" for a in audits(r) if a.who == "reconcile"]


def assert_booked_once(r: redis.Redis, sim: SimProcess, bot: str, market: str, symbol: str = "BTCUSDT") -> None:
    """Every venue order of the bot is known, and what each executed is booked exactly once: the bot's
    fill records of a client id add up to the venue's executed quantity (nothing lost, nothing twice)."""
    mine = {i.client_order_id for i in intents(r, bot)}
    executed: Counter[str] = Counter()
    for o in venue_orders(sim, market, symbol):
        assert o["clientOrderId"] in mine, f"venue order {o['clientOrderId']} unknown to the bot"
        executed[o["clientOrderId"]] += Decimal(o["executedQty"])  # type: ignore[assignment]
    booked: Counter[str] = Counter()
    for f in fills(r, bot):
        booked[f.client_order_id] += Decimal(str(f.quantity))  # type: ignore[assignment]
    # a spot buy is booked less the fee the venue took in the coin (0.1 %): twice or never is far off
    wrong = {c: (str(executed[c]), str(booked[c])) for c in set(executed) | set(booked)
             if abs(Decimal(executed[c]) - Decimal(booked[c])) > Decimal("0.0011") * Decimal(executed[c])
             + Decimal("0.00000001")}
    assert not wrong, f"client id: (venue executed, booked) differ: {wrong}; fills {fills(r, bot)}"
