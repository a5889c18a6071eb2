"""Built-in strategies on hand-made series, plus params validation and the registry."""
from __future__ import annotations

import math
from collections import deque
from typing import Any, Sequence

import numpy as np
import pytest
from pydantic import ValidationError

from core.types import INTERVAL_MS, Candle, Side, Signal
from strategy import STRATEGIES, Strategy, build_strategy, history_needed, params_model, strategy_names
from strategy.base import exit_prices
from strategy.crossover import CrossoverParams, CrossoverStrategy, EmaCrossoverParams
from strategy.momentum import MomentumParams, MomentumStrategy
from strategy.rsi_reversion import RsiReversionParams, RsiReversionStrategy

T0 = 1_704_067_200_000  # 2024-01-01T00:00Z


def make_candles(closes: Sequence[float], interval: str = "1h") -> list[Candle]:
    out: list[Candle] = []
    prev = closes[0]
    for i, c in enumerate(closes):
        o = prev
        out.append(Candle("BTCUSDT", T0 + i * INTERVAL_MS[interval], o, max(o, c) * 1.001,
                          min(o, c) * 0.999, c, 1.0, interval))
        prev = c
    return out


def signals_per_candle(strategy: Strategy, candles: list[Candle]) -> list[Signal]:
    """What a replay loop would see: evaluate on each prefix of closed candles."""
    return [strategy.evaluate(candles[: i + 1]) for i in range(len(candles))]


def sides(signals: list[Signal]) -> dict[int, Side]:
    return {i: s.side for i, s in enumerate(signals) if s.side is not Side.NONE}


def random_walk(n: int, seed: int = 3) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(100 * np.exp(np.cumsum(rng.normal(0, 0.02, n))))


# --------------------------------------------------------------------------- SMA crossover

# fast SMA(2) / slow SMA(4):
# idx   close  SMA2   SMA4    fast-slow
#  3     11    11.5   12.5    -1
#  4     10    10.5   11.5    -1
#  5      9     9.5   10.5    -1
#  6     10     9.5   10.0    -0.5
#  7     12    11.0   10.25   +0.75   <- crossed above: BUY
#  8     14    13.0   11.25   +1.75
#  9     15    14.5   12.75   +1.75
# 10     13    14.0   13.5    +0.5
# 11     11    12.0   13.25   -1.25   <- crossed below: SELL
# 12      9    10.0   12.0    -2
SMA_CLOSES = [14, 13, 12, 11, 10, 9, 10, 12, 14, 15, 13, 11, 9]


def test_sma_crossover_buy_exactly_once_on_crossing_candle() -> None:
    s = build_strategy("sma_crossover", {"fast": 2, "slow": 4})
    sigs = signals_per_candle(s, make_candles(SMA_CLOSES[:11]))
    assert sides(sigs) == {7: Side.BUY}
    buy = sigs[7]
    assert buy.reason == "SMA(2) 11 crossed above SMA(4) 10.25"
    # confidence = |fast - slow| / pstd(last 4 closes 10, 9, 10, 12)
    # mean 10.25; squared deviations .0625 + 1.5625 + .0625 + 3.0625 = 4.75; var = 4.75/4
    assert buy.confidence == pytest.approx(0.75 / math.sqrt(4.75 / 4))
    assert buy.stop_loss is None and buy.take_profit is None
    assert all(sig.confidence == 0.0 for i, sig in enumerate(sigs) if i != 7)


def test_sma_crossover_sell_and_exit_prices() -> None:
    s = build_strategy("sma_crossover", {"fast": 2, "slow": 4, "stop_loss_pct": 2, "take_profit_pct": 5})
    sigs = signals_per_candle(s, make_candles(SMA_CLOSES))
    assert sides(sigs) == {7: Side.BUY, 11: Side.SELL}
    buy, sell = sigs[7], sigs[11]
    # BUY at close 12: stop 12 * 0.98, target 12 * 1.05
    assert buy.stop_loss == pytest.approx(11.76) and buy.take_profit == pytest.approx(12.6)
    # SELL at close 11: stop above (11 * 1.02), target below (11 * 0.95)
    assert sell.stop_loss == pytest.approx(11.22) and sell.take_profit == pytest.approx(10.45)
    assert sell.reason == "SMA(2) 12 crossed below SMA(4) 13.25"
    assert 0.0 < sell.confidence <= 1.0


# --------------------------------------------------------------------------- EMA crossover


def test_ema_crossover_hand_computed() -> None:
    # EMA(2): alpha 2/3, seed idx1 = (10+9)/2 = 9.5
    #   idx2 2/3*8 + 1/3*9.5 = 8.5;  idx3 2/3*7 + 1/3*8.5 = 7.5;  idx4 2/3*10 + 1/3*7.5 = 9.1667
    # EMA(3): alpha 1/2, seed idx2 = (10+9+8)/3 = 9
    #   idx3 .5*7 + .5*9 = 8;        idx4 .5*10 + .5*8 = 9
    # fast - slow: idx2 -0.5, idx3 -0.5, idx4 +0.1667 -> BUY on idx4; idx5 10.39 vs 10 -> no new cross
    s = build_strategy("ema_crossover", {"fast": 2, "slow": 3})
    assert s.name == "ema_crossover" and s.warmup == 4
    sigs = signals_per_candle(s, make_candles([10, 9, 8, 7, 10, 11]))
    assert sides(sigs) == {4: Side.BUY}
    assert sigs[4].reason == "EMA(2) 9.1666667 crossed above EMA(3) 9"


def test_ema_crossover_depends_only_on_lookback_tail() -> None:
    s = build_strategy("ema_crossover", {"fast": 5, "slow": 12})
    assert isinstance(s, CrossoverStrategy)
    candles = make_candles(random_walk(400))
    for end in range(s.lookback + 1, 400, 7):
        hist = candles[:end]
        assert s.evaluate(hist) == s.evaluate(hist[-s.lookback:]) == s.evaluate(deque(hist))


# --------------------------------------------------------------------------- momentum

# window 2, threshold 5 %:  ROC_t = 100 * (c_t / c_{t-2} - 1)
# idx  close   ROC
#  3    100     0
#  4    106    +6      <- crossed above +5: BUY, confidence 6/(2*5) = 0.6
#  5    110   +10      (already above: no new signal)
#  6    110    +3.77
#  7    100    -9.09   <- crossed below -5: SELL, confidence 9.0909/10
#  8     95   -13.6
#  9     95    -5      (not below -5)
MOMENTUM_CLOSES = [100, 100, 100, 100, 106, 110, 110, 100, 95, 95]


def test_momentum_long_and_short_signals() -> None:
    s = build_strategy("momentum", {"window": 2, "threshold_pct": 5, "stop_loss_pct": 2, "take_profit_pct": 4})
    sigs = signals_per_candle(s, make_candles(MOMENTUM_CLOSES))
    assert sides(sigs) == {4: Side.BUY, 7: Side.SELL}
    buy, sell = sigs[4], sigs[7]
    assert buy.confidence == pytest.approx(0.6)
    assert sell.confidence == pytest.approx(100 * (1 - 100 / 110) / 10)
    assert buy.reason == "ROC(2) +6.00% crossed above +5%"
    assert sell.reason == "ROC(2) -9.09% crossed below -5%"
    # BUY at 106: stop 106*0.98 = 103.88, target 106*1.04 = 110.24
    assert buy.stop_loss == pytest.approx(103.88) and buy.take_profit == pytest.approx(110.24)
    # SELL at 100: stop 102 (above), target 96 (below)
    assert sell.stop_loss == pytest.approx(102.0) and sell.take_profit == pytest.approx(96.0)


def test_momentum_confidence_capped() -> None:
    s = MomentumStrategy(MomentumParams(window=2, threshold_pct=1))
    sig = s.evaluate(make_candles([100, 100, 100, 150]))  # ROC +50 % vs threshold 1 %
    assert sig.side is Side.BUY and sig.confidence == 1.0


# --------------------------------------------------------------------------- RSI reversion

# Wilder RSI(3) of these closes (hand computation in test_strategy_indicators):
# idx: 3 66.7, 4 44.4, 5 29.6, 6 19.8, 7 46.5, 8 64.3, 9 76.2, 10 50.8
RSI_CLOSES = [10, 11, 12, 11, 10, 9, 8, 9, 10, 11, 10]


def test_rsi_reversion_dip_and_recovery() -> None:
    s = build_strategy("rsi_reversion", {"period": 3, "oversold": 30, "overbought": 70, "stop_loss_pct": 10})
    sigs = signals_per_candle(s, make_candles(RSI_CLOSES))
    # dips below 30 at idx5, back above on idx7 -> BUY; above 70 at idx9, back below on idx10 -> SELL
    assert sides(sigs) == {7: Side.BUY, 10: Side.SELL}
    buy, sell = sigs[7], sigs[10]
    # BUY depth: lowest RSI of idx4..6 is 1600/81 = 19.75 -> (30 - 19.75) / 30
    assert buy.confidence == pytest.approx((30 - 1600 / 81) / 30)
    # SELL height: highest RSI of idx7..9 is 166700/2187 = 76.22 -> (76.22 - 70) / 30
    assert sell.confidence == pytest.approx((166700 / 2187 - 70) / 30)
    assert buy.reason == "RSI(3) 46.5 crossed back above oversold 30 (low 19.8)"
    assert buy.stop_loss == pytest.approx(9 * 0.9) and buy.take_profit is None
    assert sell.stop_loss == pytest.approx(10 * 1.1)


def test_rsi_reversion_depends_only_on_lookback_tail() -> None:
    s = RsiReversionStrategy(RsiReversionParams(period=5))
    candles = make_candles(random_walk(300, seed=11))
    for end in range(s.lookback + 1, 300, 5):
        hist = candles[:end]
        assert s.evaluate(hist) == s.evaluate(hist[-s.lookback:])


# --------------------------------------------------------------------------- all strategies

ALL_SMALL_PARAMS: list[tuple[str, dict[str, Any]]] = [
    ("sma_crossover", {"fast": 3, "slow": 8}),
    ("ema_crossover", {"fast": 3, "slow": 8}),
    ("momentum", {"window": 5, "threshold_pct": 1.0}),
    ("rsi_reversion", {"period": 5}),
]


@pytest.mark.parametrize(("name", "params"), ALL_SMALL_PARAMS)
def test_warmup_gives_none_without_error(name: str, params: dict[str, Any]) -> None:
    s = build_strategy(name, params)
    candles = make_candles(random_walk(s.warmup + 5))
    for k in range(s.warmup):
        sig = s.evaluate(candles[:k])
        assert sig.side is Side.NONE and sig.confidence == 0.0
        assert "warming up" in sig.reason
    # from warmup on it evaluates (maybe NONE, but not because of warmup)
    assert "warming up" not in s.evaluate(candles[: s.warmup]).reason


@pytest.mark.parametrize(("name", "params"), ALL_SMALL_PARAMS)
def test_pure_same_input_same_signal(name: str, params: dict[str, Any]) -> None:
    s = build_strategy(name, params)
    candles = make_candles(random_walk(120, seed=5))
    first = signals_per_candle(s, candles)
    # interleave another history: no state may leak between calls
    s.evaluate(make_candles(random_walk(50, seed=9)))
    assert signals_per_candle(s, candles) == first
    assert signals_per_candle(build_strategy(name, params), candles) == first
    assert any(sig.side is not Side.NONE for sig in first)  # the walk does produce signals


@pytest.mark.parametrize(("name", "params"), ALL_SMALL_PARAMS)
def test_signals_are_well_formed(name: str, params: dict[str, Any]) -> None:
    s = build_strategy(name, {**params, "stop_loss_pct": 1.5, "take_profit_pct": 3})
    candles = make_candles(random_walk(200, seed=21))
    for i, sig in enumerate(signals_per_candle(s, candles)):
        assert 0.0 <= sig.confidence <= 1.0
        assert sig.reason
        close = candles[i].close
        if sig.side is Side.BUY:
            assert sig.stop_loss is not None and sig.take_profit is not None
            assert sig.stop_loss < close < sig.take_profit
        elif sig.side is Side.SELL:
            assert sig.stop_loss is not None and sig.take_profit is not None
            assert sig.take_profit < close < sig.stop_loss
        else:
            assert sig.stop_loss is None and sig.take_profit is None


def test_exit_prices() -> None:
    assert exit_prices(Side.BUY, 200.0, 1.0, 2.0) == pytest.approx((198.0, 204.0))
    assert exit_prices(Side.SELL, 200.0, 1.0, 2.0) == pytest.approx((202.0, 196.0))
    assert exit_prices(Side.BUY, 200.0, None, 2.0) == (None, pytest.approx(204.0))
    assert exit_prices(Side.NONE, 200.0, 1.0, 2.0) == (None, None)


# --------------------------------------------------------------------------- params validation


def field_of(exc: ValidationError) -> list[tuple[Any, ...]]:
    return [e["loc"] for e in exc.errors()]


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("sma_crossover", {"fast": 30, "slow": 10}, "slow"),
        ("sma_crossover", {"fast": 10, "slow": 10}, "slow"),
        ("sma_crossover", {"fast": 1}, "fast"),
        ("sma_crossover", {"kind": "ema"}, "kind"),
        ("sma_crossover", {"fats": 5}, "fats"),  # unknown key
        ("ema_crossover", {"slow": 1}, "slow"),
        ("ema_crossover", {"stop_loss_pct": 0}, "stop_loss_pct"),
        ("ema_crossover", {"take_profit_pct": 100}, "take_profit_pct"),
        ("momentum", {"threshold_pct": 0}, "threshold_pct"),
        ("momentum", {"threshold_pct": -2}, "threshold_pct"),
        ("momentum", {"window": 1}, "window"),
        ("momentum", {"window": 10, "period": 3}, "period"),
        ("rsi_reversion", {"oversold": 80, "overbought": 70}, "overbought"),
        ("rsi_reversion", {"oversold": 0}, "oversold"),
        ("rsi_reversion", {"overbought": 100}, "overbought"),
        ("rsi_reversion", {"period": 1}, "period"),
    ],
)
def test_params_validation_names_the_field(name: str, params: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        build_strategy(name, params)
    assert (field,) in field_of(info.value)
    assert field in str(info.value)


def test_cross_field_messages_name_both_fields() -> None:
    with pytest.raises(ValidationError, match=r"slow \(10\) must be greater than fast \(30\)"):
        CrossoverParams(fast=30, slow=10)
    with pytest.raises(ValidationError, match=r"overbought \(60\) must be greater than oversold \(65\)"):
        RsiReversionParams(oversold=65, overbought=60)


def test_validation_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        build_strategy("momentum", {"window": 0})


# --------------------------------------------------------------------------- registry


def test_registry_names_and_defaults() -> None:
    from strategy.registry import BUILT_IN

    # (user strategies, registered when a config loads, come on top of these)
    assert sorted(BUILT_IN) == ["ema_crossover", "ml_classifier", "momentum", "momentum_atr", "regime_switch",
                                "rsi_reversion", "sma_crossover", "webhook"]
    assert set(STRATEGIES) == set(strategy_names()) >= BUILT_IN
    for name in set(BUILT_IN) - {"ml_classifier"}:  # needs a model: tests/unit/test_ml_pipeline.py
        s = build_strategy(name, {})
        assert isinstance(s, Strategy)
        assert s.name == name
        # a webhook bot's signals come from outside (signal commands): it reads one candle at most
        assert history_needed(s) >= s.warmup >= (1 if name == "webhook" else 2)
    assert build_strategy("sma_crossover").warmup == 31  # defaults fast 10 / slow 30
    assert params_model("ema_crossover") is EmaCrossoverParams
    assert params_model("rsi_reversion")().period == 14


def test_unknown_strategy_lists_known_ones() -> None:
    known = "ema_crossover, ml_classifier, momentum, momentum_atr, regime_switch, rsi_reversion, sma_crossover"
    with pytest.raises(ValueError, match=f"unknown strategy 'macd'.*{known}"):
        build_strategy("macd", {})
    with pytest.raises(ValueError, match="unknown strategy"):
        params_model("nope")


def test_build_from_model_instance_is_revalidated() -> None:
    s = build_strategy("ema_crossover", EmaCrossoverParams(fast=4, slow=9))
    assert isinstance(s, CrossoverStrategy) and s.params.fast == 4
    with pytest.raises(ValidationError):
        build_strategy("sma_crossover", CrossoverParams(kind="ema"))


def test_strategy_package_has_no_io_imports() -> None:
    # strategy/ stays pure: standard library (minus networking), numpy, pydantic, core/, strategy/
    import ast
    import pathlib
    import sys

    network = {"http", "urllib", "socket", "ssl", "asyncio", "smtplib", "ftplib", "xmlrpc", "socketserver"}
    allowed = (set(sys.stdlib_module_names) - network) | {"core", "strategy", "numpy", "pydantic"}
    root = pathlib.Path(__file__).resolve().parents[2] / "strategy"
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                mods = [node.module or ""]
            else:
                continue
            for mod in mods:
                assert mod.split(".")[0] in allowed, f"strategy/{path.name} imports {mod}"
