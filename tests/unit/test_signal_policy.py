"""Signal confirmation and temperature (engine.signal_policy) through the backtest engine's Bot: a signal
acts only after holding N evaluations, the temperature sizes the entry in bands, is recorded with the
signal and the trade, and tightens the stop as it cools; with the plain policy nothing changes and the
fast path still equals the bar path."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pytest

from backtest.build import build_backtest_bot
from backtest.engine import choose_path, run_bots
from backtest.fills import FillModel
from backtest_support import T0, app, random_data
from core.types import Candle, Side, Signal
from engine.signal_policy import SignalPolicy
from strategy.signal_settings import SignalPolicyConfig, TemperatureConfig

B, S, N = Side.BUY, Side.SELL, Side.NONE


class Scripted:
    """Signals by candle index: ``script[i] = (side, bias, confidence)``; a pure function of the candles."""

    name = "scripted"
    warmup = 1
    lookback = 1

    def __init__(self, script: dict[int, tuple[Side, Side, float]], stop_pct: float | None = None) -> None:
        self.script, self.stop_pct = script, stop_pct

    def evaluate(self, candles: Sequence[Candle]) -> Signal:
        c = candles[-1]
        side, bias, conf = self.script.get((c.open_time - T0) // 60_000, (N, N, 0.0))
        if side is N:
            return Signal.none("quiet", bias)
        stop = None if self.stop_pct is None else c.close * (1 - (1 if side is B else -1) * self.stop_pct / 100)
        return Signal(side, conf, "scripted", stop)


def run(script, signals: dict | None = None, stop_pct: float | None = None, n: int = 60, path: str = "bar",
        closes: np.ndarray | None = None):
    bot = {"name": "p", "strategy": "sma_crossover", "market": "futures",
           "sizing": {"kind": "fixed_quote", "value": 1000}, **({"signals": signals} if signals else {})}
    cfg = app([bot])
    data = random_data(n, seed=3)
    if closes is not None:
        data.closes[:] = closes
        data.opens[:] = closes
        data.highs[:] = closes * 1.0001
        data.lows[:] = closes * 0.9999
    model = FillModel(slippage_bps=0)
    b = build_backtest_bot(cfg.bots[0], cfg, model, "1m", strategy=Scripted(script, stop_pct))
    b.records = True  # keep the SignalRecords (temperature) as the worker does
    return b, run_bots([(b, {})], {"BTCUSDT": data}, model, path)[0]


def entries(bot) -> list[tuple[int, float]]:
    return [((o.created_at - T0) // 60_000 - 1, o.quantity) for o in bot._out.orders if o.purpose == "ENTRY"]


def test_plain_policy_acts_on_every_fresh_signal_at_once():
    bot, res = run({5: (B, N, 1.0), 9: (S, N, 1.0)})
    assert [i for i, _ in entries(bot)] == [5, 9]


def test_confirmation_waits_for_n_holding_evaluations():
    script = {
        5: (B, N, 1.0), 6: (N, B, 0.0),                     # held 2 of 3, then broken (no bias)
        10: (B, N, 1.0), 11: (N, B, 0.0), 12: (N, B, 0.0),  # held 3: acts at 12
        13: (N, B, 0.0), 14: (N, B, 0.0),                   # still holding: no second entry
        20: (S, N, 1.0), 21: (N, S, 0.0), 22: (N, N, 0.0),  # the SELL run breaks before 3
        30: (S, N, 1.0), 31: (B, N, 1.0), 32: (N, B, 0.0), 33: (N, B, 0.0),  # a reversal restarts the count:
    }                                                                         # the BUY run 31..33 acts at 33 (a tranche)
    bot, res = run(script, {"confirm_candles": 3})
    assert [i for i, _ in entries(bot)] == [12, 33]
    assert res.path == "bar"
    recs = [s for s in bot._out.signals if s.acted]
    assert len(recs) == 2 and all("held 3 candles" in r.reason for r in recs)


def test_confirmed_signal_keeps_its_stop_distance():
    bot, res = run({10: (B, N, 1.0), 11: (N, B, 0.0)}, {"confirm_candles": 2}, stop_pct=2.0)
    (rec,) = [s for s in bot._out.signals if s.acted]
    assert rec.stop_loss == pytest.approx(rec.price * 0.98)


def test_temperature_sizes_in_bands_and_is_recorded():
    temp = {"confidence_weight": 1, "held_weight": 0, "accuracy_weight": 0, "stop_floor": None}
    script = {5: (B, N, 0.9), 8: (S, N, 0.6), 11: (B, N, 0.2), 14: (S, N, 0.9)}
    bot, res = run(script, {"temperature": temp})
    got = entries(bot)
    closes = {i: float(c) for i, c in enumerate(random_data(60, seed=3).closes)}
    want = [1000 / closes[5], 700 / closes[8], 300 / closes[11], 1000 / closes[14]]
    # the opposite signal first exits (its quantity is the position), then enters at its band's size
    assert [i for i, _ in got] == [5, 8, 11, 14]
    assert [q for _, q in got] == pytest.approx(want)
    assert [s.temperature for s in bot._out.signals] == pytest.approx([0.9, 0.6, 0.2, 0.9])
    assert [t.temperature for t in bot._out.trades] == pytest.approx([0.9, 0.6, 0.2])  # TradeRecords, as in Redis


def test_temperature_formula_reads_hold_and_accuracy():
    p = SignalPolicy(SignalPolicyConfig(temperature=TemperatureConfig()))
    # 0.5 * 0.8 + 0.2 * min(1, 2/5) + 0.3 * (2 winners of 3)
    assert p.temperature(0.8, 2, [1.0, -1.0, 2.0]) == pytest.approx((0.4 + 0.08 + 0.2) / 1.0)
    assert p.temperature(0.8, 2, []) == pytest.approx(0.4 + 0.08 + 0.15)  # no trades yet: accuracy 0.5


def test_stop_tightens_as_the_signal_cools():
    temp = {"confidence_weight": 0.5, "held_weight": 0.5, "accuracy_weight": 0, "hold_full": 2, "stop_floor": 0.5}
    closes = np.full(40, 100.0)
    script = {5: (B, N, 1.0), 6: (N, B, 0.0), 7: (N, B, 0.0), 8: (N, N, 0.0)}  # holds, then the bias is gone
    bot, res = run(script, {"temperature": temp}, stop_pct=2.0, n=40, closes=closes)
    pos = bot.position
    assert pos.is_open
    # entry at 100, stop distance 2; at 8 the run ended: T = 0.5 * 1 + 0.5 * 0 = 0.5 -> distance 2 * 0.75
    assert pos.stop_loss == pytest.approx(100.0 - 1.5)
    assert pos.temperature == pytest.approx(0.5)


def test_plain_policy_keeps_the_fast_path_equal_and_others_take_it_too():
    cfg = app([{"name": "m", "strategy": "momentum", "market": "futures", "max_hold_candles": 40,
                "params": {"window": 5, "threshold_pct": 0.2, "stop_loss_pct": 0.8},
                "signals": {"confirm_candles": 1}}])
    data = {"BTCUSDT": random_data(3000, seed=11)}
    model = FillModel()
    fast = run_bots([(build_backtest_bot(cfg.bots[0], cfg, model, "1m"), {})], data, model, "auto")[0]
    bar = run_bots([(build_backtest_bot(cfg.bots[0], cfg, model, "1m"), {})], data, model, "bar")[0]
    assert fast.path == "fast" and fast.trades == bar.trades and np.array_equal(fast.equity, bar.equity)
    for signals in ({"confirm_candles": 2}, {"temperature": {}}):
        c2 = app([{**cfg.bots[0].model_dump(include={"name", "strategy", "market", "params"}), "signals": signals}])
        b = build_backtest_bot(c2.bots[0], c2, model, "1m")
        # the fast path visits every evaluation of a run (tests/unit/test_backtest_fast_platform.py)
        assert choose_path(b, "auto") == "fast" and choose_path(b, "fast") == "fast"


def test_confirmation_on_a_built_in_uses_its_bias():
    """momentum's bias (ROC beyond the threshold): a confirmed run acts later than the plain bot, never
    on a cross whose ROC fell back at once."""
    data = {"BTCUSDT": random_data(3000, seed=5)}
    model = FillModel()
    res = {}
    for n in (1, 3):
        cfg = app([{"name": "m", "strategy": "momentum", "market": "futures", "max_tranches": 1,
                    "params": {"window": 5, "threshold_pct": 0.2}, "signals": {"confirm_candles": n}}])
        res[n] = run_bots([(build_backtest_bot(cfg.bots[0], cfg, model, "1m"), {})], data, model, "bar")[0]
    plain = {t for t, _, acted in res[1].signals if acted}
    confirmed = [t for t, _, acted in res[3].signals if acted]
    assert confirmed and len(confirmed) < len(plain)
    assert not set(confirmed) & plain  # each confirmed entry is 2 candles after its cross, never on it
    for t in confirmed:
        assert t - 2 * 60_000 in {t0 for t0, _, _ in res[1].signals}
    with pytest.raises(ValueError, match="size_bands"):
        SignalPolicyConfig.model_validate({"temperature": {"size_bands": [[0.5, 100], [0.2, 50]]}})
