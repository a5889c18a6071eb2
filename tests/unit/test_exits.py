"""Signal bot exits (engine.exits) through the backtest engine's Bot on scripted candles: ATR stop and
take-profit, trailing stop (percent and ATR), breakeven, and 30/50/20 scale-out targets each booked as
its own partial exit with its P&L; the bot's intrabar rule decides; config rules are named."""
from __future__ import annotations

import numpy as np
import pytest

from backtest.build import build_backtest_bot
from backtest.data import SymbolData
from backtest.engine import choose_path, run_bots
from backtest.fills import FillModel
from backtest_support import T0, app
from settings import AppConfig
from strategy.indicators import atr_last
from test_signal_policy import B, N, Scripted

ENTRY = 60  # the scripted BUY's candle (after 60 candles of history for the ATR)


def candles(path: list[float], wiggle: float = 0.2) -> SymbolData:
    """Flat-ish history around 100 (high/low ±wiggle), then ``path``: closes after the entry candle, each
    candle's high/low its open..close range."""
    hist = np.full(ENTRY + 1, 100.0)
    closes = np.concatenate((hist, np.asarray(path, dtype=float)))
    opens = np.concatenate(([100.0], closes[:-1]))
    highs, lows = np.maximum(opens, closes), np.minimum(opens, closes)
    highs[: ENTRY + 1] += wiggle
    lows[: ENTRY + 1] -= wiggle
    n = len(closes)
    return SymbolData("BTCUSDT", "1m", T0 + 60_000 * np.arange(n, dtype=np.int64), opens, highs, lows, closes,
                      np.full(n, 1e9))


def run(data: SymbolData, exits: dict, stop_pct: float | None = None, extra: dict | None = None):
    cfg = app([{"name": "x", "strategy": "sma_crossover", "max_tranches": 1, "exits": exits,
                "sizing": {"kind": "fixed_quote", "value": 1000}, **(extra or {})}])
    model = FillModel(slippage_bps=0, taker_fee_pct=0.0, maker_fee_pct=0.0)
    bot = build_backtest_bot(cfg.bots[0], cfg, model, "1m", strategy=Scripted({ENTRY: (B, N, 1.0)}, stop_pct))
    res = run_bots([(bot, {})], {"BTCUSDT": data}, model, "auto")[0]
    assert res.path == "bar"
    return bot, res


def expected_atr(data: SymbolData, period: int = 14) -> float:
    lo = ENTRY + 1 - 50  # the bot's history window (history_window: at least 50 candles)
    sl = slice(lo, ENTRY + 1)
    return atr_last(data.highs[sl], data.lows[sl], data.closes[sl], period)


def test_atr_stop_and_take_profit():
    data = candles([100.1, 100.3, 101.5, 101.6])
    atr = expected_atr(data)
    assert atr == pytest.approx(0.4, rel=0.05)
    bot, res = run(data, {"stop_atr": 1.0, "take_atr": 3.0})
    (t,) = res.trades
    assert t.exit_reason == "take_profit" and t.exit_price == pytest.approx(100.0 + 3 * atr)
    data = candles([100.1, 99.9, 99.2, 99.0])
    bot, res = run(data, {"stop_atr": 1.0, "take_atr": 3.0})
    (t,) = res.trades
    assert t.exit_reason == "stop_loss" and t.exit_price == pytest.approx(100.0 - atr)


def test_trailing_stop_percent_and_atr():
    path = [100.5, 101.0, 102.0, 101.8, 101.5, 100.9, 100.0]
    bot, res = run(candles(path), {"trailing_pct": 1.0})
    (t,) = res.trades
    assert t.exit_reason == "trailing_stop" and t.exit_price == pytest.approx(102.0 * 0.99)
    data = candles(path)
    bot, res = run(data, {"trailing_atr": 2.0})
    (t,) = res.trades
    assert t.exit_reason == "trailing_stop" and t.exit_price == pytest.approx(102.0 - 2 * expected_atr(data))


def test_breakeven_after_one_r():
    # stop 1 % (R = 1), price reaches +1 R, then falls back through the entry
    bot, res = run(candles([100.4, 101.1, 100.6, 99.8, 99.0]), {"breakeven_at_r": 1.0}, stop_pct=1.0)
    (t,) = res.trades
    assert t.exit_reason == "breakeven_stop" and t.exit_price == pytest.approx(100.0)


def test_scale_out_30_50_20_each_its_own_trade():
    # R = 1 (1 % stop): +1 R at 101, +2 R at 102; the last 20 % trails 1 % behind the best price
    path = [100.5, 101.2, 101.5, 102.4, 103.0, 102.5, 101.9]
    bot, res = run(candles(path), {"targets": [[1, 30], [2, 50]], "trailing_pct": 1.0}, stop_pct=1.0)
    qty = 1000 / 100.0
    assert [t.exit_reason for t in res.trades] == ["take_profit_1", "take_profit_2", "trailing_stop"]
    assert [t.quantity for t in res.trades] == pytest.approx([0.3 * qty, 0.5 * qty, 0.2 * qty])
    assert [t.exit_price for t in res.trades] == pytest.approx([101.0, 102.0, 103.0 * 0.99])
    assert [t.pnl for t in res.trades] == pytest.approx([0.3 * qty * 1.0, 0.5 * qty * 2.0, 0.2 * qty * 1.97])
    assert bot.position.quantity == 0


def test_two_targets_in_one_candle_and_the_stop_first_rule():
    bot, res = run(candles([100.2, 102.5, 102.5]), {"targets": [[1, 30], [2, 50]]}, stop_pct=1.0)
    assert [t.exit_reason for t in res.trades] == ["take_profit_1", "take_profit_2"]
    assert bot.position.quantity == pytest.approx(2.0)  # 20 % still held (no trailing, no final take)
    # a candle touching both the stop and the first target: the fill model's intrabar rule decides
    for close in (98.8, 100.5):
        data = candles([100.2, close])
        data.highs[-1], data.lows[-1] = 101.5, 98.5
        want = FillModel().exit_check(data.candle(len(data) - 1), True, 99.0, 101.0)
        bot, res = run(data, {"targets": [[1, 30]]}, stop_pct=1.0)
        assert res.trades[0].exit_reason == {"stop_loss": "stop_loss", "take_profit": "take_profit_1"}[want[0]]


def test_venue_bots_rest_only_the_stop_while_targets_remain():
    bot, res = run(candles([100.2, 100.3]), {"targets": [[1, 50]], "take_atr": 4.0}, stop_pct=1.0)
    pos = bot.position
    assert pos.is_open and pos.take_profit is None and pos.stop_loss == pytest.approx(99.0)


def test_config_rules_and_path():
    base = {"name": "x", "mode": "paper", "symbol": "BTCUSDT", "strategy": "sma_crossover"}
    with pytest.raises(ValueError, match="max_tranches: 1"):
        AppConfig(bots=[{**base, "exits": {"trailing_pct": 1}}])
    with pytest.raises(ValueError, match="set one of them"):
        AppConfig(bots=[{**base, "max_tranches": 1, "exits": {"trailing_pct": 1, "trailing_atr": 2}}])
    with pytest.raises(ValueError, match="together at most 100"):
        AppConfig(bots=[{**base, "max_tranches": 1, "exits": {"targets": [[1, 60], [2, 50]]}}])
    cfg = app([{**base, "max_tranches": 1, "exits": {"trailing_pct": 1}}])
    bot = build_backtest_bot(cfg.bots[0], cfg, FillModel(), "1m")
    # the fast path visits every candle of such a position (tests/unit/test_backtest_fast_platform.py)
    assert choose_path(bot, "auto") == "fast" and choose_path(bot, "fast") == "fast"
