"""The risk engine: every order passes check() before an executor sees it, in every mode.

Entries must pass every limit. Exits and flattening orders are allowed *by the trading state*
(anything but HALTED) and must reduce the position; they are never blocked by loss, exposure
or rate limits, so a stop can always be taken. Each decision carries the rule and the numbers
it compared, so a denial explains itself.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from core.types import Order, OrderPurpose, Position, Side, TradingState
from risk.limits import RiskLimits

__all__ = ["ALLOW", "MARKET_OK", "NO_PORTFOLIO", "Decision", "MarketStatus", "PortfolioView", "RiskContext",
           "RiskEngine", "RiskLimits", "worst_case_loss"]


@dataclass(slots=True, frozen=True)
class MarketStatus:
    """Market and system health the order depends on (filled by the worker / adapter)."""

    price_age_s: float | None = None  # since the last candle arrived, on the wall clock
    spread_bps: float | None = None
    api_errors_last_minute: int = 0
    stream_up: bool = True
    reconciliation_drift_pct: float = 0.0


@dataclass(slots=True, frozen=True)
class PortfolioView:
    """What every bot of this bot's mode holds right now (for cross-bot limits)."""

    mode_exposure_value: float = 0.0
    open_positions: int = 0
    open_symbols: tuple[str, ...] = ()


# What a context holds for the rules that are off (frozen, so one shared instance is safe)
NO_PORTFOLIO = PortfolioView()
MARKET_OK = MarketStatus()


# Not frozen: a frozen dataclass's __init__ pays object.__setattr__ per field (~5 µs for these
# 20), on every order of a backtest. Nothing mutates a context after building it.
@dataclass(slots=True)
class RiskContext:
    state: TradingState
    position: Position
    price: float
    equity: float
    quote_balance: float
    now_ms: int
    bot_exposure_value: float = 0.0
    last_entry_ms: int | None = None
    high_water: float | None = None
    day_open_equity: float | None = None
    week_open_equity: float | None = None
    consecutive_losses: int = 0
    stop_price: float | None = None
    leverage: float = 1.0
    margin_used: float = 0.0
    margin_balance: float = 0.0
    portfolio: PortfolioView = NO_PORTFOLIO  # frozen, so one shared default is safe
    market: MarketStatus = MARKET_OK
    correlation: Callable[[str, str], float | None] | None = None


@dataclass(slots=True, frozen=True)
class Decision:
    allowed: bool
    rule: str
    detail: str


ALLOW = "ok"


def worst_case_loss(qty: float, price: float, stop: float | None, side: Side, fee_pct: float, slip_bps: float) -> float:
    """Loss if the trade exits at its stop (the whole notional without one), fees and slippage included."""
    notional = qty * price
    costs = notional * (fee_pct / 100.0) * 2 + notional * slip_bps / 10_000.0 * 2
    if stop is None:
        return notional + costs
    move = (price - stop) if side is Side.BUY else (stop - price)
    return max(0.0, move) * qty + costs


def liquidation_estimate(entry: float, leverage: float, long: bool, mmr: float = 0.004) -> float:
    """Isolated-margin liquidation price of a fresh position (Binance's formula with one tier)."""
    return entry * (1 - 1 / leverage + mmr) if long else entry * (1 + 1 / leverage - mmr)


def _in_hours(now_ms: int, window: tuple[int, int]) -> bool:
    hour = datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc).hour
    start, end = window
    return start <= hour < end if start < end else (hour >= start or hour < end)


def _over(value: float, limit: float | None) -> bool:
    return limit is not None and value > limit * (1 + 1e-9)


_ALLOWED = Decision(True, ALLOW, "")
# Enum members looked up once: on Python 3.11 each `Side.BUY` costs ~100 ns, on every order.
_BUY, _SELL, _ENTRY = Side.BUY, Side.SELL, OrderPurpose.ENTRY
_ENTRY_STATES = frozenset(s for s in TradingState if s.allows_entries)
_EXIT_STATES = frozenset(s for s in TradingState if s.allows_exits)  # an approval without its text (explain=False)


class RiskEngine:
    """``explain=False`` (backtests, which keep no approval records) skips formatting the text
    of *allowed* decisions; every check still runs and denials are always explained."""

    def __init__(self, limits: RiskLimits, explain: bool = True) -> None:
        self.limits = limits
        self.explain = explain
        self._recent: deque[int] = deque()
        # A live bot's go-live stage (risk.stages.StageGate): judged on entries before the other limits;
        # it can only refuse. None: no stage applies (every other bot, backtests).
        self.gate: Callable[[Order, RiskContext], Decision | None] | None = None

    @property
    def limits(self) -> RiskLimits:
        return self._limits

    @limits.setter
    def limits(self, lim: RiskLimits) -> None:
        # Which groups of rules are switched on, worked out once per limits object (they change
        # only on a dashboard tightening), so limits that are off cost nothing per order.
        self._limits = lim
        self._gate_symbol = lim.symbol_whitelist is not None or lim.blackout_hours_utc is not None
        self._gate_market = (lim.max_price_age_s is not None or lim.max_spread_bps is not None
                             or lim.max_api_errors_per_minute is not None or lim.require_market_stream
                             or lim.max_reconciliation_drift_pct is not None)
        self._gate_losses = any(x is not None for x in (
            lim.daily_loss_value, lim.daily_loss_pct, lim.weekly_loss_value, lim.weekly_loss_pct,
            lim.max_drawdown_pct, lim.max_consecutive_losses))
        self._gate_portfolio = (lim.max_bot_exposure_pct is not None or lim.max_mode_exposure_value is not None
                                or lim.max_concurrent_positions is not None)
        self._gate_per_trade = lim.max_loss_per_trade_value is not None or lim.max_loss_per_trade_pct is not None

    @property
    def reads_portfolio(self) -> bool:
        """Whether an entry's check reads the other bots' positions (``RiskContext.portfolio``): a
        caller whose bot has none of those rules need not gather them (it walks every bot of the mode)."""
        return self._gate_portfolio or self._limits.max_correlation is not None

    @property
    def reads_market(self) -> bool:
        """Whether an entry's check reads ``RiskContext.market`` (a venue bot's costs a spread request)."""
        return self._gate_market

    def check(self, order: Order, ctx: RiskContext) -> Decision:
        decision = self._exit(order, ctx) if order.purpose is not _ENTRY else self._entry(order, ctx)
        if decision.allowed and self.limits.max_orders_per_minute is not None:
            self._recent.append(ctx.now_ms)  # only the order-rate rule reads it: unbounded otherwise
        return decision

    # ---- exits: allowed by state, must reduce ------------------------------------------------
    def _exit(self, order: Order, ctx: RiskContext) -> Decision:
        if ctx.state not in _EXIT_STATES:
            return Decision(False, "trading_state", f"state {ctx.state.value} allows no orders")
        pos_qty = ctx.position.quantity
        reduces = (order.side is _SELL and pos_qty > 0) or (order.side is _BUY and pos_qty < 0)
        if not reduces or order.quantity > abs(pos_qty) * (1 + 1e-9):
            return Decision(False, "reduce_only",
                            f"exit of {order.quantity:.8g} {order.side.value} does not reduce position {pos_qty:.8g}")
        if order.quantity <= 0 or ctx.price <= 0:
            return Decision(False, "bad_order", f"quantity {order.quantity} at price {ctx.price}")
        if not self.explain:
            return _ALLOWED
        return Decision(True, ALLOW, f"{order.purpose.value} {order.side.value} {order.quantity:.8g} @ {ctx.price:.8g}")

    # ---- entries: every limit ---------------------------------------------------------------
    def _entry(self, order: Order, ctx: RiskContext) -> Decision:  # noqa: C901 - one rule a branch, in order
        lim = self.limits
        if ctx.state not in _ENTRY_STATES:
            return Decision(False, "trading_state", f"state {ctx.state.value} allows no entries")
        if order.quantity <= 0 or ctx.price <= 0:
            return Decision(False, "bad_order", f"quantity {order.quantity} at price {ctx.price}")
        if self.gate is not None:
            d = self.gate(order, ctx)
            if d is not None:
                return d
        if self._gate_symbol:
            d = self._symbol_rules(order, ctx)
            if d is not None:
                return d
        if self._gate_market:
            d = self._market_rules(ctx)
            if d is not None:
                return d
        eq = ctx.equity
        if self._gate_losses:
            d = self._loss_rules(ctx)
            if d is not None:
                return d
        return self._exposure_rules(order, ctx, lim, eq)

    def _symbol_rules(self, order: Order, ctx: RiskContext) -> Decision | None:
        lim = self.limits
        if lim.symbol_whitelist is not None and order.symbol not in lim.symbol_whitelist:
            return Decision(False, "symbol_whitelist", f"{order.symbol} not in {list(lim.symbol_whitelist)}")
        if lim.blackout_hours_utc is not None and _in_hours(ctx.now_ms, lim.blackout_hours_utc):
            s, e = lim.blackout_hours_utc
            return Decision(False, "blackout_hours", f"entries are off {s:02d}:00-{e:02d}:00 UTC")
        return None

    def _market_rules(self, ctx: RiskContext) -> Decision | None:
        lim = self.limits
        m = ctx.market
        if lim.max_price_age_s is not None and m.price_age_s is not None:
            age = m.price_age_s
            if age > lim.max_price_age_s:
                return Decision(False, "stale_price", f"last price {age:.1f} s old > {lim.max_price_age_s:g} s")
        if lim.max_spread_bps is not None and m.spread_bps is not None and m.spread_bps > lim.max_spread_bps:
            return Decision(False, "wide_spread", f"spread {m.spread_bps:.1f} bps > {lim.max_spread_bps:g} bps")
        if lim.max_api_errors_per_minute is not None and m.api_errors_last_minute > lim.max_api_errors_per_minute:
            return Decision(False, "api_errors", f"{m.api_errors_last_minute} API errors in the last minute "
                                                 f"> {lim.max_api_errors_per_minute}")
        if lim.require_market_stream and not m.stream_up:
            return Decision(False, "stream_down", "market data stream is down")
        if _over(m.reconciliation_drift_pct, lim.max_reconciliation_drift_pct):
            return Decision(False, "reconciliation_drift", f"drift {m.reconciliation_drift_pct:.2f}% "
                                                           f"> {lim.max_reconciliation_drift_pct:g}%")
        return None

    def _loss_rules(self, ctx: RiskContext) -> Decision | None:
        # Loss limits also move the state (risk.monitor); here they stop entries at once.
        lim = self.limits
        eq = ctx.equity
        if ctx.day_open_equity:
            loss = ctx.day_open_equity - eq
            if _over(loss, lim.daily_loss_value) or _over(100 * loss / ctx.day_open_equity, lim.daily_loss_pct):
                return Decision(False, "daily_loss", f"today's loss {loss:.2f} ({100 * loss / ctx.day_open_equity:.2f}%) "
                                                     f"over the limit ({_lim(lim.daily_loss_value, lim.daily_loss_pct)})")
        if ctx.week_open_equity:
            loss = ctx.week_open_equity - eq
            if _over(loss, lim.weekly_loss_value) or _over(100 * loss / ctx.week_open_equity, lim.weekly_loss_pct):
                return Decision(False, "weekly_loss", f"this week's loss {loss:.2f} over the limit "
                                                      f"({_lim(lim.weekly_loss_value, lim.weekly_loss_pct)})")
        if ctx.high_water and lim.max_drawdown_pct is not None:
            dd = 100 * (ctx.high_water - eq) / ctx.high_water
            if dd >= lim.max_drawdown_pct:
                return Decision(False, "max_drawdown", f"drawdown {dd:.2f}% >= {lim.max_drawdown_pct:g}% "
                                                       f"(high-water {ctx.high_water:.2f})")
        if lim.max_consecutive_losses is not None and ctx.consecutive_losses >= lim.max_consecutive_losses:
            return Decision(False, "consecutive_losses", f"{ctx.consecutive_losses} losses in a row "
                                                         f">= {lim.max_consecutive_losses}")
        return None

    def _exposure_rules(self, order: Order, ctx: RiskContext, lim: RiskLimits, eq: float) -> Decision:  # noqa: C901
        notional = order.quantity * ctx.price
        if notional < lim.min_notional:
            return Decision(False, "min_notional", f"notional {notional:.2f} < {lim.min_notional:.2f}")
        pos_qty = ctx.position.quantity
        if order.side is _SELL and pos_qty <= 0 and not lim.allow_short:
            return Decision(False, "no_short", "short entries are not allowed on spot")
        if _over(ctx.leverage, lim.max_leverage):
            return Decision(False, "max_leverage", f"leverage {ctx.leverage:g}x > {lim.max_leverage:g}x")
        if ctx.leverage > 1 and ctx.stop_price is not None:
            # A stop must trigger well before liquidation: buffer % of the entry-to-liquidation distance.
            liq = liquidation_estimate(ctx.price, ctx.leverage, order.side is _BUY)
            room = abs(ctx.price - liq) * (1 - lim.liquidation_buffer_pct / 100)
            if abs(ctx.price - ctx.stop_price) > room:
                return Decision(False, "liquidation_buffer",
                                f"stop {ctx.stop_price:.8g} is past {100 - lim.liquidation_buffer_pct:g}% of the way "
                                f"to liquidation ≈ {liq:.8g} at {ctx.leverage:g}x")
        signed = order.quantity if order.side is _BUY else -order.quantity
        after = abs(pos_qty + signed) * ctx.price
        if _over(after, lim.max_position_value):
            return Decision(False, "max_position_value",
                            f"position value {after:.2f} > {lim.max_position_value:.2f}")
        if lim.max_position_pct is not None:
            cap = lim.max_position_pct / 100.0 * eq
            if _over(after, cap):
                return Decision(False, "max_position_pct", f"position value {after:.2f} > {lim.max_position_pct:g}% "
                                                           f"of equity {eq:.2f} = {cap:.2f}")
        if self._gate_portfolio:
            bot_after = ctx.bot_exposure_value - abs(pos_qty) * ctx.price + after
            if lim.max_bot_exposure_pct is not None and _over(bot_after, lim.max_bot_exposure_pct / 100.0 * eq):
                return Decision(False, "max_bot_exposure", f"bot exposure {bot_after:.2f} > "
                                                           f"{lim.max_bot_exposure_pct:g}% of equity {eq:.2f}")
            mode_after = ctx.portfolio.mode_exposure_value + notional
            if _over(mode_after, lim.max_mode_exposure_value):
                return Decision(False, "max_mode_exposure", f"mode exposure {mode_after:.2f} > "
                                                            f"{lim.max_mode_exposure_value:.2f}")
            if (lim.max_concurrent_positions is not None and pos_qty == 0
                    and ctx.portfolio.open_positions >= lim.max_concurrent_positions):
                return Decision(False, "max_concurrent_positions", f"{ctx.portfolio.open_positions} positions open "
                                                                   f">= {lim.max_concurrent_positions}")
        worst = None
        if self._gate_per_trade:
            worst = worst_case_loss(order.quantity, ctx.price, ctx.stop_price, order.side, lim.fee_pct,
                                    lim.slippage_bps)
            per_trade_pct_cap = None if lim.max_loss_per_trade_pct is None else lim.max_loss_per_trade_pct / 100 * eq
            for cap in (lim.max_loss_per_trade_value, per_trade_pct_cap):
                if _over(worst, cap):
                    at = f"stop {ctx.stop_price:.8g}" if ctx.stop_price is not None else "no stop: whole notional"
                    return Decision(False, "max_loss_per_trade", f"worst case {worst:.2f} ({at}) > {cap:.2f}")
        if lim.min_entry_interval_s is not None and ctx.last_entry_ms is not None:
            since = (ctx.now_ms - ctx.last_entry_ms) / 1000
            if since < lim.min_entry_interval_s:
                return Decision(False, "min_entry_interval", f"{since:.0f} s since the last entry "
                                                             f"< {lim.min_entry_interval_s:g} s")
        if lim.check_balance and order.side is _BUY and ctx.leverage <= 1:
            # Worst fill price (slippage) plus the fee: the quote balance must never go negative.
            need = notional * (1 + lim.slippage_bps / 10_000.0) * (1 + lim.fee_pct / 100.0)
            if need > ctx.quote_balance * (1 + 1e-9):
                return Decision(False, "balance", f"needs {need:.2f} quote, has {ctx.quote_balance:.2f}")
        if lim.max_margin_utilization_pct is not None and ctx.leverage > 1 and ctx.margin_balance > 0:
            util = 100 * (ctx.margin_used + notional / ctx.leverage) / ctx.margin_balance
            if util > lim.max_margin_utilization_pct:
                return Decision(False, "margin_utilization", f"margin use would be {util:.1f}% "
                                                             f"> {lim.max_margin_utilization_pct:g}%")
        if lim.max_correlation is not None and ctx.correlation is not None:
            for other in ctx.portfolio.open_symbols:
                if other == order.symbol:
                    continue
                rho = ctx.correlation(order.symbol, other)
                if rho is not None and rho > lim.max_correlation:
                    return Decision(False, "correlation", f"return correlation with open {other} {rho:.2f} "
                                                          f"> {lim.max_correlation:g}")
        if lim.max_orders_per_minute is not None:
            while self._recent and self._recent[0] <= ctx.now_ms - 60_000:
                self._recent.popleft()
            if len(self._recent) >= lim.max_orders_per_minute:
                return Decision(False, "max_orders_per_minute",
                                f"{len(self._recent)} orders in the last minute >= {lim.max_orders_per_minute}")
        if not self.explain:
            return _ALLOWED
        if worst is None:
            worst = worst_case_loss(order.quantity, ctx.price, ctx.stop_price, order.side, lim.fee_pct,
                                    lim.slippage_bps)
        return Decision(True, ALLOW, f"ENTRY {order.side.value} {order.quantity:.8g} @ {ctx.price:.8g} "
                                     f"(notional {notional:.2f}, worst case {worst:.2f})")


def _lim(value: float | None, pct: float | None) -> str:
    parts = []
    if value is not None:
        parts.append(f"{value:g}")
    if pct is not None:
        parts.append(f"{pct:g}%")
    return " / ".join(parts)
