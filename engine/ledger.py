"""What every bot does around an order, in one place: signal bots (``engine.bot.Bot``) and DCA bots
(``engine.dca_bot.DcaBot``) both inherit it and keep only what differs (signals vs deals).

* the risk context of an order: the bot's own figures plus, for entries, the cross-bot view
  (the mode's exposure and open positions, market health, correlations, futures margin) from the
  worker's ``RiskEnv`` — the same for both kinds of bot;
* the risk decision, recorded (denials always, approvals when records are kept);
* booking fills into the portfolio, closed trades (count, wins, P&L window, the monitor's losing
  streak), marking to market (high-water, drawdown, daily equity, the monitor's loss limits);
* breaches: the monitor's verdicts are *queued* (``take_breaches``), never called back; the owner
  (the worker, or a backtest's ``BacktestControl``) applies them after the bot's step. Until then
  the bot already obeys the state a queued breach asks for (``state()``), so the rest of the step
  cannot enter a position the breach forbids;
* the snapshot fields both bots share, restore and drain.
"""
from __future__ import annotations

import math
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Callable, Protocol

from core.clock import utc_day
from core.portfolio import Portfolio
from core.types import (
    ControlState,
    Fill,
    Mode,
    Order,
    OrderPurpose,
    OrderStatus,
    Position,
    Trade,
    TradingState,
)
from risk.engine import MARKET_OK, NO_PORTFOLIO, MarketStatus, PortfolioView, RiskContext, RiskEngine
from risk.limits import RiskLimits, limits_view, quote_cap, tighten
from risk.monitor import Breach, RiskMonitor
from risk.states import is_more_restrictive
from state.models import (
    BotSnapshot,
    BotUpdate,
    ControlRecord,
    EquityRecord,
    FillRecord,
    OrderRecord,
    RiskDecisionRecord,
    RiskView,
    TradeRecord,
)

if TYPE_CHECKING:
    from executors.base import Executor
    from executors.funding import FundingModel

TRADE_PNLS_KEPT = 5000
EXIT_REFUSALS_HALT = 3
DAYS_KEPT = 400
_ACTIVE = TradingState.ACTIVE
_ENTRY = OrderPurpose.ENTRY
_REJECTED = OrderStatus.REJECTED


class RiskEnv(Protocol):
    """What the worker knows beyond one bot: the mode's positions, market health, correlations."""

    def portfolio_view(self, bot: "Ledger") -> PortfolioView: ...

    def market_status(self, symbol: str, now_ms: int, bot: "Ledger | None" = None) -> MarketStatus: ...

    def margin(self, bot: "Ledger") -> tuple[float, float]: ...

    def correlation(self, a: str, b: str) -> float | None: ...


StateOf = Callable[[Any], TradingState]


def build_risk_view(lim: RiskLimits, mon: RiskMonitor | None, equity: float, exposure: float,
                    exposure_limit: float | None, high_water: float, drawdown_pct: float, breaches: list[str],
                    venue_margin: tuple[float | None, float | None] = (None, None)) -> RiskView:
    """A bot's risk status for the dashboard: the monitor's loss figures against their limits;
    ``high_water``/``drawdown_pct`` stand in when there is no monitor."""
    m = mon.s if mon is not None else None
    return RiskView(
        high_water=m.high_water if m else high_water,
        drawdown_pct=mon.drawdown_pct(equity) if mon else drawdown_pct, max_drawdown_pct=lim.max_drawdown_pct,
        day_open=m.day_open if m else 0.0, daily_loss=max(0.0, (m.day_open - equity)) if m and m.day_open else 0.0,
        daily_loss_limit=quote_cap(lim.daily_loss_value, lim.daily_loss_pct, m.day_open if m else equity),
        week_open=m.week_open if m else 0.0,
        weekly_loss=max(0.0, (m.week_open - equity)) if m and m.week_open else 0.0,
        weekly_loss_limit=quote_cap(lim.weekly_loss_value, lim.weekly_loss_pct, m.week_open if m else equity),
        exposure=exposure, exposure_limit=exposure_limit,
        consecutive_losses=m.consecutive_losses if m else 0, max_consecutive_losses=lim.max_consecutive_losses,
        margin_utilization_pct=venue_margin[0], liquidation_distance_pct=venue_margin[1],
        breaches=list(breaches), limits=limits_view(lim),
        monitor=mon.dump() if mon is not None else {},
    )


def finite(x: float | None) -> float:
    return x if x is not None and math.isfinite(x) else 0.0


class Ledger:
    """The bookkeeping half of a bot (see the module docstring). ``records=False`` (backtests): no Redis
    records are buffered; closed trades go to ``closed_trades`` instead (a backtest keeps them all)."""

    interval_ms: int
    last_candle_time: int
    candles_seen: int

    def __init__(self, name: str, mode: Mode, portfolio: Portfolio, risk: RiskEngine, executor: "Executor",
                 state_of: StateOf, monitor: RiskMonitor | None = None, env: RiskEnv | None = None,
                 records: bool = True) -> None:
        self.name = name
        self.mode = mode
        self.portfolio = portfolio
        self.risk = risk
        self.executor = executor
        self.state_of = state_of
        self.monitor = monitor  # None: no loss-limit state moves (backtests without such limits)
        self.env = env  # None: no other bots, no live market health (backtests)
        self.records = records
        self.control = ControlState()  # the bot's own control record, as the worker last set it
        self.saved_at: int | None = None  # the restored snapshot's time (None: a fresh bot)
        self.reduce_only_exits = False  # futures venues: exits go out reduce-only
        self.leverage = 1.0  # futures venues: the leverage set on the venue
        # futures venues: (margin utilization %, % of the way to liquidation) as last seen on the venue
        self.venue_margin: tuple[float | None, float | None] = (None, None)
        # simulated USD-M bots (paper, backtest): funding at a fixed rate (executors.funding); None: none
        self.funding_model: FundingModel | None = None
        # Venue bots: what is left after an exit below what the venue can sell is dust; it is written
        # off into the reconciliation baseline under this key for the symbol (the base asset on spot,
        # the symbol on futures), committed with the books (BotUpdate.dust). None: no venue.
        self.dust_key: Callable[[str], str] | None = None
        self.trade_pnls: list[float] = []
        self.trade_count = 0
        self.wins = 0
        self.orders_sent = 0
        self.denials: Counter[str] = Counter()
        self.high_water = portfolio.starting_balance
        self.max_drawdown_pct = 0.0
        self.daily_equity: dict[str, float] = {}
        self.closed_trades: list[Trade] = []
        self.breaches: list[str] = []  # the last ten, as the dashboard shows them
        self._pending: list[Breach] = []
        self._refused: dict[str, tuple[int, int]] = {}  # symbol -> (exits the venue refused in a row, next try)
        self._held = _ACTIVE  # the tightest state a queued breach asks for
        self._seq = 0
        self._why_not = ""  # last_denial
        self._out = BotUpdate(snapshot=None)  # type: ignore[arg-type]  # filled by drain()
        self._marks: list[tuple[int, float]] = []  # (time, equity) of each mark since the last drain
        # the control record a snapshot repeats while it does not change, built once (one a write)
        self._control_seen: tuple[object, ...] = ()
        self._control_record = ControlRecord()

    # ---- state ------------------------------------------------------------------------------
    def state(self) -> TradingState:
        """The state the bot obeys now: the owner's (global, mode, bot) and any queued breach's."""
        s = self.state_of(self)
        held = self._held
        return s if held is _ACTIVE or not is_more_restrictive(held, s) else held

    def queue_breaches(self, breaches: list[Breach]) -> None:
        for b in breaches:
            self.breaches.append(f"{b.rule}: {b.reason}")
            del self.breaches[:-10]
            self._pending.append(b)
            if is_more_restrictive(b.state, self._held):
                self._held = b.state

    @property
    def breaches_queued(self) -> bool:
        """Whether ``take_breaches`` has anything (asked after every candle of every bot)."""
        return bool(self._pending)

    def take_breaches(self) -> list[Breach]:
        """The breaches queued since the last call, for the owner to apply (flatten, tighten, audit)."""
        out, self._pending, self._held = self._pending, [], _ACTIVE
        return out

    def tighten_limits(self, changes: dict[str, object]) -> None:
        """Lower limits at once; raising is refused (it needs a restart with a new config)."""
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()}
        self.risk.limits = tighten(self.risk.limits, fixed)
        if self.monitor is not None:
            self.monitor.limits = self.risk.limits

    # ---- the risk decision ---------------------------------------------------------------------
    def context(self, symbol: str, pos: Position, price: float, equity: float, quote: float, now: int,
                stop: float | None, exposure: float, entry: bool, last_entry: bool = True) -> RiskContext:
        """What the risk engine compares an order against. Exits are judged on state, position and
        price only (an exit must never wait on, or fail with, the venue requests entry rules need);
        entries also see the other bots of the mode, market health, correlations and margin.
        ``last_entry=False``: the minimum entry interval does not apply (a DCA ladder's orders)."""
        mon, env = self.monitor, self.env
        m = mon.s if mon is not None else None
        if env is None or not entry:
            if m is None:  # positional: the cheap init (a backtest builds one per order)
                return RiskContext(self.state(), pos, price, equity, quote, now, exposure, None, None, None, None,
                                   0, stop)
            return RiskContext(self.state(), pos, price, equity, quote, now, exposure,
                               m.last_entry_ms if last_entry else None, m.high_water, m.day_open or None,
                               m.week_open or None, m.consecutive_losses, stop)
        margin = env.margin(self) if self.leverage > 1 else (0.0, 0.0)
        risk = self.risk
        return RiskContext(
            self.state(), pos, price, equity, quote, now, bot_exposure_value=exposure,
            last_entry_ms=m.last_entry_ms if m and last_entry else None,
            high_water=m.high_water if m else None,
            day_open_equity=(m.day_open or None) if m else None,
            week_open_equity=(m.week_open or None) if m else None,
            consecutive_losses=m.consecutive_losses if m else 0,
            stop_price=stop, leverage=self.leverage, margin_used=margin[0], margin_balance=margin[1],
            # gathered only for the rules that read them (a portfolio view walks every bot of the mode)
            portfolio=env.portfolio_view(self) if risk.reads_portfolio else NO_PORTFOLIO,
            market=env.market_status(symbol, now, self) if risk.reads_market else MARKET_OK,
            correlation=env.correlation,
        )

    def decide(self, order: Order, ctx: RiskContext, order_record: bool = True, count_entry: bool = True) -> bool:
        """Run the risk check and record the decision (a denial always: the signal note quotes it).
        ``order_record=False``: a refused order is not an order of the bot (a ghost signal's);
        ``count_entry=False``: an allowed entry does not restart the minimum entry interval (a DCA
        deal counts its start itself, not each order of its ladder)."""
        d = self.risk.check(order, ctx)
        purpose = order.purpose
        if not d.allowed:
            self._why_not = d.detail
            order.status = _REJECTED
            self.denials[d.rule] += 1
            self._out.risk.append(RiskDecisionRecord(time=ctx.now_ms, allowed=False, rule=d.rule, detail=d.detail,
                                                     client_order_id=order.client_order_id, purpose=purpose.value))
            if self.records and order_record:
                self._out.orders.append(OrderRecord.of(order))
            if not self.records:
                del self._out.risk[:-1]  # only the last denial is read (signal notes); bound memory
            return False
        self._why_not = ""
        if purpose is _ENTRY and count_entry and self.monitor is not None:
            self.monitor.on_entry(ctx.now_ms)
        if self.records:
            self._out.risk.append(RiskDecisionRecord(time=ctx.now_ms, allowed=True, rule=d.rule, detail=d.detail,
                                                     client_order_id=order.client_order_id, purpose=purpose.value))
        return True

    @property
    def last_denial(self) -> str:
        """Why the last order did not go through: the risk rule that denied it, or what the venue said."""
        return self._why_not

    # ---- exits the venue refuses ------------------------------------------------------------------
    def exit_waits(self, symbol: str) -> bool:
        """After the venue refused an exit, the next attempt waits 2, 4, 8, ... candles (a phantom
        position's reduce-only exit would otherwise be sent and refused on every candle, forever)."""
        seen = self._refused.get(symbol)
        return seen is not None and self.candles_seen < seen[1]

    def exit_outcome(self, symbol: str, order: Order, filled: bool) -> None:
        """Count an exit the venue refused (the risk engine had allowed it); the third in a row halts the
        bot with the reason, so it says why instead of trying forever."""
        if filled or order.status is not _REJECTED:
            self._refused.pop(symbol, None)
            return
        n = self._refused.get(symbol, (0, 0))[0] + 1
        self._refused[symbol] = (n, self.candles_seen + 2 ** n)
        if n >= EXIT_REFUSALS_HALT:
            self.queue_breaches([Breach(
                "exit_refused", TradingState.HALTED,
                f"the venue refused the exit of {symbol} {n} times in a row (last: {order.reason}); the position "
                "may not be on the venue: check the Live tab's reconciliation, then adopt, ignore or close")])

    # ---- books ------------------------------------------------------------------------------------
    def record_order(self, order: Order) -> None:
        if self.records:
            self._out.orders.append(OrderRecord.of(order))

    def book(self, fill: Fill, reason: str, trade_tag: str) -> Trade | None:
        """Book one fill into the portfolio; a closed part of a position is recorded as a trade."""
        if self.records:
            self._out.fills.append(FillRecord.of(fill))
        trade = self.portfolio.apply(fill, reason)
        if trade is not None:
            self.record_trade(trade, trade_tag)
        return trade

    def record_trade(self, trade: Trade, tag: str) -> None:
        """Count a closed trade, then let the monitor judge the losing streak (queued)."""
        self.trade_count += 1
        self.wins += trade.pnl > 0
        pnls = self.trade_pnls
        pnls.append(trade.pnl)
        if len(pnls) > TRADE_PNLS_KEPT:
            del pnls[:-TRADE_PNLS_KEPT]
        if self.monitor is not None:
            self.queue_breaches(self.monitor.on_trade_closed(trade.pnl))
        if self.records:
            self._out.trades.append(TradeRecord.of(trade, signal_id=tag))
        else:
            self.closed_trades.append(trade)

    def write_off(self, symbol: str, price: float) -> float:
        """What is left of ``symbol`` after an exit that a venue cannot sell leaves the position; its
        value stays in equity (the coins stay held) and it goes to the reconciliation baseline with the
        next commit (``dust_key``). Returns it."""
        pos = self.portfolio.positions.get(symbol)
        if pos is None or not pos.is_open:
            return 0.0
        dust = pos.quantity
        self.portfolio.positions[symbol] = Position(symbol)
        self.portfolio.quote += dust * price
        if self.dust_key is not None:
            self._out.dust.append((self.dust_key(symbol), dust))
        return dust

    def settle_funding(self, symbol: str, now: int, mark: float) -> None:
        """Simulated USD-M bots: the funding due on a candle of ``symbol`` closing at ``now`` (at ``mark``),
        booked apart from fees (``executors.funding``: after the candle's intrabar exits, before its close's
        orders)."""
        fm = self.funding_model
        if fm is None:
            return
        pos = self.portfolio.positions.get(symbol)
        amount = fm.due(symbol, now, pos.quantity if pos is not None else 0.0, mark)
        if amount:
            self.portfolio.apply_funding(amount)

    def mark(self, now: int, equity: float) -> None:
        """Mark to market: the monitor's loss limits (queued breaches), high-water, drawdown, daily equity."""
        if self.monitor is not None:
            self.queue_breaches(self.monitor.observe(now, equity))
        if not self.records:
            return  # a backtest computes its equity curve and drawdown itself (backtest.engine)
        self.high_water = max(self.high_water, equity)
        if self.high_water > 0:
            self.max_drawdown_pct = max(self.max_drawdown_pct, 100.0 * (self.high_water - equity) / self.high_water)
        day = utc_day(now)
        self.daily_equity[day] = equity
        if len(self.daily_equity) > DAYS_KEPT:
            for k in sorted(self.daily_equity)[:-DAYS_KEPT]:
                del self.daily_equity[k]
        self._marks.append((now, equity))  # an EquityRecord only if it is written (drain)

    # ---- outputs ----------------------------------------------------------------------------------
    def risk_view(self, equity: float, exposure: float, exposure_limit: float | None) -> RiskView:
        return build_risk_view(self.risk.limits, self.monitor, equity, exposure, exposure_limit, self.high_water,
                               self.max_drawdown_pct, self.breaches, self.venue_margin)

    def control_record(self) -> ControlRecord:
        """The bot's own control record as its snapshot shows it (the same one while it is unchanged)."""
        c = self.control
        seen = (c.state, c.set_by, c.set_at, c.reason, c.then)
        if seen != self._control_seen:
            self._control_seen, self._control_record = seen, ControlRecord.of(c)
        return self._control_record

    def base_snapshot(self, now_ms: int, equity: float, exposure: float, exposure_limit: float | None,
                      **own: Any) -> BotSnapshot:
        """The snapshot fields every bot has; ``own`` adds (or overrides) the bot kind's own."""
        pf = self.portfolio
        n = self.trade_count
        return BotSnapshot(
            name=self.name, mode=self.mode.value, updated_at=now_ms, books_at=int(time.time() * 1000),
            last_candle_time=self.last_candle_time,
            control=self.control_record(), effective_state=self.state(), quote_asset=pf.quote_asset,
            starting_balance=pf.starting_balance, quote_balance=pf.quote, equity=equity, high_water=self.high_water,
            realized_pnl=pf.realized_pnl, fees_paid=pf.fees_paid, funding=pf.funding, trade_count=n, wins=self.wins,
            win_rate_pct=100.0 * self.wins / n if n else 0.0, trade_pnls=self.trade_pnls, denials=dict(self.denials),
            orders_sent=self.orders_sent, max_drawdown_pct=self.max_drawdown_pct, daily_equity=self.daily_equity,
            risk=self.risk_view(equity, exposure, exposure_limit), **own,
        )

    def restore_books(self, snap: BotSnapshot) -> None:
        """The shared part of continuing from a snapshot (after a restart or a crash)."""
        pf = self.portfolio
        self.saved_at = snap.books_at or snap.updated_at  # what the books hold (BotSnapshot.books_at)
        pf.starting_balance = snap.starting_balance or pf.starting_balance  # a live bot's allocation
        pf.quote, pf.realized_pnl, pf.fees_paid = snap.quote_balance, snap.realized_pnl, snap.fees_paid
        pf.funding = snap.funding
        if self.funding_model is not None and snap.last_candle_time:
            self.funding_model.resume(snap.last_candle_time + self.interval_ms)
        self.trade_count, self.wins = snap.trade_count, snap.wins
        self.trade_pnls = list(snap.trade_pnls)
        self.high_water = snap.high_water or pf.starting_balance
        self.max_drawdown_pct = snap.max_drawdown_pct
        self.daily_equity = dict(snap.daily_equity)
        self.denials = Counter(snap.denials)
        self.orders_sent = snap.orders_sent
        if self.monitor is not None and snap.risk is not None and snap.risk.monitor:
            self.monitor.load(snap.risk.monitor)
        if snap.risk is not None:
            self.breaches = list(snap.risk.breaches)

    def allocate(self, quote: float) -> None:
        """A fresh live bot's money: its allocation on the venue, not the paper balance (so its loss and
        drawdown limits bind on what it really risks)."""
        pf = self.portfolio
        pf.starting_balance = pf.quote = quote
        self.high_water = quote
        if self.monitor is not None:
            self.monitor.s.high_water = quote

    def snapshot(self, now_ms: int) -> BotSnapshot:
        raise NotImplementedError

    def has_records(self) -> bool:
        """Anything besides marks produced since the last drain (engine.snapshot_policy writes it at once)."""
        o = self._out
        return bool(o.orders or o.fills or o.trades or o.signals or o.risk or o.deals or o.dust)

    def drop_marks(self) -> None:
        """This step's marks are not written (engine.snapshot_policy): the next snapshot written carries them."""
        self._marks.clear()

    def drain(self, now_ms: int) -> BotUpdate:
        """Everything produced since the last drain, with a fresh snapshot (one Redis transaction)."""
        out = self._out
        out.snapshot = self.snapshot(now_ms)
        out.equity = [EquityRecord(time=t, equity=e) for t, e in self._marks]
        self._marks = []
        self._out = BotUpdate(snapshot=None)  # type: ignore[arg-type]
        return out
