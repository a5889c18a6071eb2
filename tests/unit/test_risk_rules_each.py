"""Every pre-trade rule of the risk engine, tripped once, with the numbers in its explanation
(the rules the older engine tests do not cover; the monitor's rules have replay tests)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from core.types import Order, OrderPurpose, Position, Side, TradingState
from risk.engine import MarketStatus, PortfolioView, RiskContext, RiskEngine
from risk.limits import RiskLimits

T_NOON = 1_704_110_400_000  # 2024-01-01 12:00 UTC
OPEN = RiskLimits(max_orders_per_minute=None, min_notional=1.0)


def ctx(**kw: object) -> RiskContext:
    base = RiskContext(TradingState.ACTIVE, Position("BTCUSDT"), 100.0, 10_000.0, 10_000.0, T_NOON)
    return replace(base, **kw)  # type: ignore[arg-type]


def buy(qty: float = 1.0, symbol: str = "BTCUSDT") -> Order:
    return Order("x", "b", symbol, Side.BUY, qty, OrderPurpose.ENTRY)


CASES = [
    ("symbol_whitelist", {"symbol_whitelist": ("ETHUSDT",)}, {}, "BTCUSDT not in ['ETHUSDT']"),
    ("blackout_hours", {"blackout_hours_utc": (11, 13)}, {}, "entries are off 11:00-13:00 UTC"),
    ("blackout_hours", {"blackout_hours_utc": (22, 13)}, {}, "entries are off 22:00-13:00 UTC"),  # wraps midnight
    ("stale_price", {"max_price_age_s": 10.0}, {"market": MarketStatus(price_age_s=30.0)},
     "last price 30.0 s old > 10 s"),
    ("wide_spread", {"max_spread_bps": 20.0}, {"market": MarketStatus(spread_bps=35.0)}, "spread 35.0 bps > 20 bps"),
    ("api_errors", {"max_api_errors_per_minute": 3}, {"market": MarketStatus(api_errors_last_minute=4)},
     "4 API errors in the last minute > 3"),
    ("stream_down", {"require_market_stream": True}, {"market": MarketStatus(stream_up=False)},
     "market data stream is down"),
    ("reconciliation_drift", {"max_reconciliation_drift_pct": 1.0},
     {"market": MarketStatus(reconciliation_drift_pct=100.0)}, "drift 100.00% > 1%"),
    ("daily_loss", {"daily_loss_value": 25.0}, {"day_open_equity": 10_030.0}, "today's loss 30.00"),
    ("weekly_loss", {"weekly_loss_pct": 1.0}, {"week_open_equity": 10_200.0}, "this week's loss 200.00"),
    ("max_drawdown", {"max_drawdown_pct": 5.0}, {"high_water": 10_600.0}, "drawdown 5.66% >= 5%"),
    ("consecutive_losses", {"max_consecutive_losses": 3}, {"consecutive_losses": 3}, "3 losses in a row >= 3"),
    ("max_leverage", {"max_leverage": 1.0}, {"leverage": 3.0}, "leverage 3x > 1x"),
    ("max_position_value", {"max_position_value": 50.0}, {}, "position value 100.00 > 50.00"),
    ("max_bot_exposure", {"max_bot_exposure_pct": 1.0}, {"bot_exposure_value": 50.0},
     "bot exposure 150.00 > 1% of equity 10000.00"),
    ("max_mode_exposure", {"max_mode_exposure_value": 100.0}, {"portfolio": PortfolioView(50.0, 1, ("ETHUSDT",))},
     "mode exposure 150.00 > 100.00"),
    ("max_concurrent_positions", {"max_concurrent_positions": 2}, {"portfolio": PortfolioView(0.0, 2, ())},
     "2 positions open >= 2"),
    ("max_loss_per_trade", {"max_loss_per_trade_value": 5.0}, {"stop_price": 90.0}, "worst case 10.20 (stop 90)"),
    ("max_loss_per_trade", {"max_loss_per_trade_pct": 0.5}, {}, "(no stop: whole notional)"),
    ("min_entry_interval", {"min_entry_interval_s": 60.0}, {"last_entry_ms": T_NOON - 20_000},
     "20 s since the last entry < 60 s"),
    ("liquidation_buffer", {"max_leverage": 10.0}, {"leverage": 10.0, "stop_price": 91.0}, "of the way to liquidation"),
    ("margin_utilization", {"max_leverage": 10.0, "max_margin_utilization_pct": 50.0},
     {"leverage": 10.0, "margin_used": 4_000.0, "margin_balance": 8_000.0}, "margin use would be 50.1%"),
    ("correlation", {"max_correlation": 0.8},
     {"portfolio": PortfolioView(0.0, 1, ("ETHUSDT",)), "correlation": lambda a, b: 0.93},
     "return correlation with open ETHUSDT 0.93 > 0.8"),
]


@pytest.mark.parametrize("rule,limits,context,detail", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_rule_trips_with_its_numbers(rule: str, limits: dict, context: dict, detail: str) -> None:
    d = RiskEngine(OPEN.with_(**limits)).check(buy(), ctx(**context))
    assert not d.allowed and d.rule == rule, d
    assert detail in d.detail, d.detail


def test_exits_are_never_blocked_by_loss_exposure_or_market_rules() -> None:
    tight = OPEN.with_(daily_loss_value=1.0, max_position_value=1.0, require_market_stream=True,
                      max_orders_per_minute=1, symbol_whitelist=("ETHUSDT",), blackout_hours_utc=(0, 23))
    sell = Order("x", "b", "BTCUSDT", Side.SELL, 1.0, OrderPurpose.EXIT)
    c = ctx(position=Position("BTCUSDT", 1.0, 100.0), day_open_equity=20_000.0,
            market=MarketStatus(stream_up=False), state=TradingState.REDUCE_ONLY)
    assert RiskEngine(tight).check(sell, c).allowed
