"""Market regimes (strategy.regime): the rule classifies trend up / down, range and high volatility on
closed candles; regime_switch trades the strategy mapped to the regime, labels each signal and trade with it,
the bot sizes by regime, and the backtest report gives performance by regime."""
from __future__ import annotations

import numpy as np
import pytest

from backtest.engine import run_config
from backtest.fills import FillModel
from backtest.report import build_report, summary_text
from backtest_support import NO_LIMITS, T0, app, random_data
from core.types import Candle
from strategy.regime import RegimeConfig, classify
from strategy.registry import build_strategy


def series(closes: np.ndarray, spread: float = 0.001) -> list[Candle]:
    opens = np.concatenate(([closes[0]], closes[:-1]))
    return [Candle("BTCUSDT", T0 + 60_000 * i, o, max(o, c) * (1 + spread), min(o, c) * (1 - spread), c, 1.0)
            for i, (o, c) in enumerate(zip(opens, closes))]


def test_the_rule_on_shaped_markets():
    cfg = RegimeConfig()
    rng = np.random.default_rng(1)
    n = cfg.warmup + 50
    noise = rng.normal(0, 0.001, n)
    assert classify(series(100 * np.exp(np.cumsum(noise)))[: cfg.warmup - 1], cfg) is None  # warming up
    chop = np.zeros(n)  # mean-reverting: no direction lasts
    for i in range(1, n):
        chop[i] = 0.3 * chop[i - 1] + noise[i]
    calm = RegimeConfig(high_vol_pct=99.9)  # (the volatility rank of an ordinary candle is uniform: 10 % are >= 90)
    assert classify(series(100 * np.exp(chop)), calm) == "ranging"
    assert classify(series(100 * np.exp(np.cumsum(noise + 0.002))), calm) == "trending_up"
    assert classify(series(100 * np.exp(np.cumsum(noise - 0.002))), calm) == "trending_down"
    spike = noise.copy()
    spike[-3:] = [0.03, -0.04, 0.035]
    assert classify(series(100 * np.exp(np.cumsum(spike)), spread=0.01), cfg) == "high_volatility"


def test_regime_switch_params_are_checked():
    with pytest.raises(ValueError, match="unknown regime 'sideways'"):
        build_strategy("regime_switch", {"strategies": {"sideways": {"strategy": "momentum"}}})
    with pytest.raises(ValueError, match="strategies.ranging.params.threshold_pct: Input should be greater than 0"):
        build_strategy("regime_switch", {"strategies": {"ranging": {"strategy": "momentum",
                                                                    "params": {"threshold_pct": -1}}}})
    with pytest.raises(ValueError, match="cannot nest"):
        build_strategy("regime_switch", {"default": {"strategy": "regime_switch"}})


SWITCH = {"regime": {"vol_window": 100, "adx_trend": 20},
          "strategies": {"trending_up": {"strategy": "momentum", "params": {"window": 5, "threshold_pct": 0.3}},
                         "trending_down": {"strategy": "momentum", "params": {"window": 5, "threshold_pct": 0.3}},
                         "ranging": {"strategy": "rsi_reversion", "params": {"period": 7}}},
          "default": {"strategy": "sma_crossover", "params": {"fast": 3, "slow": 8}}}


def run(signals: dict | None = None):
    cfg = app([{"name": "rs", "strategy": "regime_switch", "params": SWITCH, "market": "futures", "max_tranches": 1,
                "sizing": {"kind": "fixed_quote", "value": 1000}, "risk": dict(NO_LIMITS),
                **({"signals": signals} if signals else {})}])
    data = random_data(4000, seed=9, vol=0.004)
    data.volumes[:] = 1e9  # no volume cap on the fills: quantities are the sizing's
    return run_config(cfg, {"BTCUSDT": data}, FillModel())[0], data


def test_regime_switch_trades_each_regime_with_its_strategy_and_reports_by_regime():
    res, data = run()
    assert res.path == "bar"
    regimes = {t.regime for t in res.trades}
    assert {"trending_up", "trending_down", "ranging"} <= regimes and "" not in regimes
    # each trade's regime is what the rule says at its entry candle, on the bot's own history window
    strat = build_strategy("regime_switch", SWITCH)
    candles = data.candles()
    index = {c.open_time + 60_000: i for i, c in enumerate(candles)}  # a bot's 'now' is its candle's close
    window = max(strat.lookback + 5, 50)
    for t in res.trades[:30]:
        i = index[t.entry_time]
        assert classify(candles[max(0, i + 1 - window): i + 1], strat.params.regime) == t.regime
    rep = build_report(res)
    assert sum(g["trades"] for g in rep["by_regime"].values()) == len(res.trades)
    assert rep["by_regime"]["ranging"]["pnl"] == pytest.approx(sum(t.pnl for t in res.trades if t.regime == "ranging"))
    assert "regime trending_up:" in summary_text(rep)


def test_regime_size_multiplier():
    plain, _ = run()
    half, _ = run({"regime_size": {"ranging": 50}})
    assert half.path == "bar"
    first = {t.entry_time: t for t in plain.trades}
    same = [(first[t.entry_time], t) for t in half.trades if t.entry_time in first]
    assert same
    for a, b in same:
        ratio = b.quantity / a.quantity
        assert ratio == pytest.approx(0.5 if a.regime == "ranging" else 1.0, rel=1e-3)
