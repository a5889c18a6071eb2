"""Validate a trade: a dry run of ``risk.engine.RiskEngine.check`` for a proposed order against a
bot's current snapshot, limits and effective state. The rules are the risk engine's own; this
module only builds their inputs from what the worker last wrote:

- limits: the bot's limits as it runs them (config + run-time tightenings, ``RiskView.limits``),
  with the execution facts the worker adds (fee and slippage of the mode, shorts on futures and
  in ghost, the balance check outside ghost: as ``engine.worker.build_bot`` sets them);
- state: the effective state (most restrictive of global, mode, bot);
- position, equity, quote balance, high-water, day/week opening equity, losing streak and last
  entry time: the snapshot and its risk monitor; time: the bot's last candle (market time);
- the mode's open positions and exposure: the other snapshots of the mode, as the worker sums them.

It cannot see what only the worker's memory holds; the answer lists those rules under
``not_checked`` when the bot has them switched on.
"""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.auth import read_scope
from api.reads import known_bot, reader
from core.types import Order, OrderPurpose, Position, Side, TradingState
from risk.engine import PortfolioView, RiskContext, RiskEngine
from risk.limits import RiskLimits, limits_view
from state.models import BotMeta, BotSnapshot

router = APIRouter(prefix="/api/v1", tags=["risk"])

# Limits whose inputs live only in the worker's memory or come from the venue at order time.
_UNSEEN = {
    "max_orders_per_minute": "max_orders_per_minute (the worker's rolling window of recent orders)",
    "max_spread_bps": "max_spread_bps (the venue's spread at order time)",
    "max_api_errors_per_minute": "max_api_errors_per_minute (the venue client's error count)",
    "require_market_stream": "require_market_stream (the market-data stream's health)",
    "max_reconciliation_drift_pct": "max_reconciliation_drift_pct (the worker's drift memory)",
    "max_correlation": "max_correlation (the worker's recent closes)",
    "max_price_age_s": "max_price_age_s (the age of the worker's last price at order time)",
}


class TradeProposal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    side: Literal["BUY", "SELL"]
    quantity: float | None = Field(None, gt=0, description="base quantity (or give quote)")
    quote: float | None = Field(None, gt=0, description="size in the quote asset (quantity = quote / price)")
    price: float | None = Field(None, gt=0, description="default: the bot's last price")
    stop_loss: float | None = Field(None, gt=0)
    symbol: str | None = Field(None, pattern=r"^[A-Z0-9]{2,20}$", description="default: the bot's symbol")
    purpose: Literal["ENTRY", "EXIT"] = "ENTRY"

    @model_validator(mode="after")
    def _size(self) -> "TradeProposal":
        if (self.quantity is None) == (self.quote is None):
            raise ValueError("quantity: give exactly one of quantity and quote")
        return self


class Verdict(BaseModel):
    allowed: bool
    rule: str
    detail: str
    limits: dict[str, Any] = Field(description="the limits the rule compares, as the bot runs them")
    inputs: dict[str, Any]
    not_checked: list[str]
    dry_run: bool = True


def bot_limits(meta: BotMeta, snap: BotSnapshot, fees: tuple[float, float]) -> RiskLimits:
    view = dict(snap.risk.limits)
    for k in ("symbol_whitelist", "blackout_hours_utc"):
        if view.get(k) is not None:
            view[k] = tuple(view[k])  # type: ignore[arg-type]
    ghost = meta.mode == "ghost"
    fee_pct, slippage_bps = fees
    known = set(limits_view(RiskLimits()))
    return RiskLimits(**{k: v for k, v in view.items() if k in known},
                      fee_pct=0.0 if ghost else fee_pct, slippage_bps=0.0 if ghost else slippage_bps,
                      allow_short=ghost or meta.market == "futures", check_balance=not ghost)


def _portfolio(meta: BotMeta, snaps: dict[str, BotSnapshot]) -> PortfolioView:
    value, count, symbols = 0.0, 0, []
    if meta.mode != "ghost":
        for s in snaps.values():
            if s.mode != meta.mode:
                continue
            for p in s.open_positions:
                value += abs(p.quantity) * (p.mark or p.avg_entry)
                count += 1
                symbols.append(p.symbol)
    return PortfolioView(value, count, tuple(symbols))


@router.post("/bots/{bot}/validate-trade", response_model=Verdict, dependencies=[Depends(read_scope)],
             summary="Dry run: would the risk engine allow this order now? (nothing is sent)")
def validate_trade(request: Request, bot: str, proposal: TradeProposal) -> Verdict:
    meta = known_bot(request, bot)
    snaps = reader(request).snapshots()
    snap = snaps.get(bot)
    if snap is None:
        raise HTTPException(404, f"{bot} has not written a snapshot yet: nothing to check against")
    symbol = proposal.symbol or meta.symbol
    if symbol not in (meta.symbols or [meta.symbol]):
        raise HTTPException(422, f"symbol: {bot} trades {', '.join(meta.symbols or [meta.symbol])}, not {symbol}")
    held = next((p for p in snap.open_positions if p.symbol == symbol), None)
    price = proposal.price or (held.mark if held else 0.0) or (snap.last_price if symbol == meta.symbol else 0.0)
    if not price:
        raise HTTPException(422, f"price: no last price known for {symbol}; give one")
    quantity = proposal.quantity if proposal.quantity is not None else proposal.quote / price  # type: ignore[operator]
    limits = bot_limits(meta, snap, request.app.state.fees)
    mon = snap.risk.monitor
    now = snap.last_candle_time or snap.updated_at
    position = Position(symbol, held.quantity, held.avg_entry) if held else Position(symbol)
    ctx = RiskContext(
        state=TradingState(snap.effective_state), position=position, price=price, equity=snap.equity,
        quote_balance=snap.quote_balance, now_ms=now,
        bot_exposure_value=sum(abs(p.quantity) * (p.mark or p.avg_entry) for p in snap.open_positions),
        last_entry_ms=mon.get("last_entry_ms"),  # type: ignore[arg-type]
        high_water=float(mon.get("high_water") or 0.0) or None,  # type: ignore[arg-type]
        day_open_equity=float(mon.get("day_open") or 0.0) or None,  # type: ignore[arg-type]
        week_open_equity=float(mon.get("week_open") or 0.0) or None,  # type: ignore[arg-type]
        consecutive_losses=int(mon.get("consecutive_losses") or 0),  # type: ignore[call-overload]
        stop_price=proposal.stop_loss, portfolio=_portfolio(meta, snaps),
    )
    order = Order("dry-run", bot, symbol, Side(proposal.side), quantity, OrderPurpose(proposal.purpose),
                  price=price, created_at=now, reason="validate-trade")
    decision = RiskEngine(limits).check(order, ctx)
    view = snap.risk.limits
    related = {k: v for k, v in view.items() if decision.rule != "ok" and (k.startswith(decision.rule)
                                                                          or decision.rule in k)}
    inputs = {"state": ctx.state.value, "symbol": symbol, "side": proposal.side, "quantity": quantity,
              "price": price, "notional": quantity * price, "equity": ctx.equity, "quote_balance": ctx.quote_balance,
              "position": position.quantity, "stop_loss": proposal.stop_loss, "time": now,
              "mode_open_positions": ctx.portfolio.open_positions,
              "mode_exposure_value": ctx.portfolio.mode_exposure_value}
    unseen = [text for k, text in _UNSEEN.items() if proposal.purpose == "ENTRY" and view.get(k) not in (None, False)]
    return Verdict(allowed=decision.allowed, rule=decision.rule, detail=decision.detail, limits=related,
                   inputs=inputs, not_checked=unseen)
