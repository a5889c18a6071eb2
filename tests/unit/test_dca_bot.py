"""DCA deals on the simulated venue: the §5.3 worked example as a real deal, the resting ladder,
take-profit steps, stops, restarts; every order through the risk engine."""
from __future__ import annotations

import json

import pytest
from pytest import approx

from core.portfolio import Portfolio
from core.types import INTERVAL_MS, Candle, Mode, TradingState
from engine.dca_bot import DcaBot
from engine.deal import DealStatus
from executors.paper import PaperExecutor
from executors.venue import SimVenue
from risk.engine import RiskEngine
from risk.limits import RiskLimits
from strategy.dca_settings import DcaConfig

T0 = 1_704_067_200_000
M = INTERVAL_MS["1m"]
WORKED = dict(base_order=10, safety_order=20, deviation_pct=1, step_scale=2, volume_scale=1.5, max_safety_orders=4,
              active_safety_orders=4, take_profit_pct=1.5, cooldown_s=86_400)  # one deal per test unless said
OPEN = RiskLimits(max_orders_per_minute=None, min_notional=1.0, fee_pct=0.0)


def make(state: list[TradingState] | None = None, limits: RiskLimits = OPEN, **cfg: object) -> DcaBot:
    st = state or [TradingState.ACTIVE]
    return DcaBot("dca", Mode.PAPER, ["BTCUSDT"], DcaConfig(**{**WORKED, **cfg}), None, PaperExecutor(0.0, 0.0),
                  SimVenue(maker_fee_pct=0.0), RiskEngine(limits), Portfolio("dca", 1_000.0), lambda _b: st[0])


def bar(i: int, o: float, h: float, lo: float, c: float) -> Candle:
    return Candle("BTCUSDT", T0 + i * M, o, h, lo, c, 10.0)


def flat(i: int, p: float) -> Candle:
    return bar(i, p, p, p, p)


def test_worked_example_as_a_simulated_deal() -> None:
    b = make()
    b.on_candle(flat(0, 100.0))                      # base order: 10 USDT at 100
    deal = b.deals["BTCUSDT"]
    assert deal.status is DealStatus.AVERAGING and deal.quantity == approx(0.1)
    so = sorted(o.price for o in b.venue.open_orders() if o.tag.startswith("SO"))
    assert so == approx([85.0, 93.0, 97.0, 99.0])    # the whole ladder rests (A = 4)
    (tp,) = [o for o in b.venue.open_orders() if o.tag.startswith("TP")]
    assert tp.price == approx(101.5)
    b.on_candle(bar(1, 100.0, 100.0, 84.0, 86.0))    # one dip through every level
    assert deal.safety_filled == 4
    assert deal.cost == approx(172.5) and deal.quantity == approx(1.889287, abs=1e-6)
    assert deal.average == approx(91.3043, abs=1e-4)
    (tp,) = [o for o in b.venue.open_orders() if o.tag.startswith("TP")]
    assert tp.price == approx(92.6738, abs=1e-4)     # re-placed at the new average
    b.on_candle(bar(2, 86.0, 93.0, 86.0, 92.9))      # trades through the TP
    assert "BTCUSDT" not in b.deals and not b.venue.book
    (closed,) = b.drain(T0).deals
    assert closed["status"] == "CLOSED" and closed["safety_filled"] == 4
    assert b.trade_pnls == [approx(172.5 * 0.015, abs=1e-3)]   # 1.5 % on the average cost = 2.5875


def test_resting_ladder_keeps_active_safety_orders_and_tp_cancels_the_rest() -> None:
    b = make(active_safety_orders=2)
    b.on_candle(flat(0, 100.0))
    def sos() -> list[str]:
        return sorted(o.tag for o in b.venue.open_orders() if o.tag.startswith("SO"))
    assert sos() == ["SO1", "SO2"]
    b.on_candle(bar(1, 100.0, 100.0, 98.5, 98.8))    # SO1 (99) fills -> SO3 placed
    assert sos() == ["SO2", "SO3"]
    b.on_candle(bar(2, 98.8, 98.8, 96.5, 96.9))      # SO2 (97) fills -> SO4 placed
    assert sos() == ["SO3", "SO4"]
    deal = b.deals["BTCUSDT"]
    tp = deal.average * 1.015
    b.on_candle(bar(3, 97.0, tp + 1, 97.0, tp + 0.5))
    assert not b.deals and b.venue.book == {}        # TP filled, SO3 and SO4 canceled
    upd = b.drain(T0 + 10 * M)
    (d,) = upd.deals
    assert d["status"] == "CLOSED" and d["safety_filled"] == 2 and d["realized_pnl"] > 0
    assert [t["tag"] for t in d["tranches"]] == ["BO", "SO1", "SO2"]


def test_take_profit_steps_sell_shares_and_quantities_add_up() -> None:
    b = make(max_safety_orders=0, active_safety_orders=0, take_profit_steps=[(30, 1), (50, 2), (20, 3)])
    b.on_candle(flat(0, 100.0))
    tps = sorted((o.price, o.quantity) for o in b.venue.open_orders())
    assert [p for p, _ in tps] == approx([101.0, 102.0, 103.0])
    assert sum(q for _, q in tps) == approx(0.1, abs=1e-12)
    b.on_candle(bar(1, 100.0, 101.5, 100.0, 101.2))  # first step only
    deal = b.deals["BTCUSDT"]
    assert deal.status is DealStatus.TAKING_PROFIT and deal.quantity == approx(0.07)
    b.on_candle(bar(2, 101.2, 104.0, 101.0, 103.5))
    assert not b.deals and len(b.trade_pnls) == 3


def test_stop_loss_with_timeout_stops_the_deal_and_can_disable_the_bot() -> None:
    b = make(max_safety_orders=1, active_safety_orders=1, stop_loss_pct=5, stop_loss_timeout_candles=1, stop_and_disable=True)
    b.on_candle(flat(0, 100.0))                      # SL 95 from the average (100)
    b.on_candle(bar(1, 100.0, 100.0, 94.0, 94.5))    # SO1 at 99 fills: avg 99.33, SL 94.37, close above
    deal = b.deals["BTCUSDT"]
    assert deal.stop_price == approx(deal.average * 0.95) and deal.sl_breached_candles == 0
    b.on_candle(flat(2, 90.0))                       # breached once: the timeout holds it
    assert b.deals and deal.sl_breached_candles == 1
    b.on_candle(flat(3, 90.0))                       # still breached -> stop
    assert not b.deals and b.venue.book == {}
    # stop-and-disable: queued for the owner (worker or backtest) to pause the bot
    (disabled,) = b.take_breaches()
    assert (disabled.rule, disabled.state) == ("stop_and_disable", TradingState.PAUSED)
    (d,) = b.drain(T0).deals
    assert d["status"] == "STOPPED" and d["close_reason"] == "stop loss" and d["max_drawdown_pct"] > 5


def test_paused_bot_starts_no_deal_but_an_open_deal_still_exits() -> None:
    state = [TradingState.ACTIVE]
    # No cooldown: only the pause can keep the bot from opening the next deal at once.
    b = make(state=state, max_safety_orders=1, active_safety_orders=1, cooldown_s=0)
    b.on_candle(flat(0, 100.0))
    state[0] = TradingState.PAUSED
    b.on_candle(bar(1, 100.0, 102.0, 100.0, 101.8))  # TP 101.5 fills while paused
    assert not b.deals
    b.on_candle(flat(2, 100.0))
    assert not b.deals and not b.venue.book          # no new deal while paused
    state[0] = TradingState.ACTIVE
    b.on_candle(flat(3, 100.0))
    assert "BTCUSDT" in b.deals                      # resumed: the next deal opens at once


def test_every_order_passes_risk_and_reserved_funds_count_as_exposure() -> None:
    # equity 1000; cap the bot's exposure at 5 %: BO 10 + resting SO1 20 + SO2 30 = 60 > 50
    b = make(limits=RiskLimits(max_orders_per_minute=None, min_notional=1.0, fee_pct=0.0, max_bot_exposure_pct=5.0))
    b.on_candle(flat(0, 100.0))
    tags = sorted(o.tag for o in b.venue.open_orders() if o.tag.startswith("SO"))
    assert tags == ["SO1"]                           # SO2 denied: 10 + 20 reserved + 30 > 50
    assert b.denials["max_bot_exposure"] >= 1


def test_restart_continues_the_deal_with_its_resting_orders() -> None:
    b = make(active_safety_orders=2)
    b.on_candle(flat(0, 100.0))
    b.on_candle(bar(1, 100.0, 100.0, 98.5, 98.8))
    snap = b.snapshot(T0)
    again = make(active_safety_orders=2)
    again.restore(type(snap).model_validate_json(snap.model_dump_json()))
    assert {o.tag for o in again.venue.open_orders()} == {o.tag for o in b.venue.open_orders()}
    deal = again.deals["BTCUSDT"]
    assert deal.safety_filled == 1 and deal.average == approx(b.deals["BTCUSDT"].average)
    tp = deal.average * 1.015
    tags = sorted(o.tag for o in again.venue.open_orders())
    again.on_candle(bar(1, 1, 1, 1, 1))              # an old candle is ignored after restart
    assert deal.safety_filled == 1 and sorted(o.tag for o in again.venue.open_orders()) == tags
    again.on_candle(bar(2, 98.8, tp + 1, 98.8, tp + 0.5))
    assert not again.deals and again.venue.book == {}
    json.dumps(again.snapshot(T0).model_dump(mode="json"))


def test_config_snapshot_per_deal() -> None:
    b = make(max_safety_orders=1, active_safety_orders=1)
    b.on_candle(flat(0, 100.0))
    b.settings = DcaConfig(**{**WORKED, "take_profit_pct": 5})   # an edit: applies to new deals only
    b.on_candle(bar(1, 100.0, 100.0, 98.5, 98.8))
    (tp,) = [o for o in b.venue.open_orders() if o.tag.startswith("TP")]
    assert tp.price == approx(b.deals["BTCUSDT"].average * 1.015)


@pytest.mark.parametrize("bad,field", [({"deviation_pct": 0}, "deviation_pct"),
                                      ({"take_profit_steps": [(50, 1), (40, 2)]}, "take_profit_steps")])
def test_bad_dca_settings_name_the_field(bad: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        DcaConfig(**{**WORKED, **bad})


def test_a_candle_through_a_safety_order_and_the_old_take_profit_never_oversells() -> None:
    """SO1 (99) and the old TP (101.5) both trade in one wide candle: the safety fill is booked
    first, the old TP sells what it was sized for, and the new TP is sized on what is left."""
    b = make(active_safety_orders=1)
    b.on_candle(flat(0, 100.0))
    deal = b.deals["BTCUSDT"]
    b.on_candle(bar(1, 100.0, 102.0, 98.5, 100.0))
    assert deal.safety_filled == 1 and deal.tp_steps_filled == 0 and deal.status is DealStatus.TAKING_PROFIT
    held = b.portfolio.position("BTCUSDT").quantity
    assert held == approx(deal.quantity) and held == approx(20 / 99, rel=1e-9)   # the SO1 quantity is left
    tps = [o for o in b.venue.open_orders() if o.tag.startswith("TP")]
    assert sum(o.quantity for o in tps) == approx(held)                             # never more than held
    b.on_candle(bar(2, 100.0, 105.0, 100.0, 104.0))
    assert "BTCUSDT" not in b.deals and b.portfolio.position("BTCUSDT").quantity == approx(0.0, abs=1e-12)


def test_a_dip_after_a_partial_take_profit_averages_again() -> None:
    b = make(active_safety_orders=1, take_profit_steps=[[50, 1.0], [50, 3.0]])
    b.on_candle(flat(0, 100.0))
    deal = b.deals["BTCUSDT"]
    b.on_candle(bar(1, 100.0, 101.5, 100.0, 101.2))                 # TP1 (+1 %) only
    assert deal.tp_steps_filled == 1 and deal.status is DealStatus.TAKING_PROFIT
    b.on_candle(bar(2, 101.2, 101.2, 98.5, 98.8))                   # then SO1 at 99
    assert deal.safety_filled == 1 and deal.status is DealStatus.AVERAGING
    tps = [o for o in b.venue.open_orders() if o.tag.startswith("TP")]
    assert sum(o.quantity for o in tps) == approx(deal.quantity)


def test_loss_limits_move_a_dca_bot_like_a_signal_bot() -> None:
    """The risk monitor sees the DCA bot's mark-to-market equity: a daily loss over the limit pauses it,
    and its risk view carries the numbers for the dashboard."""
    from risk.monitor import RiskMonitor

    lim = RiskLimits(max_orders_per_minute=None, min_notional=1.0, fee_pct=0.0, daily_loss_value=15.0)
    b = DcaBot("dca", Mode.PAPER, ["BTCUSDT"], DcaConfig(**WORKED), None, PaperExecutor(0.0, 0.0),
               SimVenue(maker_fee_pct=0.0), RiskEngine(lim), Portfolio("dca", 1_000.0), lambda _b: TradingState.ACTIVE,
               monitor=RiskMonitor(lim, 1_000.0))
    b.on_candle(flat(0, 100.0))
    b.on_candle(bar(1, 100.0, 100.0, 84.0, 86.0))   # the whole ladder fills on the way down
    assert b.take_breaches() == []
    b.on_candle(flat(2, 80.0))                       # 1.889 BTC bought for 172.5: about -21.4 at 80
    assert [(x.rule, x.state) for x in b.take_breaches()] == [("daily_loss", TradingState.PAUSED)]
    view = b.snapshot(T0).risk
    assert view.daily_loss_limit == 15.0 and view.daily_loss == approx(172.5 - 1.889287 * 80, abs=1e-3)


def test_the_base_order_is_judged_at_the_deal_stop() -> None:
    """A per-trade loss ceiling is judged at the stop the deal will have, not at the whole notional."""
    lim = RiskLimits(max_orders_per_minute=None, min_notional=1.0, fee_pct=0.0, max_loss_per_trade_value=5.0)
    with_stop = make(limits=lim, stop_loss_pct=10)
    with_stop.on_candle(flat(0, 100.0))
    assert "BTCUSDT" in with_stop.deals                       # 10 USDT at a 10 % stop: 1 USDT at risk
    no_stop = make(limits=lim)
    no_stop.on_candle(flat(0, 100.0))
    assert "BTCUSDT" not in no_stop.deals and no_stop.denials["max_loss_per_trade"] == 1


def test_a_take_profit_that_fills_while_being_canceled_is_booked_before_the_close() -> None:
    """Live venues race: the take-profit may fill while Close all positions cancels it. The fill is
    booked first and the market close is sized on what is left (here: nothing, never an oversell)."""
    from core.types import Fill, Side

    class RacyVenue(SimVenue):
        late: list = []

        def cancel(self, client_order_id: str):  # type: ignore[no-untyped-def]
            o = self.book.pop(client_order_id, None)
            if o is not None and o.tag.startswith("TP"):  # it filled at the venue instead
                self.late.append((o, Fill(o.client_order_id, o.bot, o.symbol, Side(o.side), o.quantity, o.price,
                                          0.0, "USDT", T0)))
                return None
            return o

        def take(self, symbol: str | None = None):  # type: ignore[no-untyped-def]
            out, self.late = self.late, []
            return out

    b = DcaBot("dca", Mode.PAPER, ["BTCUSDT"], DcaConfig(**WORKED), None, PaperExecutor(0.0, 0.0),
               RacyVenue(maker_fee_pct=0.0), RiskEngine(OPEN), Portfolio("dca", 1_000.0), lambda _b: TradingState.ACTIVE)
    b.on_candle(flat(0, 100.0))
    sent = b.orders_sent
    assert b.flatten("test")
    assert b.portfolio.position("BTCUSDT").quantity == approx(0.0, abs=1e-12)
    assert b.orders_sent == sent            # the take-profit closed it: no market order on top
    (closed,) = b.drain(T0).deals
    assert closed["close_reason"] == "take profit"
