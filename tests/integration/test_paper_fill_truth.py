"""Paper fills on the real path are the backtest's (issue 18): a paper bot in a real worker process (real
redis-server, the local exchange's market over HTTP/WebSocket) fills exactly as the backtester's fill model
says on the same candles, read back from the exchange's klines: the same trades, prices, quantities, fees
and times (slippage, latency, the volume cap, the policy's stop and take-profit prices)."""
from __future__ import annotations

from pathlib import Path

import pytest

from backtest.build import build_backtest_bot
from backtest.data import SymbolData
from backtest.engine import run_bots
from executors.fills import paper_model
from settings import load_config
from sim_process import SimProcess
from state import keys
from state.models import EquityRecord, FillRecord, TradeRecord
from support import start_worker, wait_for, write_config

M = 60_000
WARMUP = 30
BOT = "paper-truth"


@pytest.fixture
def sim(tmp_path: Path):
    p = SimProcess(tmp_path / "exchange.log", "--source", "synthetic", "--symbols", "BTCUSDT", "--seed", "21",
                   "--speed", "600", "--warmup", "120")
    yield p
    p.close()


def stream(r, key: str, model):
    return [model.model_validate_json(f[b"data"]) for _, f in r.xrange(key)]


def test_a_paper_bot_in_the_worker_fills_as_the_backtest_does_on_the_same_candles(r, redis_server, sim,
                                                                                    tmp_path: Path) -> None:
    path = write_config(tmp_path / "config.yaml", {
        "redis": {"url": redis_server.url, "embedded": False},
        "market": {"source": "exchange", "symbols": ["BTCUSDT"], "warmup_candles": WARMUP, "speed": 600},
        "exchange": {"venue": "local", "local_url": sim.url},
        "paper": {"starting_balance": 1_000_000, "fee_pct": 0.1, "slippage_bps": 3,
                  "fills": {"policy": "realistic", "intrabar": "ohlc", "latency_ms": 350, "max_volume_pct": 2}},
        "bots": [{"name": BOT, "mode": "paper", "symbol": "BTCUSDT", "strategy": "momentum",
                  "params": {"window": 3, "threshold_pct": 0.04, "stop_loss_pct": 0.08, "take_profit_pct": 0.1},
                  # 2 % of a calm minute's ~700k USDT is ~14k: the cap cuts some of these orders
                  "sizing": {"kind": "fixed_quote", "value": 15_000},
                  "risk": {"max_position_pct": 100, "max_loss_per_trade_pct": None, "daily_loss_pct": None,
                           "max_drawdown_pct": None, "max_orders_per_minute": None}}],
    })
    w = start_worker(path, tmp_path / "worker.log", r)
    try:
        wait_for(lambda: r.xlen(keys.trades(BOT)) >= 8, 120, "eight paper trades")
    finally:
        w.stop()
    trades = stream(r, keys.trades(BOT), TradeRecord)
    fills = stream(r, keys.fills(BOT), FillRecord)
    marks = stream(r, keys.equity(BOT), EquityRecord)
    first, last = marks[0].time - M, marks[-1].time - M  # open times of the first and last live candle

    # The same candles, from the exchange (REST klines), independent of the worker's Redis.
    client = sim.client("spot")
    candles = []
    start = first - WARMUP * M
    while start <= last:
        page = [c for c in client.klines("BTCUSDT", "1m", start_ms=start, limit=1000) if c.open_time <= last]
        if not page:
            break
        candles += page
        start = page[-1].open_time + M
    live = [c for c in candles if c.open_time >= first]
    assert len(live) == (last - first) // M + 1  # none missing

    app = load_config(path)
    model = paper_model(app.paper)
    bot = build_backtest_bot(app.bots[0], app, model, "1m")
    bot.warm([c for c in candles if c.open_time < first])  # as the worker warmed it at its start
    (res,) = run_bots([(bot, dict(app.bots[0].params))], {"BTCUSDT": SymbolData.from_candles(live)}, model,
                      path="bar")

    assert len(trades) == len(res.trades) >= 8
    for p, b in zip(trades, res.trades):
        assert (p.entry_time, p.exit_time, p.exit_reason) == (b.entry_time, b.exit_time, b.exit_reason)
        assert (p.quantity, p.entry_price, p.exit_price, p.pnl, p.fees) == pytest.approx(
            (b.quantity, b.entry_price, b.exit_price, b.pnl, b.fees), rel=1e-9, abs=1e-9)
    # What the policy gave: market fills 350 ms after the deciding close, 3 bps worse than it.
    close_of = {c.open_time + M: c.close for c in live}
    buys = [f for f in fills if f.side == "BUY"]
    assert all(f.time % M == 350 and f.price == pytest.approx(close_of[f.time - 350] * 1.0003) for f in buys)
    assert any(f.quantity * f.price < 15_000 * 0.999 for f in buys) or any(
        t.exit_reason == "take_profit" for t in trades), "neither the volume cap nor a take-profit was exercised"
