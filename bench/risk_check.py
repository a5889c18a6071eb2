#!/usr/bin/env python3
"""Benchmark: the risk check's cost per order (µs), every limit switched on.

Reference (same process): building the Order the check is asked about, the cheapest thing the
order path does anyway. Numbers, not asserts: `python bench/risk_check.py`.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.types import Mode, Order, OrderPurpose, Position, Side, TradingState  # noqa: E402
from risk.engine import MarketStatus, PortfolioView, RiskContext, RiskEngine  # noqa: E402
from risk.limits import resolve  # noqa: E402

N = 200_000


def main() -> None:
    limits = resolve(Mode.LIVE)  # noon UTC below: outside the 22:00-02:00 blackout

    limits = limits.with_(max_orders_per_minute=None)  # keep every order on the full path
    engine = RiskEngine(limits)
    ctx = RiskContext(
        state=TradingState.ACTIVE, position=Position("BTCUSDT"), price=100.0, equity=1_000.0, quote_balance=1_000.0,
        now_ms=1_704_110_400_000, bot_exposure_value=0.0, last_entry_ms=None, high_water=1_000.0,
        day_open_equity=1_000.0, week_open_equity=1_000.0, stop_price=99.0,
        portfolio=PortfolioView(0.0, 0, ("ETHUSDT",)), market=MarketStatus(1_704_110_400_000, 2.0, 0, True, 0.0),
        correlation=lambda a, b: 0.5,
    )
    t = time.perf_counter()
    orders = [Order(f"id{i}", "b", "BTCUSDT", Side.BUY, 0.3, OrderPurpose.ENTRY) for i in range(N)]
    ref = (time.perf_counter() - t) / N * 1e6
    t = time.perf_counter()
    allowed = sum(engine.check(o, ctx).allowed for o in orders)
    per = (time.perf_counter() - t) / N * 1e6
    print(f"risk check, all live limits on, {N:,} entry orders ({allowed:,} allowed)")
    print(f"reference: build one Order = {ref:.2f} µs")
    print(f"risk check per order      = {per:.2f} µs  ({per / ref:.1f}x the reference)")


if __name__ == "__main__":
    main()
