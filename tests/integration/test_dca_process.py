"""An end-to-end DCA deal: the worker as a real subprocess replaying scripted candles into a real
redis-server. The base order fills, two safety orders fill on a dip, the take profit fills and every
other resting order is canceled; the same deal with a SIGKILL of the worker in the middle ends the
same way after a restart (same tranches, same P&L, no duplicate orders or fills)."""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from state import keys
from state.models import FillRecord, OrderRecord, TradeRecord
from state.reader import StateReader
from support import LOOSE_RISK, start_worker, wait_for, write_config

BOT = "dca-e2e"
SYMBOL = "BTCUSDT"
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
WARMUP = 5
PLATEAU = 40  # candles between the SO1 fill and the SO2 fill: 2 s at 20 candles/s (the kill window)

# BO 100 @ 100; SO1..SO4 200 each at 99, 98, 97, 96; 3 resting at once; TP 1 % over the average.
DCA = {"base_order": 100, "safety_order": 200, "deviation_pct": 1, "step_scale": 1, "volume_scale": 1,
       "max_safety_orders": 4, "active_safety_orders": 3, "take_profit_pct": 1, "side": "long",
       "cooldown_s": 10_000_000}
QTY = [100 / 100, 200 / 99, 200 / 98]           # BO, SO1, SO2
COST = 100 + 200 + 200
AVG = COST / sum(QTY)
TP = AVG * 1.01
PNL = sum(QTY) * (TP - AVG)                     # = 1 % of the cost: 5.0
# Orders stream: BO filled; SO1-3 + TP1 resting; SO1 filled, old TP canceled, SO4 + new TP; SO2 filled,
# old TP canceled, new TP; TP filled, SO3 and SO4 canceled.
ORDER_RECORDS = 1 + 4 + 4 + 3 + 3
FILL_RECORDS = 4


def scripted_candles() -> list[tuple[float, float, float, float]]:
    """(open, high, low, close) per 1m candle."""
    rows = [(100.0, 100.0, 100.0, 100.0)] * (WARMUP + 3)          # warm-up, then the BO at 100
    rows += [(100.0, 100.0, 98.9, 98.95)]                          # trades through SO1 (99) only
    rows += [(98.95, 98.95, 98.95, 98.95)] * PLATEAU               # between SO1 and SO2
    rows += [(98.95, 98.95, 97.9, 97.95)]                          # trades through SO2 (98) only
    rows += [(97.95, 97.95, 97.95, 97.95)] * 5
    rows += [(97.95, 100.5, 97.95, 100.2)]                         # trades through the TP (~99.78)
    rows += [(100.2, 100.2, 100.2, 100.2)] * 10
    return rows


def write_csv(path: Path) -> Path:
    lines = ["timestamp,open,high,low,close,volume"]
    for i, (o, h, lo, c) in enumerate(scripted_candles()):
        t = (T0 + timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M:%S+0000")
        lines.append(f"{t},{o},{h},{lo},{c},1000")  # far above the paper fill model's 10 % volume cap
    path.write_text("\n".join(lines) + "\n")
    return path


def dca_config(redis_url: str, csv: Path) -> dict:
    return {
        "redis": {"url": redis_url, "embedded": False},
        "market": {"source": "replay", "replay_files": [str(csv)], "symbols": [SYMBOL], "interval": "1m",
                   "speed": 1200, "warmup_candles": WARMUP},  # 1200 simulated s per s: 20 1m candles/s
        "paper": {"fee_pct": 0, "slippage_bps": 0, "starting_balance": 10_000},
        "worker": {"heartbeat_ttl_s": 3, "heartbeat_every_s": 0.3},
        "bots": [{"name": BOT, "mode": "paper", "kind": "dca", "symbol": SYMBOL, "dca": DCA, "risk": LOOSE_RISK}],
    }


@pytest.fixture
def config(redis_server, tmp_path: Path) -> Path:
    csv = write_csv(tmp_path / f"{SYMBOL}-1m.csv")
    return write_config(tmp_path / "config.yaml", dca_config(redis_server.url, csv))


def orders(r) -> list[OrderRecord]:
    return [OrderRecord.model_validate_json(f[b"data"]) for _, f in r.xrange(keys.orders(BOT))]


def fills(r) -> list[FillRecord]:
    return [FillRecord.model_validate_json(f[b"data"]) for _, f in r.xrange(keys.fills(BOT))]


def closed_deals(r) -> list[dict]:
    return [json.loads(f[b"data"]) for _, f in r.xrange(keys.deals(BOT))]


def snap(r):
    return StateReader(r).snapshots([BOT]).get(BOT)


def deal_closed(r) -> bool:
    s = snap(r)
    return bool(closed_deals(r)) and s is not None and s.trade_count == 1


def assert_the_deal_ended_as_scripted(r) -> dict:
    (deal,) = closed_deals(r)
    assert deal["status"] == "CLOSED" and deal["close_reason"] == "take profit"
    assert deal["safety_filled"] == 2
    assert [t["tag"] for t in deal["tranches"]] == ["BO", "SO1", "SO2"]
    assert [t["price"] for t in deal["tranches"]] == pytest.approx([100.0, 99.0, 98.0])
    assert [t["quantity"] for t in deal["tranches"]] == pytest.approx(QTY)
    assert deal["realized_pnl"] == pytest.approx(PNL, rel=1e-6)
    assert deal["realized_pnl"] == pytest.approx(0.01 * COST, rel=1e-6)
    assert deal["quantity"] == 0 and deal["tp_steps_filled"] == 1
    assert [s for s, _ in deal["transitions"]][-1] == "CLOSED"

    s = snap(r)
    assert s is not None and s.dca is not None
    assert s.dca["deals"] == [] and s.dca["resting"] == []          # SO3, SO4 canceled with the deal
    assert s.trade_count == 1 and s.positions == []
    assert s.realized_pnl == pytest.approx(PNL, rel=1e-6)
    assert s.quote_balance == pytest.approx(10_000 + PNL, rel=1e-9)
    (trade,) = [TradeRecord.model_validate_json(f[b"data"]) for _, f in r.xrange(keys.trades(BOT))]
    assert trade.pnl == pytest.approx(PNL, rel=1e-6)

    # Exactly the BO, SO1, SO2 and TP filled, each once; nothing else ever filled.
    fs = fills(r)
    assert len(fs) == FILL_RECORDS
    assert len({f.client_order_id for f in fs}) == FILL_RECORDS
    assert [(f.side, round(f.price, 6)) for f in fs] == [("BUY", 100.0), ("BUY", 99.0), ("BUY", 98.0),
                                                         ("SELL", round(TP, 6))]
    assert sum(f.quantity for f in fs[:3]) == pytest.approx(fs[3].quantity, rel=1e-12)
    os_ = orders(r)
    assert len(os_) == ORDER_RECORDS, [(o.reason, o.status) for o in os_]
    dupes = [k for k, n in Counter((o.client_order_id, o.status) for o in os_).items() if n > 1]
    assert not dupes, f"order records written twice: {dupes}"
    filled = [o.reason.split()[-2] for o in os_ if o.status == "FILLED" and o.order_type == "LIMIT"]
    assert filled == ["SO1", "SO2", "TP1"]
    placed = sorted(o.reason.split()[-1] for o in os_ if o.status == "NEW")
    assert placed == ["SO1", "SO2", "SO3", "SO4", "TP1", "TP1", "TP1"]
    assert not [o for o in os_ if o.status == "REJECTED"]
    canceled = sorted(o.reason.split()[-2] for o in os_ if o.status == "CANCELED")
    assert canceled == ["SO3", "SO4", "TP1", "TP1"]  # every other resting order canceled, and said so
    return deal


def test_dca_deal_end_to_end(r, config, tmp_path):
    w = start_worker(config, tmp_path / "worker.log", r)
    try:
        wait_for(lambda: (s := snap(r)) is not None and s.dca and s.dca["deals"], 20, "the deal to open")
        s = snap(r)
        (deal,) = s.dca["deals"]
        assert deal["base_price"] == pytest.approx(100.0) and [t["tag"] for t in deal["tranches"]] == ["BO"]
        wait_for(lambda: deal_closed(r), 25, "the deal to close")
        assert_the_deal_ended_as_scripted(r)
        assert w.alive(), w.log()
    finally:
        w.stop()


def test_dca_deal_survives_sigkill_mid_deal(r, config, tmp_path):
    w = start_worker(config, tmp_path / "worker.log", r)
    try:
        def so1_filled() -> bool:
            s = snap(r)
            return bool(s and s.dca and s.dca["deals"] and s.dca["deals"][0]["safety_filled"] == 1)

        wait_for(so1_filled, 20, "the first safety order fill in Redis", every=0.02)
        w.kill9()
    finally:
        w.stop()
    # Killed in the middle: SO1 filled, SO2/SO3/SO4 and the TP resting, nothing closed yet.
    s = snap(r)
    assert not closed_deals(r), "the kill came too late: the deal was already closed"
    (deal,) = s.dca["deals"]
    assert deal["safety_filled"] == 1 and [t["tag"] for t in deal["tranches"]] == ["BO", "SO1"]
    assert sorted(o["tag"] for o in s.dca["resting"]) == ["SO2", "SO3", "SO4", "TP1"]
    assert len(fills(r)) == 2

    again = start_worker(config, tmp_path / "worker2.log", r)
    try:
        wait_for(lambda: deal_closed(r), 25, "the restarted worker to close the deal")
        closed = assert_the_deal_ended_as_scripted(r)
        assert closed["id"] == deal["id"] and closed["opened_at"] == deal["opened_at"]
        assert again.alive(), again.log()
        assert "restored" in again.log()
    finally:
        again.stop()


def test_restarted_replay_worker_keeps_the_candle_history_strictly_increasing(r, config, tmp_path):
    w = start_worker(config, tmp_path / "worker.log", r)
    try:
        wait_for(lambda: (s := snap(r)) is not None and s.dca and s.dca["deals"], 20, "the deal to open")
        w.kill9()
    finally:
        w.stop()
    again = start_worker(config, tmp_path / "worker2.log", r)
    last = int((T0 + timedelta(minutes=len(scripted_candles()) - 1)).timestamp() * 1000)

    def times() -> list[int]:
        return [json.loads(row)["t"] for row in r.lrange(keys.candles(SYMBOL), 0, -1)]

    try:
        wait_for(lambda: times() and times()[-1] == last, 25, "the last candle of the file in Redis")
    finally:
        again.stop()
    t = times()
    assert t == sorted(set(t)), f"{len(t) - len(set(t))} candles stored twice"
    assert len(t) == len(scripted_candles())
