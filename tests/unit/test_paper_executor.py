"""PaperExecutor: slippage always hurts, fee = qty * fill price * fee_pct / 100."""
from __future__ import annotations

import pytest

from core.types import Mode, Order, OrderPurpose, OrderStatus, Side
from executors.ghost import GhostExecutor
from executors.paper import PaperExecutor


def order(side: Side, qty: float = 2.0) -> Order:
    return Order("cid-1", "b1", "BTCUSDT", side, qty, OrderPurpose.ENTRY)


def test_buy_pays_more_and_fee_on_fill_price() -> None:
    ex = PaperExecutor(fee_pct=0.1, slippage_bps=2.0)
    o = order(Side.BUY, 2.0)
    fills = ex.execute(o, 100.0, 123)
    assert len(fills) == 1
    f = fills[0]
    # 2 bps = 0.0002: 100 * 1.0002 = 100.02
    assert f.price == pytest.approx(100.02)
    # fee = 2 * 100.02 * 0.1 / 100 = 0.20004
    assert f.fee == pytest.approx(0.20004)
    assert (f.side, f.quantity, f.time, f.fee_asset) == (Side.BUY, 2.0, 123, "USDT")
    assert (f.client_order_id, f.bot, f.symbol) == ("cid-1", "b1", "BTCUSDT")
    assert o.status is OrderStatus.FILLED


def test_sell_receives_less() -> None:
    ex = PaperExecutor(fee_pct=0.1, slippage_bps=5.0)
    f = ex.execute(order(Side.SELL, 3.0), 200.0, 0)[0]
    # 5 bps: 200 * (1 - 0.0005) = 199.9
    assert f.price == pytest.approx(199.9)
    # fee = 3 * 199.9 * 0.001 = 0.5997
    assert f.fee == pytest.approx(0.5997)


def test_slippage_direction_and_volume_cap_of_the_shared_model() -> None:
    """Paper prices through the backtest's FillModel: slippage hurts both ways; with a candle to read, the
    realistic policy caps a market order at max_volume_pct of its volume (the rest expires, IOC)."""
    from core.types import Candle
    from executors.fills import FillModel

    ex = PaperExecutor(slippage_bps=10.0)
    assert ex.execute(order(Side.BUY), 50.0, 0)[0].price == pytest.approx(50.05)  # 50 * 1.001
    assert ex.execute(order(Side.SELL), 50.0, 0)[0].price == pytest.approx(49.95)  # 50 * 0.999
    bar = Candle("BTCUSDT", 0, 50.0, 51.0, 49.0, 50.0, 10.0)  # 10 % of 10 = 1 base unit may trade
    capped = PaperExecutor(model=FillModel(max_volume_pct=10.0, latency_ms=250), bar_of=lambda s: bar)
    o = order(Side.BUY, 2.0)
    f = capped.execute(o, 50.0, 1000)[0]
    assert (f.quantity, f.time, o.status) == (pytest.approx(1.0), 1250, OrderStatus.PARTIALLY_FILLED)


def test_zero_slippage_and_zero_fee() -> None:
    ex = PaperExecutor(fee_pct=0.0, slippage_bps=0.0)
    f = ex.execute(order(Side.BUY), 123.45, 0)[0]
    assert f.price == 123.45 and f.fee == 0.0


def test_mode_and_quote_asset() -> None:
    ex = PaperExecutor(quote_asset="FDUSD")
    assert ex.mode is Mode.PAPER
    assert ex.execute(order(Side.BUY), 10.0, 0)[0].fee_asset == "FDUSD"


def test_ghost_fills_at_reference_without_cost() -> None:
    ex = GhostExecutor()
    f = ex.execute(order(Side.SELL, 1.5), 99.0, 7)[0]
    assert (f.price, f.fee, f.quantity) == (99.0, 0.0, 1.5)
    assert ex.mode is Mode.GHOST
