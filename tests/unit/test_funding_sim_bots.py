"""USD-M funding in paper bots and futures backtests (executors.funding): one payment computed by hand,
who pays whom, the schedule (00:00, 08:00, 16:00 UTC), exits inside the funding candle, paper equal to the
backtest, kept across a restart, and a futures backtest on the shared Binance USD-M file."""
from __future__ import annotations

from typing import Any

import fakeredis
import numpy as np
import pytest

from backtest.data import SymbolData, load_data
from backtest.engine import run_config
from core.clock import SimClock
from core.types import Candle
from engine.worker import Worker
from executors.fills import paper_model
from executors.funding import FundingModel, funding_times
from market.feed import ReplayFeed
from market.replay import shared_market_dir
from settings import AppConfig
from state.reader import StateReader

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC, a funding time
H = 3_600_000
RISK = {"max_position_pct": 100, "min_notional": 0, "max_orders_per_minute": None, "max_loss_per_trade_pct": None,
        "daily_loss_pct": None, "max_drawdown_pct": None}


def hours(closes: list[float], lows: list[float] | None = None) -> list[Candle]:
    """1 h candles from T0 (a USD-M bot reads the one series unless the market comes from the venue);
    open = the previous close."""
    out, prev = [], closes[0]
    for i, c in enumerate(closes):
        lo = lows[i] if lows else min(prev, c)
        out.append(Candle("BTCUSDT", T0 + i * H, prev, max(prev, c), lo, c, 1e9, "1h"))
        prev = c
    return out


def app_of(rate: float = 0.01, **bot: Any) -> AppConfig:
    return AppConfig(market={"symbols": ["BTCUSDT"], "interval": "1h", "warmup_candles": 2},
                     paper={"fee_pct": 0.0, "slippage_bps": 0, "funding_rate_pct": rate,
                            "fills": {"policy": "realistic", "max_volume_pct": None}},
                     bots=[{"name": "fut", "mode": "paper", "symbol": "BTCUSDT", "market": "futures",
                            "strategy": "momentum", "params": {"window": 2, "threshold_pct": 1},
                            "sizing": {"kind": "fixed_quote", "value": 1020}, "max_tranches": 1,
                            "risk": RISK, **bot}])


# Flat at 100, up to 102 on the 04:00 close (ROC over 2 candles 2 % > 1 %: BUY 1020 / 102 = 10 BTC), then
# flat at 102 until 20:00: funding times 08:00 and 16:00 fall inside the position.
LONG = [100.0] * 4 + [102.0] * 17


def backtest(app: AppConfig, candles: list[Candle]) -> Any:
    (res,) = run_config(app, {"BTCUSDT": SymbolData.from_candles(candles)}, paper_model(app.paper), path="auto")
    return res


def test_one_funding_payment_by_hand() -> None:
    res = backtest(app_of(), hours(LONG[:9]))  # last candle 08:00-09:00: one funding time, 08:00
    assert res.open_quantity == pytest.approx(10.0) and res.open_entry == pytest.approx(102.0)
    # 10 BTC long x mark 102 x 0.01 % = 0.102 USDT paid (longs pay shorts at a positive rate)
    assert res.funding == pytest.approx(-0.102)
    assert res.equity[-1] == pytest.approx(10_000 - 0.102)  # fees 0, price flat: funding is the only cost
    assert res.fees_paid == 0.0


def test_schedule_and_who_pays() -> None:
    assert funding_times(T0, T0 + 8 * H) == 1 and funding_times(T0, T0 + 8 * H - 1) == 0
    assert funding_times(T0 - 1, T0) == 1 and funding_times(T0 + H, T0 + 25 * H) == 3
    fm = FundingModel(0.01)
    assert fm.due("X", T0 + 7 * H, 10.0, 102.0) == 0.0  # the first candle starts the schedule
    assert fm.due("X", T0 + 8 * H, 10.0, 102.0) == pytest.approx(-0.102)
    assert fm.due("X", T0 + 9 * H, 10.0, 102.0) == 0.0
    assert fm.due("X", T0 + 16 * H, -10.0, 102.0) == pytest.approx(0.102)  # a short receives
    assert FundingModel(-0.02, {"X": T0}).due("X", T0 + 8 * H, 10.0, 100.0) == pytest.approx(0.2)  # < 0: shorts pay
    assert fm.due("X", T0 + 40 * H, 1.0, 100.0) == pytest.approx(-0.03)  # 24:00, 08:00, 16:00 in one step


def test_two_funding_times_and_a_negative_rate_in_a_backtest() -> None:
    res = backtest(app_of(), hours(LONG))
    assert res.funding == pytest.approx(-0.204)  # 08:00 and 16:00
    assert backtest(app_of(rate=-0.03), hours(LONG)).funding == pytest.approx(2 * 10 * 102 * 0.0003)
    assert backtest(app_of(rate=0.0), hours(LONG)).funding == 0.0


def test_a_stop_inside_the_funding_candle_pays_no_funding() -> None:
    """The stop fires inside the 07:00-08:00 candle, before the funding time at its close."""
    closes = LONG[:8] + [101.0]
    lows = [min(a, b) for a, b in zip([100.0] + closes[:-1], closes)]
    lows[7] = 99.0  # candle 07:00-08:00 trades down to 99: the 2 % stop at 99.96 fires
    res = backtest(app_of(params={"window": 2, "threshold_pct": 1, "stop_loss_pct": 2}), hours(closes, lows))
    assert [t.exit_reason for t in res.trades] == ["stop_loss"] and res.open_quantity == 0.0
    assert res.funding == 0.0


def test_the_fast_path_settles_funding_exactly_as_the_bar_path() -> None:
    """Funding candles are events of the fast path while a position is open (backtest.fast)."""
    rng = np.random.default_rng(5)
    n = 3000
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    opens = np.concatenate(([100.0], closes[:-1]))
    highs, lows = np.maximum(opens, closes) * 1.001, np.minimum(opens, closes) * 0.999
    times = T0 + 20 * 60_000 + 60_000 * np.arange(n, dtype=np.int64)  # 1 m candles, starting off a boundary
    times[1500:] += 7 * H  # a gap over a funding time: it is due on the first candle after it
    data = {"BTCUSDT": SymbolData("BTCUSDT", "1m", times, opens, highs, lows, closes, np.full(n, 1e9))}
    app = app_of(params={"window": 30, "threshold_pct": 1.5, "stop_loss_pct": 1, "take_profit_pct": 2})
    app = app.model_copy(update={"market": app.market.model_copy(update={"interval": "1m"})})
    fast, bar = (run_config(app, data, paper_model(app.paper), path=p)[0] for p in ("fast", "bar"))
    assert fast.path == "fast" and bar.path == "bar"
    assert fast.funding == bar.funding != 0.0
    assert fast.trades == bar.trades and np.array_equal(fast.equity, bar.equity)
    spot = app_of(market="spot")
    res = backtest(spot, hours(LONG))
    assert res.funding == 0.0  # no funding on spot


def test_a_paper_futures_bot_in_the_worker_pays_what_the_backtest_pays_and_keeps_it_across_a_restart() -> None:
    app = app_of()
    candles = hours(LONG)
    r = fakeredis.FakeRedis()
    w = Worker(app, r, ReplayFeed([]), clock=SimClock(T0))
    w.start()
    for c in candles[:12]:
        w.step([c])
    assert StateReader(r).snapshots()["fut"].funding == pytest.approx(-0.102)
    w2 = Worker(app, r, ReplayFeed([]), clock=SimClock(T0 + 12 * H))  # a restart: books from the snapshot
    w2.start()
    for c in candles[12:]:
        w2.step([c])
    snap = StateReader(r).snapshots()["fut"]
    assert snap.funding == pytest.approx(backtest(app, candles).funding) == pytest.approx(-0.204)
    assert snap.equity == pytest.approx(10_000 - 0.204)


def test_a_futures_backtest_on_the_shared_usdm_file_books_funding_apart_from_fees() -> None:
    base = shared_market_dir()
    path = base / "futures_um/binance_um_2024-01_2025-12/BTCUSDT-1h-ohlc.csv" if base else None
    if path is None or not path.exists():
        pytest.skip("shared futures data not found (../shared/data/market or BOT_MARKET_DATA)")
    loaded = load_data([path])
    data = {s: d.head(2000) for s, d in loaded.symbols.items()}
    app = app_of(params={"window": 24, "threshold_pct": 2}, sizing={"kind": "percent_equity", "value": 50},
                 max_tranches=3)
    app = app.model_copy(update={"paper": app.paper.model_copy(update={"fee_pct": 0.05})})
    (res,) = run_config(app, data, paper_model(app.paper), path="auto")
    assert res.path == "fast" and res.trades and res.funding != 0.0
    # equity = start + trade P&L (net of fees) + funding + the open position's unrealized P&L less its fees
    d = data["BTCUSDT"]
    realized = sum(t.pnl for t in res.trades)
    unrealized = res.open_quantity * (float(d.closes[-1]) - res.open_entry)
    open_fees = abs(res.open_quantity) * res.open_entry * 0.05 / 100 if res.open_quantity else 0.0
    assert res.equity[-1] == pytest.approx(10_000 + realized + res.funding + unrealized - open_fees, rel=1e-6)
    assert float(np.min(res.equity)) > 0
