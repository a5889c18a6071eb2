"""The fast path runs the strategy-platform features (issue 15) exactly as the bar path does: every exit kind
(ATR stop / take-profit, trailing percent / ATR, breakeven, scale-out targets), signal confirmation,
temperature (sizing bands and the cooling stop) and regime sizing give the same trades, signals, fees and
equity at every candle on both paths, on seeded random candles and on real Binance candles
(backtest.fast_visits says which candles the fast path visits for them)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from backtest.build import build_backtest_bot
from backtest.data import SymbolData
from backtest.engine import choose_path, run_bots
from backtest.fills import FillModel
from backtest_support import BTC_1H, app, random_data, shared_data

SMA = {"strategy": "sma_crossover", "params": {"fast": 4, "slow": 12, "stop_loss_pct": 0.6, "take_profit_pct": 1.5}}
MOMENTUM = {"strategy": "momentum", "params": {"window": 5, "threshold_pct": 0.2, "stop_loss_pct": 0.8}}
TEMP = {"confidence_weight": 0.5, "held_weight": 0.3, "accuracy_weight": 0.2, "hold_full": 4,
        "accuracy_trades": 5, "stop_floor": 0.4}


def both(bot: dict[str, Any], data: SymbolData, model: FillModel | None = None, **paper: Any):
    """The same bot config run on the fast and on the bar path; asserts they are equal, returns the fast one."""
    model = model or FillModel(slippage_bps=2)
    cfg = app([{"name": "p", "market": "futures", "sizing": {"kind": "percent_equity", "value": 30}, **bot}],
              starting_balance=10_000.0, **paper)
    out = {}
    for path in ("fast", "bar"):
        b = build_backtest_bot(cfg.bots[0], cfg, model, data.interval)
        out[path] = run_bots([(b, {})], {data.symbol: data}, model, path)[0]
    fast, bar = out["fast"], out["bar"]
    assert fast.path == "fast" and bar.path == "bar"
    assert fast.trades == bar.trades
    assert fast.signals == bar.signals
    assert np.array_equal(fast.equity, bar.equity)
    assert fast.fees_paid == bar.fees_paid and fast.denials == bar.denials
    assert (fast.open_quantity, fast.open_entry) == (bar.open_quantity, bar.open_entry)
    return fast


def reasons(res) -> set[str]:  # type: ignore[no-untyped-def]
    return {t.exit_reason for t in res.trades}


EXITS = [
    pytest.param({"stop_atr": 1.5, "take_atr": 3.0}, {"stop_loss", "take_profit"}, id="atr_levels"),
    pytest.param({"trailing_pct": 0.5}, {"trailing_stop"}, id="trailing_pct"),
    pytest.param({"stop_atr": 2.0, "trailing_atr": 1.5}, {"trailing_stop"}, id="trailing_atr"),
    pytest.param({"breakeven_at_r": 0.5}, {"breakeven_stop"}, id="breakeven"),
    pytest.param({"targets": [[0.5, 30], [1.0, 50]]}, {"take_profit_1", "take_profit_2"}, id="scale_out"),
    pytest.param({"stop_atr": 1.0, "targets": [[1.0, 40]], "breakeven_at_r": 0.8, "trailing_atr": 2.0},
                 {"take_profit_1", "breakeven_stop"}, id="all"),
]


@pytest.mark.parametrize(("exits", "seen"), EXITS)
def test_each_exit_kind_equal_on_random_candles(exits: dict[str, Any], seen: set[str]) -> None:
    res = both({**SMA, "exits": exits, "max_tranches": 1, "max_hold_candles": 60}, random_data(4000, seed=21))
    assert len(res.trades) > 40
    assert seen <= reasons(res), reasons(res)


@pytest.mark.parametrize("fill_at", ["close", "next_open"])
@pytest.mark.parametrize("intrabar", ["stop_first", "take_first", "ohlc"])
def test_exits_with_fill_models(fill_at: str, intrabar: str) -> None:
    """Every fill rule of the model (partial fills under the volume cap included)."""
    model = FillModel(policy="realistic", fill_at=fill_at, intrabar=intrabar, slippage_bps=3, max_volume_pct=50.0)
    for exits in ({"stop_atr": 1.5, "take_atr": 2.0}, {"trailing_pct": 0.4, "targets": [[1.0, 50]]}):
        res = both({**MOMENTUM, "exits": exits, "max_tranches": 1}, random_data(3000, seed=4), model)
        assert len(res.trades) > 20


@pytest.mark.parametrize("n", [2, 3, 5])
@pytest.mark.parametrize("strategy", [SMA, MOMENTUM], ids=["sma", "momentum"])
def test_confirmation_equal(n: int, strategy: dict[str, Any]) -> None:
    res = both({**strategy, "max_tranches": 2, "signals": {"confirm_candles": n}}, random_data(4000, seed=8))
    acted = [t for t, _, a in res.signals if a]
    assert len(acted) > 20
    # confirmed entries act on candles where the vectorised signals have none (the run's bias held)
    vector = {t for t, _, _ in both({**strategy, "max_tranches": 2}, random_data(4000, seed=8)).signals}
    assert set(acted) - vector


def test_temperature_sizes_and_tightens_equal() -> None:
    res = both({**MOMENTUM, "max_tranches": 2, "signals": {"temperature": TEMP}}, random_data(4000, seed=12))
    temps = {t.temperature for t in res.trades}
    assert len(res.trades) > 30 and len(temps) > 3  # the bands and the cooling moved
    assert "stop_loss" in reasons(res)


def test_confirmation_temperature_regime_size_and_exits_together() -> None:
    bot = {**SMA, "max_hold_candles": 80, "max_tranches": 1,
           "signals": {"confirm_candles": 2, "temperature": TEMP, "regime_size": {"high_volatility": 50}},
           "exits": {"stop_atr": 2.0, "trailing_atr": 1.0, "breakeven_at_r": 1.0, "targets": [[1.5, 40]]}}
    res = both(bot, random_data(5000, seed=30))
    assert len(res.trades) > 30
    assert {"trailing_stop", "take_profit_1"} <= reasons(res)


def test_funding_and_equity_limits_with_platform_features() -> None:
    """The other fast-path events (funding times, the risk monitor's equity limits) with visits in between."""
    bot = {**MOMENTUM, "max_tranches": 1, "signals": {"confirm_candles": 2}, "exits": {"trailing_pct": 0.6},
           "risk": {"max_position_pct": 100, "min_notional": 0, "max_orders_per_minute": None,
                    "max_loss_per_trade_pct": None, "daily_loss_pct": 3.0, "max_drawdown_pct": None}}
    res = both(bot, random_data(6000, seed=17, vol=0.004), funding_rate_pct=0.01)
    assert res.trades


def test_auto_takes_the_fast_path_and_regime_switch_is_refused_with_its_reason() -> None:
    cfg = app([{"name": "p", **SMA, "max_tranches": 1, "signals": {"confirm_candles": 3, "temperature": {}},
                "exits": {"trailing_pct": 1.0, "targets": [[1.0, 50]]}},
               {"name": "r", "strategy": "regime_switch", "signals": {"regime_size": {"ranging": 50}}}])
    model = FillModel()
    plat, regime = (build_backtest_bot(b, cfg, model, "1m") for b in cfg.bots)
    assert choose_path(plat, "auto") == "fast" and choose_path(plat, "fast") == "fast"
    assert choose_path(regime, "auto") == "bar"
    with pytest.raises(ValueError, match="regime_switch: no exact vectorised signals"):
        choose_path(regime, "fast")


REAL = [
    pytest.param({**SMA, "exits": {"stop_atr": 2.0, "trailing_atr": 2.0, "targets": [[1.0, 30], [2.0, 30]]}},
                 id="exits"),
    pytest.param({**SMA, "exits": {"stop_atr": 1.5, "take_atr": 4.0}}, id="atr_levels"),
    pytest.param({**MOMENTUM, "signals": {"confirm_candles": 3, "temperature": TEMP},
                  "exits": {"breakeven_at_r": 1.0, "trailing_pct": 2.0}}, id="policy_and_exits"),
]


@pytest.mark.parametrize("bot", REAL)
def test_real_candles(bot: dict[str, Any]) -> None:
    data = shared_data(BTC_1H)  # skips with the reason when /work/shared/data/market is absent
    data = data.head(6000)
    sma = {**bot, "params": {**bot["params"], "fast": 10, "slow": 30}} if bot["strategy"] == "sma_crossover" \
        else {**bot, "params": {**bot["params"], "window": 12, "threshold_pct": 1.0, "stop_loss_pct": 3.0}}
    res = both({**sma, "max_tranches": 1}, data, funding_rate_pct=0.01)
    assert len(res.trades) > 20
