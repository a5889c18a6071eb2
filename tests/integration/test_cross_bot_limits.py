"""Cross-bot limits bind DCA bots exactly as they bind signal bots, in the worker.

One worker, real Redis. A DCA bot on BTCUSDT opens a position first; then a newcomer on ETHUSDT —
a signal bot (an SMA crossover that crosses up on the last candle) or a DCA bot (starts asap) —
wants to enter, with one cross-bot limit set. The risk check of both kinds of newcomer must see
the same cross-bot view (the mode's exposure and open positions, correlations, market health) and
refuse with the same rule. Before the shared bookkeeping (engine/ledger.py) a DCA bot's check got
an empty portfolio view, default market health and no correlation, so these limits never applied
to DCA bots.
"""
from __future__ import annotations

import math

import pytest

from core.clock import SimClock
from core.types import INTERVAL_MS, Candle
from engine.worker import Worker
from market.feed import ReplayFeed
from settings import AppConfig
from state import keys
from state.models import RiskDecisionRecord

T0 = 1_704_067_200_000
M = INTERVAL_MS["1m"]
N = 45  # candles: more than the 30 returns the correlation rule needs
OFF = {"max_position_pct": 100, "max_loss_per_trade_pct": None, "daily_loss_pct": None, "max_drawdown_pct": None,
       "max_orders_per_minute": None}
DCA = {"base_order": 100, "safety_order": 100, "deviation_pct": 5, "max_safety_orders": 0, "take_profit_pct": 50,
       "cooldown_s": 86_400}


def closes() -> list[float]:
    """A falling walk with uneven steps (returns that vary, so correlations are defined; SMA(2) stays
    below SMA(3)), flat for three candles, then up: the only cross above is on the last candle."""
    walk = [100.0]
    for i in range(N - 5):
        walk.append(walk[-1] * (1 - 0.003 - 0.002 * (1 + math.sin(i * 1.7))))
    return walk + [walk[-1]] * 3 + [walk[-1] * 1.01]


def series(symbol: str, scale: float) -> list[Candle]:
    return [Candle(symbol, T0 + i * M, c * scale, c * scale, c * scale, c * scale, 10.0) for i, c in enumerate(closes())]


def newcomer(kind: str, limits: dict[str, object]) -> dict[str, object]:
    risk = {**OFF, **limits}
    if kind == "dca":
        return {"name": "new", "mode": "paper", "kind": "dca", "symbol": "ETHUSDT",
                "dca": {**DCA, "start_condition": "signal"}, "strategy": "sma_crossover",
                "params": {"fast": 2, "slow": 3}, "risk": risk}
    return {"name": "new", "mode": "paper", "symbol": "ETHUSDT", "strategy": "sma_crossover",
            "params": {"fast": 2, "slow": 3}, "sizing": {"kind": "fixed_quote", "value": 100}, "risk": risk}


def run(r, kind: str, limits: dict[str, object], stale: bool = False) -> list[RiskDecisionRecord]:  # type: ignore[no-untyped-def]
    app = AppConfig(market={"symbols": ["BTCUSDT", "ETHUSDT"], "warmup_candles": 0},
                    paper={"fee_pct": 0.0, "slippage_bps": 0},
                    bots=[{"name": "holder", "mode": "paper", "kind": "dca", "symbol": "BTCUSDT", "dca": DCA,
                           "risk": OFF}, newcomer(kind, limits)])
    feed = ReplayFeed([])
    w = Worker(app, r, feed, clock=SimClock(T0))
    w.start()
    for btc, eth in zip(series("BTCUSDT", 1.0), series("ETHUSDT", 0.05)):
        feed.stale = stale  # type: ignore[attr-defined]  # the market-data stream's alarm, as the feed raises it
        w.step([btc, eth])
    assert w.bots["holder"].portfolio.position("BTCUSDT").is_open, "the holder must hold a position first"
    raw = r.xrange(keys.risk_decisions("new"))
    return [RiskDecisionRecord.model_validate_json(f[b"data"] if b"data" in f else f["data"]) for _, f in raw]


CASES = [
    ("max_mode_exposure", {"max_mode_exposure_value": 150.0}, False),
    ("max_concurrent_positions", {"max_concurrent_positions": 1}, False),
    ("correlation", {"max_correlation": 0.5}, False),
    ("stream_down", {"require_market_stream": True}, True),
]


@pytest.mark.parametrize("rule,limits,stale", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("kind", ["signal", "dca"])
def test_a_cross_bot_limit_refuses_a_dca_entry_as_it_refuses_a_signal_entry(r, kind: str, rule: str,  # type: ignore[no-untyped-def]
                                                                             limits: dict[str, object],
                                                                             stale: bool) -> None:
    decisions = run(r, kind, limits, stale)
    entries = [d for d in decisions if d.purpose == "ENTRY"]
    assert entries, f"the {kind} newcomer never tried to enter"
    assert all(not d.allowed for d in entries), [d.detail for d in entries if d.allowed]
    assert {d.rule for d in entries} == {rule}, [d.detail for d in entries]


@pytest.mark.parametrize("kind", ["signal", "dca"])
def test_without_the_limit_both_enter(r, kind: str) -> None:  # type: ignore[no-untyped-def]
    """The control: the same scenario with no cross-bot limit lets either newcomer in."""
    decisions = run(r, kind, {})
    assert any(d.allowed and d.purpose == "ENTRY" for d in decisions)
