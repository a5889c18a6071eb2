#!/usr/bin/env python3
"""Benchmark: simulation error of paper fills against the local exchange's matching.

The same bots run twice in one worker on one market path (the local exchange's synthetic market,
a fixed seed): once in paper mode (the fill model, ``paper.fills``) and once live on the local
exchange (its order book and its matching: market orders walk the book, resting orders fill on a
trade-through for up to 50 % of a bar's volume). Orders are paired by their client order id less the
bot's tag (the candle time, purpose and sequence), so a pair is one decision of both bots. Per bot:

  orders      decisions each sent (paper / live), how many both sent, and risk denials (apart)
  fill bps    mean and worst |paper fill price - live fill price| / live price, over orders both filled
  qty diff    mean |paper filled quantity - live filled quantity| / live quantity (lot sizes, base fees)
  fill rate   share of each one's orders that got a fill (paper - live, percentage points)
  P&L         realized P&L of the closed trades (paper, live, difference) and fees

Reference: the live bot (the exchange's matching) is the truth; figures only, no asserts.
Usage: .venv/bin/python bench/sim_truth.py [seconds=90] [policy=realistic]
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import redis  # noqa: E402

from ops.redis_server import free_port, start_redis, stop  # noqa: E402
from sim_process import SimProcess  # noqa: E402
from state import keys  # noqa: E402
from state.models import FillRecord, OrderRecord, RiskDecisionRecord, TradeRecord  # noqa: E402
from support import start_worker, write_config  # noqa: E402

# Live needs a stop on a signal bot (the per-trade loss ceiling is judged at it) and small sizes.
RISK = {"blackout_hours_utc": None, "max_position_pct": 100, "max_position_value": 400,
        "max_mode_exposure_value": 2000, "max_orders_per_minute": 60, "max_loss_per_trade_value": 50,
        "daily_loss_value": 200}
SIGNAL = {"symbol": "BTCUSDT", "strategy": "momentum",
          "params": {"window": 3, "threshold_pct": 0.08, "stop_loss_pct": 0.3, "take_profit_pct": 0.3},
          "sizing": {"kind": "fixed_quote", "value": 100}, "risk": RISK}
DCA = {"symbol": "ETHUSDT", "kind": "dca", "risk": RISK,
       "dca": {"base_order": 20, "safety_order": 20, "deviation_pct": 0.3, "step_scale": 1, "volume_scale": 1,
               "max_safety_orders": 3, "active_safety_orders": 2, "take_profit_pct": 0.3, "stop_loss_pct": 10,
               "side": "long", "cooldown_s": 0}}
PAIRS = {"sig": SIGNAL, "dca": DCA}


def read(r: redis.Redis, key: str, model):  # noqa: ANN001
    return [model.model_validate_json(f[b"data"]) for _, f in r.xrange(key)]


def decision(cid: str) -> str:
    return cid[10:]  # "tb" + 8 hex of the bot name: what is left is candle time, purpose, sequence


def vwap(fills: list[FillRecord]) -> dict[str, tuple[float, float]]:
    q: dict[str, float] = defaultdict(float)
    v: dict[str, float] = defaultdict(float)
    for f in fills:
        q[decision(f.client_order_id)] += f.quantity
        v[decision(f.client_order_id)] += f.quantity * f.price
    return {k: (q[k], v[k] / q[k]) for k in q if q[k] > 0}


def compare(r: redis.Redis, name: str) -> dict[str, float]:
    paper, live = f"paper-{name}", f"live-{name}"
    records = {b: read(r, keys.orders(b), OrderRecord) for b in (paper, live)}
    # a risk denial is no fill-model matter: such decisions are counted apart
    denied = {b: {decision(o.client_order_id) for o in records[b] if o.status == "REJECTED"} for b in (paper, live)}
    orders = {b: {decision(o.client_order_id) for o in records[b]} - denied[b] for b in (paper, live)}
    fills = {b: vwap(read(r, keys.fills(b), FillRecord)) for b in (paper, live)}
    trades = {b: read(r, keys.trades(b), TradeRecord) for b in (paper, live)}
    both = orders[paper] & orders[live]
    filled = [k for k in both if k in fills[paper] and k in fills[live]]
    bps = [abs(fills[paper][k][1] - fills[live][k][1]) / fills[live][k][1] * 1e4 for k in filled]
    qty = [abs(fills[paper][k][0] - fills[live][k][0]) / fills[live][k][0] * 100 for k in filled]

    def rate(b: str) -> float:
        return 100.0 * sum(1 for k in orders[b] if k in fills[b]) / len(orders[b]) if orders[b] else float("nan")

    pnl = {b: sum(t.pnl for t in trades[b]) for b in (paper, live)}
    decisions = {b: read(r, keys.risk_decisions(b), RiskDecisionRecord) for b in (paper, live)}
    rules = {b: dict(Counter(f"{d.rule} ({d.detail[:50]})" for d in decisions[b] if not d.allowed))
             for b in (paper, live)}
    print(f"{name}: risk denials by rule: paper {rules[paper] or 'none'}, live {rules[live] or 'none'}")
    return {"paper orders": len(orders[paper]), "live orders": len(orders[live]), "both": len(both),
            "paper denied": len(denied[paper]), "live denied": len(denied[live]),
            "both filled": len(filled), "mean bps": sum(bps) / len(bps) if bps else float("nan"),
            "max bps": max(bps, default=float("nan")), "qty diff %": sum(qty) / len(qty) if qty else float("nan"),
            "fill rate pp": rate(paper) - rate(live), "paper trades": len(trades[paper]),
            "live trades": len(trades[live]), "paper pnl": pnl[paper], "live pnl": pnl[live],
            "pnl diff": pnl[paper] - pnl[live]}


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 90.0
    policy = sys.argv[2] if len(sys.argv) > 2 else "realistic"
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        port = free_port()
        rproc = start_redis(port, tmp / "redis", "everysec")
        url = f"redis://127.0.0.1:{port}/0"
        sim = SimProcess(tmp / "exchange.log", "--source", "synthetic", "--symbols", "BTCUSDT,ETHUSDT",
                         "--seed", "5", "--speed", "120", "--warmup", "120", "--balances", "USDT=100000")
        r = redis.Redis.from_url(url)
        bots = [{"name": f"{mode}-{name}", "mode": mode, **cfg} for name, cfg in PAIRS.items()
                for mode in ("paper", "live")]
        cfg = write_config(tmp / "config.yaml", {
            "redis": {"url": url, "embedded": False},
            "market": {"source": "exchange", "symbols": ["BTCUSDT", "ETHUSDT"], "warmup_candles": 30},
            # no stop/take-profit resting on the venue: the live bot exits as the paper bot does (a market
            # order decided on a close), so the two differ by their fills only, not by how exits are made
            "exchange": {"venue": "local", "local_url": sim.url, "reconcile_every_s": 2, "protective_orders": False},
            "paper": {"fee_pct": 0.1, "slippage_bps": 2, "fills": {"policy": policy}},
            "bots": bots,
        })
        w = start_worker(cfg, tmp / "worker.log", r,
                         env={"BOT_RISK_OVERRIDE": "sim-truth benchmark: no blackout hours, more orders"})
        try:
            time.sleep(seconds)
        finally:
            w.stop()
            sim.close()
        rows = {name: compare(r, name) for name in PAIRS}
        if os.environ.get("SIM_TRUTH_LOG"):  # what each bot decided, for a closer look
            for b in bots:
                for o in read(r, keys.orders(b["name"]), OrderRecord):
                    print(b["name"], decision(o.client_order_id), o.purpose, o.order_type, o.status, o.quantity,
                          o.reason[:60])
        stop(rproc)
    print(f"sim truth: paper ({policy}, 2 bps slippage) against the local exchange's matching, "
          f"{seconds:.0f} s at 120x market speed (~{seconds * 2:.0f} one-minute candles), seed 5")
    names = list(rows)
    print(f"{'':<16}" + "".join(f"{n:>12}" for n in names))
    for col in rows[names[0]]:
        cells = [rows[n][col] for n in names]
        print(f"{col:<16}" + "".join(f"{v:>12.2f}" if isinstance(v, float) else f"{v:>12}" for v in cells))


if __name__ == "__main__":
    main()
