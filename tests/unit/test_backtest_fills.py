"""Fill policies on hand-made candles: triggers, prices, intrabar order, fees, volume, next open."""
from __future__ import annotations

import pytest

from backtest.fills import BacktestExecutor, FillModel
from core.types import Candle, Order, OrderPurpose, OrderStatus, OrderType, Side

T = 1_704_067_200_000


def c(o: float, h: float, lo: float, cl: float, v: float = 100.0, i: int = 0) -> Candle:
    return Candle("BTCUSDT", T + i * 60_000, o, h, lo, cl, v, "1m")


@pytest.mark.parametrize("policy,expect", [("optimistic", True), ("realistic", False), ("pessimistic", False)])
def test_take_profit_touch_vs_trade_through(policy, expect):
    hit = FillModel(policy=policy).exit_check(c(100, 110, 99, 105), True, None, 110.0)
    assert (hit is not None) == expect
    if hit:
        assert hit == ("take_profit", 110.0, OrderType.LIMIT)


def test_pessimistic_needs_one_tick_through_and_stop_fills_at_the_low():
    m = FillModel(policy="pessimistic", tick_size=0.5)
    assert m.exit_check(c(100, 110.4, 99, 105), True, None, 110.0) is None
    assert m.exit_check(c(100, 110.5, 99, 105), True, None, 110.0) == ("take_profit", 110.0, OrderType.LIMIT)
    assert m.exit_check(c(100, 101, 90, 95), True, 95.0, None) == ("stop_loss", 90.0, OrderType.MARKET)
    # realistic fills the stop at its level, a gap at the open
    r = FillModel(policy="realistic")
    assert r.exit_check(c(100, 101, 90, 95), True, 95.0, None)[1] == 95.0
    assert r.exit_check(c(93, 94, 90, 92), True, 95.0, None)[1] == 93.0
    # short mirror
    assert r.exit_check(c(100, 106, 99, 101), False, 105.0, None) == ("stop_loss", 105.0, OrderType.MARKET)


@pytest.mark.parametrize("intrabar,bullish,reason", [
    ("stop_first", True, "stop_loss"), ("take_first", True, "take_profit"),
    ("ohlc", True, "stop_loss"),   # bullish: open -> low -> high: the long's stop first
    ("ohlc", False, "take_profit"),  # bearish: open -> high -> low: the take first
])
def test_both_levels_inside_one_candle(intrabar, bullish, reason):
    candle = c(100, 112, 88, 105 if bullish else 95)
    hit = FillModel(policy="optimistic", intrabar=intrabar).exit_check(candle, True, 90.0, 110.0)
    assert hit is not None and hit[0] == reason


def test_gap_through_a_level_is_first_whatever_the_intrabar_order():
    hit = FillModel(intrabar="take_first").exit_check(c(85, 115, 84, 100), True, 90.0, 110.0)
    assert hit == ("stop_loss", 85.0, OrderType.MARKET)


def test_trigger_mask_matches_exit_check():
    import numpy as np

    rng = np.random.default_rng(0)
    for policy in ("optimistic", "realistic", "pessimistic"):
        m = FillModel(policy=policy)
        for _ in range(300):
            o = 100.0
            h, lo = o + rng.choice([0, 1, 2, 2.0001, 2.05]), o - rng.choice([0, 1, 2, 3])
            cl = rng.uniform(lo, h)
            long = bool(rng.integers(2))
            stop = rng.choice([None, 98.0, 102.0])
            take = rng.choice([None, 102.0, 98.0])
            stop = None if stop is None else float(stop)
            take = None if take is None else float(take)
            mask = m.trigger_mask(long, stop, take, np.array([h]), np.array([lo]))
            assert bool(mask[0]) == (m.exit_check(c(o, h, lo, cl), long, stop, take) is not None)


def order(side=Side.BUY, qty=1.0, reason="sig", kind=OrderType.MARKET, purpose=OrderPurpose.ENTRY) -> Order:
    return Order("id", "b", "BTCUSDT", side, qty, purpose, order_type=kind, reason=reason)


class Series:
    def __init__(self, candles):
        import numpy as np

        self.c = candles
        self.times = np.array([x.open_time for x in candles])
        self.opens = np.array([x.open for x in candles])
        self.volumes = np.array([x.volume for x in candles])

    def __len__(self):
        return len(self.c)

    def candle(self, i):
        return self.c[i]


def test_executor_fees_slippage_next_open_and_expiry():
    bars = [c(100, 101, 99, 100.5, i=0), c(102, 103, 101, 102.5, i=1)]
    exe = BacktestExecutor(FillModel(fill_at="next_open", slippage_bps=10, taker_fee_pct=0.1, maker_fee_pct=0.02,
                                     latency_ms=50, max_volume_pct=None))
    exe.at(bars[0], Series(bars), 0)
    f = exe.execute(order(), 100.5, T + 60_000)[0]
    assert f.price == pytest.approx(102 * 1.001) and f.time == T + 60_000 + 50
    assert f.fee == pytest.approx(f.price * 0.001)
    tp = exe.execute(order(Side.SELL, kind=OrderType.LIMIT, reason="take_profit"), 101.0, T + 60_000)[0]
    assert tp.price == 101.0 and tp.fee == pytest.approx(101.0 * 0.0002)  # maker, no slippage
    stop = exe.execute(order(Side.SELL, reason="stop_loss"), 99.0, T + 60_000)[0]
    assert stop.price == pytest.approx(99.0 * 0.999)  # inside the candle, not at the next open
    exe.at(bars[1], Series(bars), 1)
    o = order()
    assert exe.execute(o, 102.5, T + 120_000) == [] and o.status is OrderStatus.EXPIRED


def test_realistic_partial_fill_is_capped_by_volume():
    exe = BacktestExecutor(FillModel(policy="realistic", max_volume_pct=10.0))
    exe.at(c(100, 101, 99, 100, v=50.0))
    o = order(qty=20.0)
    f = exe.execute(o, 100.0, T)[0]
    assert f.quantity == 5.0 and o.status is OrderStatus.PARTIALLY_FILLED
    assert BacktestExecutor(FillModel(policy="optimistic")).execute(order(qty=20.0), 100.0, T)[0].quantity == 20.0


def test_bad_model_values_are_refused():
    with pytest.raises(ValueError, match="fill policy"):
        FillModel(policy="magic")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FillModel(slippage_bps=-1)
