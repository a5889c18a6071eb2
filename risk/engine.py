"""The risk engine: every order passes check() before an executor sees it, in every mode.

Entries must pass every limit. Exits and flattening orders are allowed *by the trading state*
(anything but HALTED) and must reduce the position; they are never blocked by loss, exposure
or rate limits, so a stop can always be taken. Each decision carries the rule and the numbers
it compared, so a denial explains itself.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from core.types import Order, OrderPurpose, Position, Side, TradingState
from risk.limits import RiskLimits

__all__ = ["ALLOW", "Decision", "MarketStatus", "PortfolioView", "RiskContext", "RiskEngine", "RiskLimits",
           "worst_case_loss"]


@dataclass(slots=True, frozen=True)
class MarketStatus:
    """Market and system health the order depends on (filled by the worker / adapter)."""

    price_time_ms: int | None = None
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


@dataclass(slots=True, frozen=True)
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
    liquidation_price: float | None = None
    portfolio: PortfolioView = field(default_factory=PortfolioView)
    market: MarketStatus = field(default_factory=MarketStatus)
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


def _in_hours(now_ms: int, window: tuple[int, int]) -> bool:
    hour = datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc).hour
    start, end = window
    return start <= hour < end if start < end else (hour >= start or hour < end)


def _over(value: float, limit: float | None) -> bool:
    return limit is not None and value > limit * (1 + 1e-9)


class RiskEngine:
    def __init__(self, limits: RiskLimits, symbol: str = "") -> None:
        self.limits = limits
        self.symbol = symbol
        self._recent: deque[int] = deque()

    def check(self, order: Order, ctx: RiskContext) -> Decision:
        decision = self._exit(order, ctx) if order.purpose is not OrderPurpose.ENTRY else self._entry(order, ctx)
        if decision.allowed:
            self._recent.append(ctx.now_ms)
        return decision

    # ---- exits: allowed by state, must reduce ------------------------------------------------
    def _exit(self, order: Order, ctx: RiskContext) -> Decision:
        if not ctx.state.allows_exits:
            return Decision(False, "trading_state", f"state {ctx.state.value} allows no orders")
        pos_qty = ctx.position.quantity
        reduces = (order.side is Side.SELL and pos_qty > 0) or (order.side is Side.BUY and pos_qty < 0)
        if not reduces or order.quantity > abs(pos_qty) * (1 + 1e-9):
            return Decision(False, "reduce_only",
                            f"exit of {order.quantity:.8g} {order.side.value} does not reduce position {pos_qty:.8g}")
        if order.quantity <= 0 or ctx.price <= 0:
            return Decision(False, "bad_order", f"quantity {order.quantity} at price {ctx.price}")
        return Decision(True, ALLOW, f"{order.purpose.value} {order.side.value} {order.quantity:.8g} @ {ctx.price:.8g}")

    # ---- entries: every limit ---------------------------------------------------------------
    def _entry(self, order: Order, ctx: RiskContext) -> Decision:  # noqa: C901 - one rule a branch, in order
        lim = self.limits
        if not ctx.state.allows_entries:
            return Decision(False, "trading_state", f"state {ctx.state.value} allows no entries")
        if order.quantity <= 0 or ctx.price <= 0:
            return Decision(False, "bad_order", f"quantity {order.quantity} at price {ctx.price}")
        if lim.symbol_whitelist is not None and order.symbol not in lim.symbol_whitelist:
            return Decision(False, "symbol_whitelist", f"{order.symbol} not in {list(lim.symbol_whitelist)}")
        if lim.blackout_hours_utc is not None and _in_hours(ctx.now_ms, lim.blackout_hours_utc):
            s, e = lim.blackout_hours_utc
            return Decision(False, "blackout_hours", f"entries are off {s:02d}:00-{e:02d}:00 UTC")

        m = ctx.market
        if lim.max_price_age_s is not None and m.price_time_ms is not None:
            age = (ctx.now_ms - m.price_time_ms) / 1000
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

        # Loss limits also move the state (risk.monitor); here they stop entries at once.
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

        notional = order.quantity * ctx.price
        if notional < lim.min_notional:
            return Decision(False, "min_notional", f"notional {notional:.2f} < {lim.min_notional:.2f}")
        pos_qty = ctx.position.quantity
        if order.side is Side.SELL and pos_qty <= 0 and not lim.allow_short:
            return Decision(False, "no_short", "short entries are not allowed on spot")
        if _over(ctx.leverage, lim.max_leverage):
            return Decision(False, "max_leverage", f"leverage {ctx.leverage:g}x > {lim.max_leverage:g}x")
        signed = order.quantity if order.side is Side.BUY else -order.quantity
        after = abs(pos_qty + signed) * ctx.price
        if _over(after, lim.max_position_value):
            return Decision(False, "max_position_value",
                            f"position value {after:.2f} > {lim.max_position_value:.2f}")
        if lim.max_position_pct is not None:
            cap = lim.max_position_pct / 100.0 * eq
            if _over(after, cap):
                return Decision(False, "max_position_pct", f"position value {after:.2f} > {lim.max_position_pct:g}% "
                                                           f"of equity {eq:.2f} = {cap:.2f}")
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
        worst = worst_case_loss(order.quantity, ctx.price, ctx.stop_price, order.side, lim.fee_pct, lim.slippage_bps)
        per_trade_pct_cap = None if lim.max_loss_per_trade_pct is None else lim.max_loss_per_trade_pct / 100 * eq
        for cap, label in ((lim.max_loss_per_trade_value, "value"), (per_trade_pct_cap, "pct")):
            if _over(worst, cap):
                at = f"stop {ctx.stop_price:.8g}" if ctx.stop_price is not None else "no stop: whole notional"
                return Decision(False, "max_loss_per_trade", f"worst case {worst:.2f} ({at}) > {cap:.2f}")
        if lim.min_entry_interval_s is not None and ctx.last_entry_ms is not None:
            since = (ctx.now_ms - ctx.last_entry_ms) / 1000
            if since < lim.min_entry_interval_s:
                return Decision(False, "min_entry_interval", f"{since:.0f} s since the last entry "
                                                             f"< {lim.min_entry_interval_s:g} s")
        if lim.check_balance and order.side is Side.BUY and ctx.leverage <= 1:
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
        return Decision(True, ALLOW, f"ENTRY {order.side.value} {order.quantity:.8g} @ {ctx.price:.8g} "
                                     f"(notional {notional:.2f}, worst case {worst:.2f})")


def _lim(value: float | None, pct: float | None) -> str:
    parts = []
    if value is not None:
        parts.append(f"{value:g}")
    if pct is not None:
        parts.append(f"{pct:g}%")
    return " / ".join(parts)
