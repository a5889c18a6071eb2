"""A DCA backtest has the paper DCA bot's risk monitor: a drawdown or daily-loss breach moves its
trading state (drawdown: flatten, then HALTED; daily loss: PAUSED) and it opens no deal after it,
while the same bot without the limit keeps opening deals over the same candles."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from backtest.build import build_backtest_bot
from backtest.dca import build_dca_backtest_bot
from backtest.result import BacktestControl
from backtest.data import SymbolData
from backtest.engine import run_config
from backtest.fills import FillModel
from backtest_support import NO_LIMITS, T0
from settings import AppConfig

M = 60_000
MODEL = FillModel(taker_fee_pct=0.1, maker_fee_pct=0.05, slippage_bps=0.0)
# BO 2000 USDT; SO1 2000 at -2 %, SO2 2000 at -4 %; TP 2 % over the average; no cooldown.
DCA = {"base_order": 2000, "safety_order": 2000, "deviation_pct": 2, "step_scale": 1, "volume_scale": 1,
       "max_safety_orders": 2, "active_safety_orders": 2, "take_profit_pct": 2, "cooldown_s": 0}
DIP = [
    (100.0, 100.0, 100.0, 100.0),  # base order at 100
    (100.0, 100.0, 97.5, 98.0),    # SO1 (98)
    (98.0, 98.0, 95.0, 95.0),      # SO2 (96); ~6000 held marked at 95: about -1.8 % of 10,000
    (95.0, 101.0, 95.0, 100.0),    # back up through the take-profit (~99.9); a new deal at the close
]
CYCLE = [(100.0, 103.0, 100.0, 100.0)]  # through the last deal's take-profit (102), a new deal at the close
CYCLES = 20


def candles() -> SymbolData:
    rows = DIP + CYCLE * CYCLES
    a = np.array(rows, dtype=np.float64)
    times = T0 + M * np.arange(len(rows), dtype=np.int64)
    return SymbolData("BTCUSDT", "1m", times, *(a[:, k].copy() for k in range(4)), np.full(len(rows), 1e6))


def make_app(**risk: Any) -> AppConfig:
    bot = {"name": "d", "mode": "paper", "kind": "dca", "symbol": "BTCUSDT", "dca": DCA,
           "risk": {**NO_LIMITS, **risk}}
    return AppConfig(market={"symbols": ["BTCUSDT"], "interval": "1m"},
                     paper={"fee_pct": 0.1, "slippage_bps": 0, "starting_balance": 10_000.0}, bots=[bot])


def run(**risk: Any):  # type: ignore[no-untyped-def]
    (res,) = run_config(make_app(**risk), {"BTCUSDT": candles()}, MODEL, ["d"])
    return res


@pytest.mark.parametrize(("risk", "rule", "state", "flattened"), [
    ({"max_drawdown_pct": 1.0}, "max_drawdown", "HALTED", True),
    ({"daily_loss_pct": 1.0}, "daily_loss", "PAUSED", False),
])
def test_a_loss_limit_stops_a_dca_backtest_opening_deals(risk: dict[str, float], rule: str, state: str,
                                                         flattened: bool) -> None:
    free, limited = run(), run(**risk)
    # without the limit: the dip deal, the one after it, then one deal per cycle
    assert free.trading_state == "ACTIVE" and not free.risk_events
    assert len(free.deals) == 2 + CYCLES
    # with it: the breach on the dip's third candle (the close at 95), then no new deal
    (event,) = limited.risk_events
    assert (event.rule, event.state, event.flattened) == (rule, state, flattened)
    assert event.time == T0 + 3 * M
    assert limited.trading_state == state
    (deal,) = limited.deals
    assert deal.opened_at < event.time
    assert all(t.entry_time < event.time for t in limited.trades)
    if flattened:  # the drawdown rule closed the deal at the breach
        assert deal.status != "OPEN" and deal.closed_at == event.time
    assert limited.equity[-1] != free.equity[-1]


def test_dca_and_signal_bots_share_one_builder() -> None:
    """Both get a monitor (its breaches settled by their BacktestControl) when a limit is set, and none without."""
    app = make_app(max_drawdown_pct=5.0)
    sig = AppConfig(market={"symbols": ["BTCUSDT"]}, bots=[{
        "name": "s", "mode": "paper", "symbol": "BTCUSDT", "strategy": "sma_crossover",
        "params": {"fast": 5, "slow": 20}, "risk": {**NO_LIMITS, "max_drawdown_pct": 5.0}}])
    dca_bot = build_dca_backtest_bot(app.bots[0], app, MODEL, "1m")
    sig_bot = build_backtest_bot(sig.bots[0], sig, MODEL, "1m")
    for bot in (dca_bot, sig_bot):
        assert bot.monitor is not None and isinstance(bot.control_sim, BacktestControl)  # type: ignore[union-attr]
    plain = build_dca_backtest_bot(make_app().bots[0], make_app(), MODEL, "1m")
    assert plain.monitor is None
