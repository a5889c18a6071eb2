"""Informative timeframes (engine.informative, market.aggregate.Resampler): a strategy declaring them gets
only closed higher-timeframe candles, the very ones ``market.aggregate.aggregate`` makes from the base
candles it has seen, in the backtest's bar path (the worker's Bot.on_candle), after a restart from the
bot's warm history too; and ``strategy check`` covers them."""
from __future__ import annotations

from pathlib import Path

import pytest

from backtest.engine import run_config
from backtest.fills import FillModel
from backtest.strategy_check import check_strategy
from backtest_support import NO_LIMITS, app, random_data
from core.types import INTERVAL_MS, Side, Signal
from engine.informative import WithInformative, with_informative
from market.aggregate import aggregate
from strategy import registry
from strategy.base import informative_of

HTF = '''
from pydantic import BaseModel
from core.types import Side, Signal

class P(BaseModel):
    n: int = 3

class Htf:
    name = "htf_trend"
    Params = P
    informative = {{"5m": 3, "15m": 2}}
    seen = []
    def __init__(self, params):
        self.warmup = 2
    def evaluate(self, candles, informative):
        Htf.seen.append((tuple(candles), {{k: tuple(v) for k, v in informative.items()}}))
        h = informative["5m"]
        up = h[-1].close > h[0].close {cheat}
        return Signal(Side.BUY if up else Side.SELL, 1.0, "5m trend")
'''


class Spy:
    """A built-in style strategy with informative timeframes that records what it is handed."""

    name = "spy"
    warmup = 3
    informative = {"5m": 4, "1h": 1}

    def __init__(self) -> None:
        self.calls: list[tuple[tuple, dict]] = []

    def evaluate(self, candles, informative):  # noqa: ANN001
        self.calls.append((tuple(candles), informative))
        return Signal(Side.NONE)


def _expected(prefix, iv: str, n: int):
    """aggregate() of what the wrapper saw, closed buckets only, that began at or after its first candle."""
    full = [h for h in aggregate(prefix, iv) if h.open_time >= prefix[0].open_time]
    return tuple(full[-n:])


def test_only_closed_higher_candles_equal_to_aggregate():
    data = random_data(400, start=1_704_067_200_000 + 7 * 60_000)  # starts mid-bucket
    candles = data.candles()
    spy = Spy()
    w = with_informative(spy, "1m")
    assert isinstance(w, WithInformative) and w.warmup == 120  # (1 + 1) hours of 1m candles
    for i in range(len(candles)):
        w.evaluate(tuple(candles[: i + 1]))
    assert len(spy.calls) > 100
    for seen, inf in spy.calls:
        now = seen[-1].open_time + 60_000  # the last candle's close
        for iv, n in spy.informative.items():
            got = inf[iv]
            assert all(h.open_time + INTERVAL_MS[iv] <= now for h in got)  # closed, never forming
            assert got == _expected(candles[: len(seen)], iv, n)


def test_rebuilt_from_the_bot_window_after_a_restart():
    data = random_data(600)
    candles = data.candles()
    a, b = Spy(), Spy()
    wa, wb = with_informative(a, "1m"), with_informative(b, "1m")
    window = 130
    for i in range(len(candles)):
        wa.evaluate(tuple(candles[max(0, i + 1 - window): i + 1]))
    # b starts at candle 400 with only the bot's warm history (as after a worker restart)
    for i in range(400, len(candles)):
        wb.evaluate(tuple(candles[max(0, i + 1 - window): i + 1]))
    assert [x[1] for x in a.calls[-200:]] == [x[1] for x in b.calls[-200:]]


def test_an_informative_interval_must_be_a_multiple():
    class Bad(Spy):
        informative = {"1m": 3}

    with pytest.raises(ValueError, match="whole multiple"):
        with_informative(Bad(), "5m")
    assert with_informative(registry.build_strategy("momentum"), "1m").name == "momentum"  # unwrapped
    assert informative_of(registry.build_strategy("momentum")) == {}


@pytest.fixture
def htf(tmp_path: Path):
    def make(cheat: str = "") -> Path:  # cheat: appended to the strategy's condition
        folder = tmp_path / "user_strategies"
        folder.mkdir(exist_ok=True)
        (folder / "htf.py").write_text(HTF.format(cheat=cheat))
        report = registry.register_user_strategies(folder)
        assert not report.errors, report.errors
        return folder
    yield make
    registry.register_user_strategies(Path("/nonexistent"))


def test_backtest_hands_a_user_strategy_closed_candles(htf):
    htf()
    cls = registry.STRATEGIES["htf_trend"][1]
    data = random_data(500)
    cfg = app([{"name": "h", "strategy": "htf_trend", "risk": dict(NO_LIMITS)}])
    res = run_config(cfg, {"BTCUSDT": data}, FillModel())[0]
    assert res.path == "bar" and res.trades
    seen = type(cls(registry.params_model("htf_trend")())).seen
    assert len(seen) == 500 - (2 + 1) * 15 + 1  # warmup: 2 closed 15m candles need 3 buckets
    for hist, inf in seen:
        now = hist[-1].open_time + 60_000
        assert len(inf["5m"]) == 3 and len(inf["15m"]) == 2
        assert all(h.open_time + INTERVAL_MS[iv] <= now for iv, hs in inf.items() for h in hs)


def test_check_covers_informative_timeframes(htf):
    htf()
    rep = check_strategy("htf_trend", {}, random_data(600))
    assert rep.ok and "no lookahead in evaluate(): signals unchanged with the future shuffled (6 cuts)" in rep.passed
