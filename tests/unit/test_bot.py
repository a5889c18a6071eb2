"""Bot: scripted strategy + PaperExecutor + RiskEngine + Portfolio, fed hand-made candles.

Unless a test says otherwise: 1m candles, starting balance 10000, fee 0.1 %, slippage 0,
sizing percent_equity 20 -> an entry at close 100 buys 10000*20% / 100 = 20 units,
fee 20*100*0.1% = 2.00, quote 10000 - 2000 - 2 = 7998.
"""
from __future__ import annotations

import json
from typing import Sequence

import pytest

from core.portfolio import Portfolio
from core.types import INTERVAL_MS, NO_SIGNAL, Candle, ControlState, Mode, OrderPurpose, Side, Signal, TradingState
from engine.bot import Bot, client_order_id
from executors.ghost import GhostExecutor
from executors.paper import PaperExecutor
from risk.engine import RiskEngine, RiskLimits

T0 = 1_704_067_200_000  # 2024-01-01T00:00Z
M = INTERVAL_MS["1m"]
SYM = "BTCUSDT"



def denied(out):  # noqa: ANN001, ANN201 - every decision is recorded; these tests look at denials
    return [d for d in out.risk if not d.allowed]


class Scripted:
    """Returns a preset Signal by candle index (index = (open_time - T0) / 1m)."""

    name = "scripted"

    def __init__(self, script: dict[int, Signal] | None = None, warmup: int = 1) -> None:
        self.script = dict(script or {})
        self.warmup = warmup
        self.calls: list[int] = []

    def evaluate(self, candles: Sequence[Candle]) -> Signal:
        i = (candles[-1].open_time - T0) // M
        self.calls.append(i)
        return self.script.get(i, NO_SIGNAL)


def candle(i: int, o: float, h: float | None = None, low: float | None = None, c: float | None = None) -> Candle:
    c = o if c is None else c
    h = max(o, c) if h is None else h
    low = min(o, c) if low is None else low
    return Candle(SYM, T0 + i * M, o, h, low, c, 1.0, "1m")


def flat(i: int, price: float) -> Candle:
    return candle(i, price, price, price, price)


BUY = Signal(Side.BUY, 0.8, "go long")
SELL = Signal(Side.SELL, 0.8, "go short")


class Harness:
    def __init__(self, script: dict[int, Signal] | None = None, *, sizing: tuple[str, float] = ("percent_equity", 20.0),
                 fee_pct: float = 0.1, slippage_bps: float = 0.0, allow_short: bool = False,
                 max_hold: int | None = None, limits: RiskLimits | None = None, mode: Mode = Mode.PAPER,
                 name: str = "b1") -> None:
        self.state = TradingState.ACTIVE
        self.strategy = Scripted(script)
        executor = GhostExecutor() if mode is Mode.GHOST else PaperExecutor(fee_pct, slippage_bps)
        lim = limits or RiskLimits(max_position_pct=100.0, min_notional=10.0, max_orders_per_minute=20,
                                   fee_pct=fee_pct, slippage_bps=slippage_bps, allow_short=allow_short)
        self.bot = Bot(name, mode, SYM, self.strategy, executor, RiskEngine(lim),
                       Portfolio(name, 10_000.0), sizing, lambda _b: self.state,
                       allow_short=allow_short, max_hold_candles=max_hold, interval="1m")


def approx(x: float) -> object:
    return pytest.approx(x, rel=1e-12, abs=1e-9)


# ---- entries ---------------------------------------------------------------------------
def test_buy_signal_enters_sized_by_percent_equity() -> None:
    h = Harness({0: BUY})
    bot = h.bot
    bot.on_candle(flat(0, 100.0))
    pos = bot.position
    assert pos.quantity == approx(20.0)  # 10000 * 20% / 100
    assert pos.avg_entry == 100.0
    assert bot.portfolio.quote == approx(7_998.0)  # 10000 - 2000 - 2.00 fee
    out = bot.drain(T0 + 5 * M)
    assert len(out.orders) == 1 and len(out.fills) == 1 and not out.trades and not denied(out)
    o = out.orders[0]
    assert (o.side, o.purpose, o.status, o.quantity) == ("BUY", "ENTRY", "FILLED", approx(20.0))
    assert o.created_at == T0 + M  # the candle's close is the bot's now
    assert out.fills[0].fee == approx(2.0)
    sig = out.signals[0]
    assert (sig.id, sig.side, sig.acted, sig.note, sig.price) == (f"b1:{T0}", "BUY", True, "", 100.0)
    # equity at close = 7998 + 20*100 = 9998
    assert [(e.time, e.equity) for e in out.equity] == [(T0 + M, approx(9_998.0))]
    snap = out.snapshot
    assert snap.equity == approx(9_998.0) and snap.quote_balance == approx(7_998.0)
    assert snap.position is not None and snap.position.side == "LONG"
    assert snap.base_balance == approx(20.0)
    assert snap.orders_sent == 1 and snap.signals_total == 1
    assert snap.open_signal_id == f"b1:{T0}"
    # high water 10000, equity 9998: drawdown = 100 * 2 / 10000 = 0.02 %
    assert snap.max_drawdown_pct == approx(0.02)


def test_entry_with_slippage_pays_more_than_the_close() -> None:
    h = Harness({0: BUY}, slippage_bps=2.0)
    h.bot.on_candle(flat(0, 100.0))
    pos = h.bot.position
    # qty sized on the close: 20; fill at 100 * 1.0002 = 100.02; fee = 20 * 100.02 * 0.001 = 2.0004
    assert pos.quantity == approx(20.0)
    assert pos.avg_entry == approx(100.02)
    # quote = 10000 - 2000.4 - 2.0004 = 7997.5996
    assert h.bot.portfolio.quote == approx(7_997.5996)


def test_fixed_quote_sizing() -> None:
    h = Harness({0: BUY}, sizing=("fixed_quote", 500.0))
    h.bot.on_candle(flat(0, 250.0))
    assert h.bot.position.quantity == approx(2.0)  # 500 / 250


def test_second_buy_while_long_is_not_acted_on() -> None:
    h = Harness({0: BUY, 1: BUY})
    h.bot.on_candle(flat(0, 100.0))
    h.bot.on_candle(flat(1, 101.0))
    out = h.bot.drain(0)
    assert len(out.orders) == 1
    assert out.signals[1].acted is False and out.signals[1].note == "already in a position"
    assert h.bot.position.quantity == approx(20.0)


def test_entry_denied_by_risk_is_recorded_with_its_numbers() -> None:
    # sizing 80% but max_position_pct 50: 8000 > 5000
    lim = RiskLimits(max_position_pct=50.0, fee_pct=0.1)
    h = Harness({0: BUY}, sizing=("percent_equity", 80.0), limits=lim)
    h.bot.on_candle(flat(0, 100.0))
    assert not h.bot.position.is_open
    out = h.bot.drain(0)
    assert denied(out)[0].rule == "max_position_pct" and denied(out)[0].purpose == "ENTRY"
    assert denied(out)[0].detail == "position value 8000.00 > 50% of equity 10000.00 = 5000.00"
    assert out.orders[0].status == "REJECTED"
    assert out.signals[0].acted is False
    assert out.signals[0].note == "entry denied: position value 8000.00 > 50% of equity 10000.00 = 5000.00"
    assert out.snapshot.denials == {"max_position_pct": 1} and out.snapshot.orders_sent == 0


# ---- exits -----------------------------------------------------------------------------
def test_sell_signal_exits_the_long_and_does_not_short_on_spot() -> None:
    h = Harness({0: BUY, 1: SELL})
    bot = h.bot
    bot.on_candle(flat(0, 100.0))
    bot.on_candle(flat(1, 110.0))
    assert not bot.position.is_open
    out = bot.drain(0)
    assert [o.purpose for o in out.orders] == ["ENTRY", "EXIT"]
    assert out.orders[1].side == "SELL" and out.orders[1].reason == "opposite_signal"
    (t,) = out.trades
    # exit fee 20*110*0.001 = 2.20; pnl = (110-100)*20 - 2.00 - 2.20 = 195.80
    assert t.pnl == approx(195.8) and t.fees == approx(4.2)
    assert t.exit_reason == "opposite_signal" and t.signal_id == f"b1:{T0}"
    assert (t.entry_time, t.exit_time) == (T0 + M, T0 + 2 * M)
    # quote = 7998 + 2200 - 2.20 = 10195.80
    assert bot.portfolio.quote == approx(10_195.8)
    assert out.signals[1].acted is True
    assert out.signals[1].note == "spot: no short entries"
    assert out.snapshot.trade_count == 1 and out.snapshot.wins == 1
    assert out.snapshot.realized_pnl == approx(195.8)
    assert out.snapshot.open_signal_id == ""


def test_sell_signal_when_flat_on_spot_places_nothing() -> None:
    h = Harness({0: SELL})
    h.bot.on_candle(flat(0, 100.0))
    out = h.bot.drain(0)
    assert not out.orders and not denied(out)
    assert out.signals[0].acted is False and out.signals[0].note == "spot: no short entries"


def test_sell_signal_opens_a_short_when_allowed() -> None:
    h = Harness({0: SELL}, allow_short=True)
    h.bot.on_candle(flat(0, 100.0))
    assert h.bot.position.quantity == approx(-20.0)
    # quote = 10000 + 2000 - 2 = 11998
    assert h.bot.portfolio.quote == approx(11_998.0)


def _long_with_exits(stop: float | None = 95.0, take: float | None = 110.0) -> Harness:
    h = Harness({0: Signal(Side.BUY, 1.0, "long", stop_loss=stop, take_profit=take)})
    h.bot.on_candle(flat(0, 100.0))
    assert h.bot.position.stop_loss == stop and h.bot.position.take_profit == take
    return h


def test_stop_loss_triggered_by_the_low_fills_at_the_stop() -> None:
    h = _long_with_exits()
    h.bot.on_candle(candle(1, 100.0, 101.0, 94.0, 100.0))  # low 94 <= stop 95, open 100 above it
    assert not h.bot.position.is_open
    (t,) = h.bot.drain(0).trades
    # exit at 95: fee 20*95*0.001 = 1.90; pnl = (95-100)*20 - 2.00 - 1.90 = -103.90
    assert t.exit_price == 95.0 and t.exit_reason == "stop_loss"
    assert t.pnl == approx(-103.9)
    # quote = 7998 + 1900 - 1.90 = 9896.10
    assert h.bot.portfolio.quote == approx(9_896.1)


def test_stop_loss_gapped_through_fills_at_the_open() -> None:
    h = _long_with_exits()
    h.bot.on_candle(candle(1, 90.0, 92.0, 88.0, 91.0))  # opens below the stop
    (t,) = h.bot.drain(0).trades
    # exit at min(95, 90) = 90: fee 1.80; pnl = (90-100)*20 - 2.00 - 1.80 = -203.80
    assert t.exit_price == 90.0 and t.pnl == approx(-203.8)


def test_take_profit_triggered_by_the_high_fills_at_the_target() -> None:
    h = _long_with_exits()
    h.bot.on_candle(candle(1, 101.0, 111.0, 100.5, 108.0))
    (t,) = h.bot.drain(0).trades
    # exit at 110: fee 2.20; pnl = 10*20 - 2.00 - 2.20 = 195.80
    assert t.exit_price == 110.0 and t.exit_reason == "take_profit" and t.pnl == approx(195.8)


def test_take_profit_gapped_through_fills_at_the_open() -> None:
    h = _long_with_exits()
    h.bot.on_candle(candle(1, 115.0, 116.0, 114.0, 115.5))
    (t,) = h.bot.drain(0).trades
    # exit at max(110, 115) = 115: fee 2.30; pnl = 15*20 - 2.00 - 2.30 = 295.70
    assert t.exit_price == 115.0 and t.pnl == approx(295.7)


def test_stop_wins_when_stop_and_target_are_both_inside_one_candle() -> None:
    h = _long_with_exits()
    h.bot.on_candle(candle(1, 100.0, 112.0, 94.0, 105.0))
    (t,) = h.bot.drain(0).trades
    assert t.exit_reason == "stop_loss" and t.exit_price == 95.0


def test_no_exit_when_the_candle_stays_between_stop_and_target() -> None:
    h = _long_with_exits()
    h.bot.on_candle(candle(1, 100.0, 109.9, 95.1, 104.0))
    assert h.bot.position.is_open
    assert not h.bot.drain(0).trades


def test_short_stop_loss_triggered_by_the_high() -> None:
    h = Harness({0: Signal(Side.SELL, 1.0, "short", stop_loss=105.0, take_profit=90.0)}, allow_short=True)
    h.bot.on_candle(flat(0, 100.0))
    h.bot.on_candle(candle(1, 101.0, 106.0, 100.0, 104.0))
    (t,) = h.bot.drain(0).trades
    # BUY back 20 @ 105: fee 2.10; pnl = (105-100)*20*(-1) - 2.00 - 2.10 = -104.10
    assert t.side == "SHORT" and t.exit_price == 105.0 and t.pnl == approx(-104.1)
    assert not h.bot.position.is_open


def test_short_take_profit_triggered_by_the_low() -> None:
    h = Harness({0: Signal(Side.SELL, 1.0, "short", stop_loss=105.0, take_profit=90.0)}, allow_short=True)
    h.bot.on_candle(flat(0, 100.0))
    h.bot.on_candle(candle(1, 95.0, 96.0, 89.0, 92.0))
    (t,) = h.bot.drain(0).trades
    # BUY back 20 @ 90: fee 1.80; pnl = 10*20 - 2.00 - 1.80 = 196.20
    assert t.exit_reason == "take_profit" and t.exit_price == 90.0 and t.pnl == approx(196.2)


def test_time_horizon_exit_after_max_hold_candles() -> None:
    h = Harness({0: BUY}, max_hold=3)
    bot = h.bot
    bot.on_candle(flat(0, 100.0))  # entry; hold 0
    bot.on_candle(flat(1, 101.0))  # hold 1
    bot.on_candle(flat(2, 102.0))  # hold 2
    assert bot.position.is_open and bot.hold_candles == 2
    bot.on_candle(flat(3, 103.0))  # hold 3 -> exit at the close
    assert not bot.position.is_open and bot.hold_candles == 0
    (t,) = bot.drain(0).trades
    # exit fee 20*103*0.001 = 2.06; pnl = 3*20 - 2.00 - 2.06 = 55.94
    assert t.exit_reason == "time_horizon" and t.exit_price == 103.0 and t.pnl == approx(55.94)
    assert t.exit_time == T0 + 4 * M


# ---- trading states ----------------------------------------------------------------------
def test_paused_denies_entries() -> None:
    h = Harness({0: BUY})
    h.state = TradingState.PAUSED
    h.bot.on_candle(flat(0, 100.0))
    assert not h.bot.position.is_open
    out = h.bot.drain(0)
    assert denied(out)[0].rule == "trading_state"
    assert denied(out)[0].detail == "state PAUSED allows no entries"
    assert out.orders[0].status == "REJECTED" and out.orders[0].purpose == "ENTRY"
    assert out.signals[0].acted is False
    assert out.signals[0].note == "entry denied: state PAUSED allows no entries"
    assert out.snapshot.effective_state is TradingState.PAUSED
    assert out.snapshot.denials == {"trading_state": 1}
    assert h.bot.portfolio.quote == 10_000.0


def test_paused_still_runs_stop_loss_and_opposite_signal_exits() -> None:
    h = _long_with_exits()
    h.state = TradingState.PAUSED
    h.bot.on_candle(candle(1, 100.0, 101.0, 94.0, 100.0))
    assert not h.bot.position.is_open
    assert h.bot.drain(0).trades[0].exit_reason == "stop_loss"

    h2 = Harness({0: BUY, 1: SELL})
    h2.bot.on_candle(flat(0, 100.0))
    h2.state = TradingState.PAUSED
    h2.bot.on_candle(flat(1, 110.0))
    assert not h2.bot.position.is_open
    assert h2.bot.drain(0).trades[0].exit_reason == "opposite_signal"


def test_halted_blocks_even_exits() -> None:
    h = _long_with_exits()
    h.state = TradingState.HALTED
    h.bot.on_candle(candle(1, 100.0, 101.0, 94.0, 100.0))
    assert h.bot.position.is_open
    out = h.bot.drain(0)
    assert not out.trades
    assert denied(out)[0].rule == "trading_state" and denied(out)[0].purpose == "EXIT"
    assert h.bot.flatten("halted?") is False


# ---- flatten / drain ---------------------------------------------------------------------
def test_flatten_closes_the_position_with_purpose_flatten() -> None:
    h = Harness({0: BUY})
    bot = h.bot
    bot.on_candle(flat(0, 100.0))
    bot.on_candle(flat(1, 104.0))
    bot.drain(0)
    h.state = TradingState.PAUSED  # flatten is an exit: allowed while PAUSED
    assert bot.flatten("operator flatten") is True
    assert not bot.position.is_open
    out = bot.drain(0)
    (o,) = out.orders
    assert (o.purpose, o.side, o.quantity, o.status) == ("FLATTEN", "SELL", approx(20.0), "FILLED")
    # now = last candle's close; _seq restarted at candle 1, which placed nothing -> seq 1
    assert o.client_order_id == client_order_id("b1", T0 + 2 * M, OrderPurpose.FLATTEN, 1)
    (t,) = out.trades
    # at the last price 104: fee 2.08; pnl = 4*20 - 2.00 - 2.08 = 75.92
    assert t.exit_price == 104.0 and t.exit_reason == "operator flatten" and t.pnl == approx(75.92)
    assert out.equity[-1].equity == approx(10_075.92)


def test_flatten_when_flat_does_nothing() -> None:
    h = Harness()
    h.bot.on_candle(flat(0, 100.0))
    h.bot.drain(0)
    assert h.bot.flatten("nothing to do") is True
    out = h.bot.drain(0)
    assert not out.orders and not out.fills and not out.trades


def test_drain_returns_then_clears_the_records() -> None:
    h = Harness({0: BUY, 2: SELL})
    for i, p in enumerate((100.0, 101.0, 102.0)):
        h.bot.on_candle(flat(i, p))
    out = h.bot.drain(T0 + 10 * M)
    assert len(out.orders) == 2 and len(out.fills) == 2 and len(out.trades) == 1
    assert len(out.signals) == 2 and len(out.equity) == 3
    assert out.snapshot.updated_at == T0 + 10 * M
    again = h.bot.drain(T0 + 11 * M)
    assert not (again.orders or again.fills or again.trades or again.signals or again.equity or again.risk)
    assert again.snapshot.equity == out.snapshot.equity
    assert again.snapshot.updated_at == T0 + 11 * M


# ---- snapshot / restore ------------------------------------------------------------------
def _busy_bot() -> Harness:
    script = {0: BUY, 2: SELL, 3: Signal(Side.BUY, 0.5, "again", stop_loss=90.0, take_profit=130.0)}
    h = Harness(script, max_hold=50)
    for i, p in enumerate((100.0, 103.0, 106.0, 104.0, 105.0)):
        h.bot.on_candle(flat(i, p))
    h.state = TradingState.PAUSED
    h.strategy.script[4] = BUY  # already long: noted, not acted
    return h


def test_snapshot_restore_round_trip_gives_identical_numbers() -> None:
    h = _busy_bot()
    now = T0 + 99 * M
    s1 = h.bot.snapshot(now)
    assert s1.position is not None and s1.trade_count == 1 and s1.hold_candles == 1
    # invariant: equity = start + realized + unrealized - entry fees of the open position
    assert s1.equity == approx(s1.starting_balance + s1.realized_pnl + s1.unrealized_pnl - s1.entry_fees_open)
    # round-trip through JSON as the worker does
    s1 = type(s1).model_validate_json(s1.model_dump_json())

    h2 = Harness(dict(h.strategy.script), max_hold=50)
    h2.state = TradingState.PAUSED
    h2.bot.restore(s1)
    s2 = h2.bot.snapshot(now)
    # books_at is the wall clock at the build (the recovery watermark), not a number of the books
    assert s2.model_dump(exclude={"books_at"}) == s1.model_dump(exclude={"books_at"})

    # and both continue identically: hit the stop at 90
    for hh in (h, h2):
        hh.state = TradingState.ACTIVE
        hh.bot.on_candle(candle(5, 100.0, 101.0, 89.0, 95.0))
    a, b = h.bot.snapshot(now + M), h2.bot.snapshot(now + M)
    assert a.model_dump(exclude={"books_at"}) == b.model_dump(exclude={"books_at"})
    assert a.trade_count == 2 and a.position is None


def test_restore_keeps_the_position_exits() -> None:
    h = _long_with_exits(stop=95.0, take=110.0)
    snap = h.bot.snapshot(0)
    h2 = Harness()
    h2.bot.restore(snap)
    pos = h2.bot.position
    assert (pos.quantity, pos.avg_entry, pos.stop_loss, pos.take_profit) == (approx(20.0), 100.0, 95.0, 110.0)
    assert pos.entry_fees == approx(2.0)
    h2.bot.on_candle(candle(1, 100.0, 101.0, 94.0, 100.0))
    (t,) = h2.bot.drain(0).trades
    assert t.pnl == approx(-103.9)  # same as without the restart


# ---- ids and idempotency -----------------------------------------------------------------
def test_client_order_id_deterministic_and_short() -> None:
    a = client_order_id("paper-sma-btc", T0 + M, OrderPurpose.ENTRY, 1)
    assert a == client_order_id("paper-sma-btc", T0 + M, OrderPurpose.ENTRY, 1)
    assert a != client_order_id("paper-sma-btc", T0 + M, OrderPurpose.ENTRY, 2)
    assert a != client_order_id("paper-sma-btc", T0 + 2 * M, OrderPurpose.ENTRY, 1)
    assert a != client_order_id("other-bot", T0 + M, OrderPurpose.ENTRY, 1)
    assert a != client_order_id("paper-sma-btc", T0 + M, OrderPurpose.FLATTEN, 1)
    assert len(a) <= 36
    # worst case: a 40-char bot name, a far-future time (year ~5138) and a large seq
    longest = client_order_id("x" * 40, 99_999_999_999_999, OrderPurpose.FLATTEN, 9_999)
    assert len(longest) <= 36
    assert all(ch.isalnum() for ch in longest)  # Binance allows ^[.A-Z:/a-z0-9_-]{1,36}$


def test_client_order_id_distinguishes_entry_from_exit() -> None:
    assert client_order_id("b1", T0, OrderPurpose.ENTRY, 1) != client_order_id("b1", T0, OrderPurpose.EXIT, 1)


def test_two_identical_bots_produce_identical_order_ids() -> None:
    ids = []
    for _ in range(2):
        h = Harness({0: BUY, 1: SELL})
        h.bot.on_candle(flat(0, 100.0))
        h.bot.on_candle(flat(1, 101.0))
        ids.append([o.client_order_id for o in h.bot.drain(0).orders])
    assert ids[0] == ids[1] and len(set(ids[0])) == 2


def test_candles_at_or_before_last_candle_time_are_ignored() -> None:
    h = Harness({0: BUY, 1: SELL})
    bot = h.bot
    bot.on_candle(flat(0, 100.0))
    bot.on_candle(flat(1, 110.0))
    before = bot.snapshot(0).model_dump()
    calls = list(h.strategy.calls)
    bot.drain(0)
    bot.on_candle(flat(1, 50.0))  # same open_time again (replay after a restart)
    bot.on_candle(flat(0, 100.0))  # older
    assert h.strategy.calls == calls
    out = bot.drain(0)
    assert not (out.orders or out.signals or out.equity)
    after = out.snapshot.model_dump()
    assert after.pop("books_at") >= before.pop("books_at")  # wall time the books were built: not compared to the ms
    assert after == before
    assert bot.candles_seen == 2 and bot.last_price == 110.0


def test_warm_history_is_not_traded() -> None:
    h = Harness({0: BUY, 1: BUY, 2: BUY})
    h.bot.warm([flat(0, 100.0), flat(1, 101.0)])
    assert h.bot.last_candle_time == T0 + M and h.bot.last_price == 101.0
    h.bot.on_candle(flat(1, 101.0))  # already in the warm-up: ignored
    assert h.strategy.calls == []
    h.bot.on_candle(flat(2, 102.0))
    assert h.strategy.calls == [2] and h.bot.position.is_open
    assert h.bot.candles_seen == 1


def test_warmup_gate_uses_history_length() -> None:
    h = Harness({0: BUY, 1: BUY, 2: BUY})
    h.strategy.warmup = 3
    h.bot.on_candle(flat(0, 100.0))
    h.bot.on_candle(flat(1, 100.0))
    assert h.strategy.calls == []
    h.bot.on_candle(flat(2, 100.0))
    assert h.strategy.calls == [2]


def test_ghost_snapshot_has_json_safe_signal_stats() -> None:
    # ghost: no fees, no slippage; two winning round trips -> profit factor inf -> None in JSON
    h = Harness({0: BUY, 1: SELL, 2: BUY, 3: SELL}, mode=Mode.GHOST, fee_pct=0.0, allow_short=False)
    for i, p in enumerate((100.0, 110.0, 100.0, 105.0)):
        h.bot.on_candle(flat(i, p))
    snap = h.bot.snapshot(0)
    assert snap.signal_stats is not None
    # trades: 20*(110-100) = 200; 2000*... second entry: equity 10200 * 20% / 100 = 20.4 units * 5 = 102
    assert snap.trade_pnls == [approx(200.0), approx(102.0)]
    assert snap.signal_stats.closed == 2 and snap.signal_stats.accuracy_pct == approx(100.0)
    assert snap.signal_stats.profit_factor is None
    json.loads(snap.model_dump_json())  # no inf/nan


def test_paper_entry_never_overdraws_the_quote_balance() -> None:
    # sizing 99.9%: qty = 9990 / 100 = 99.9; risk: need = 9990 * 1.001 = 9999.99 <= 10000 -> allowed
    # fill at 100 * 1.0002 = 100.02: cost 99.9*100.02 = 9991.998 + fee 9.991998 = 10001.989998
    # -> quote = 10000 - 10001.99 = -1.99 (spot cannot go negative)
    h = Harness({0: BUY}, sizing=("percent_equity", 99.9), slippage_bps=2.0)
    h.bot.on_candle(flat(0, 100.0))
    assert h.bot.portfolio.quote >= 0.0


def test_an_exit_never_asks_the_venue_what_only_entries_need() -> None:
    """Entry rules read the venue (account margin, spread); an exit is judged on state, position
    and price only, so a venue whose account endpoint fails cannot keep a stop or a flatten back."""
    from risk.engine import MarketStatus, PortfolioView

    class Env:
        down = False

        def _check(self) -> None:
            if self.down:
                raise ConnectionError("account endpoint down")

        def portfolio_view(self, bot: Bot) -> PortfolioView:
            self._check()
            return PortfolioView()

        def market_status(self, symbol: str, now_ms: int, bot: Bot | None = None) -> MarketStatus:
            self._check()
            return MarketStatus()

        def margin(self, bot: Bot) -> tuple[float, float]:
            self._check()
            return (0.0, 0.0)

        def correlation(self, a: str, b: str) -> float | None:
            return None

    h = Harness({1: BUY})
    env = Env()
    h.bot.env = env
    h.bot.on_candle(flat(0, 100.0))
    h.bot.on_candle(flat(1, 100.0))
    assert h.bot.position.quantity > 0
    env.down = True
    assert h.bot.flatten("test") and h.bot.position.quantity == 0.0


@pytest.mark.parametrize("limit,portfolio,market", [
    ({}, False, False),
    ({"max_concurrent_positions": 1}, True, False),
    ({"max_mode_exposure_value": 1e9}, True, False),
    ({"max_bot_exposure_pct": 500.0}, True, False),
    ({"max_correlation": 0.9}, True, False),
    ({"max_price_age_s": 10.0}, False, True),
    ({"require_market_stream": True}, False, True),
    ({"max_spread_bps": 50.0}, False, True),
])
def test_an_entry_gathers_the_other_bots_and_the_market_only_for_the_rules_that_read_them(
        limit: dict[str, object], portfolio: bool, market: bool) -> None:
    """The portfolio view walks every bot of the mode and a venue bot's market status asks the venue for
    its spread: an entry gathers them when one of its limits reads them, and not otherwise."""
    from risk.engine import MarketStatus, PortfolioView

    asked: list[str] = []

    class Env:
        def portfolio_view(self, bot: Bot) -> PortfolioView:
            asked.append("portfolio")
            return PortfolioView()

        def market_status(self, symbol: str, now_ms: int, bot: Bot | None = None) -> MarketStatus:
            asked.append("market")
            return MarketStatus(price_age_s=0.0)

        def margin(self, bot: Bot) -> tuple[float, float]:
            return (0.0, 0.0)

        def correlation(self, a: str, b: str) -> float | None:
            return None

    lim = RiskLimits(max_position_pct=100.0, min_notional=10.0, fee_pct=0.1, **limit)
    h = Harness({0: BUY}, limits=lim)
    h.bot.env = Env()
    h.bot.on_candle(flat(0, 100.0))
    assert h.bot.position.quantity > 0  # the entry went through the check
    assert ("portfolio" in asked, "market" in asked) == (portfolio, market)


def test_the_snapshot_shows_the_control_record_and_limits_as_they_are_now() -> None:
    """The snapshot keeps its control record while it is unchanged; a change of it (in place or replaced)
    or of the limits shows in the next snapshot."""
    h = Harness()
    bot = h.bot
    first = bot.snapshot(0)
    assert first.control.state is TradingState.ACTIVE and first.risk.limits["max_position_pct"] == 100.0
    assert bot.snapshot(1).control is first.control  # unchanged: the same record
    bot.control.state, bot.control.set_by, bot.control.reason = TradingState.PAUSED, "alice", "lunch"
    s = bot.snapshot(2)
    assert (s.control.state, s.control.set_by, s.control.reason) == (TradingState.PAUSED, "alice", "lunch")
    bot.control.reason, bot.control.set_at = "coffee", 7  # the same state, another reason
    assert (bot.snapshot(2).control.reason, bot.snapshot(2).control.set_at) == ("coffee", 7)
    bot.control = ControlState(TradingState.FLATTEN, "bob", 5, "out", then=TradingState.HALTED)
    s = bot.snapshot(3)
    assert (s.control.state, s.control.set_by, s.control.set_at, s.control.then) == (
        TradingState.FLATTEN, "bob", 5, TradingState.HALTED)
    bot.tighten_limits({"max_position_pct": 50.0})
    assert bot.snapshot(4).risk.limits["max_position_pct"] == 50.0
