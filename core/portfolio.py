"""A bot's book: quote balance, one position per symbol with average entry, realized P&L, trades.

Fills are applied here and nowhere else, in every mode, so paper, ghost, backtest and live
agree on what a fill means. Shorts (futures, ghost) hold a negative quantity; their sale
proceeds sit in the quote balance, so equity = quote + Σ quantity × mark in every case.
Fees are charged in the quote asset (a simplification of Binance spot, which charges the
received asset; documented in docs/architecture.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from core.types import Fill, Position, PositionSide, Side, Trade

EPS = 1e-12


@dataclass(slots=True)
class Portfolio:
    bot: str
    starting_balance: float
    quote_asset: str = "USDT"
    quote: float = 0.0
    positions: dict[str, Position] = field(default_factory=dict)
    realized_pnl: float = 0.0
    fees_paid: float = 0.0

    def __post_init__(self) -> None:
        if self.quote == 0.0 and not self.positions:
            self.quote = self.starting_balance

    def position(self, symbol: str) -> Position:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = Position(symbol)
        return pos

    def equity(self, marks: dict[str, float]) -> float:
        return self.quote + sum(p.quantity * marks.get(s, p.avg_entry) for s, p in self.positions.items())

    def unrealized(self, marks: dict[str, float]) -> float:
        return sum(p.unrealized_pnl(marks.get(s, p.avg_entry)) for s, p in self.positions.items())

    def apply(self, fill: Fill, exit_reason: str = "") -> Trade | None:
        """Book a fill. Returns the Trade for the part of a position it closed, if any."""
        pos = self.position(fill.symbol)
        signed = fill.quantity if fill.side is Side.BUY else -fill.quantity
        self.fees_paid += fill.fee
        if fill.side is Side.BUY:
            self.quote -= fill.quantity * fill.price + fill.fee
        else:
            self.quote += fill.quantity * fill.price - fill.fee

        if pos.quantity == 0.0 or (pos.quantity > 0) == (signed > 0):
            # Opening or adding: weighted average entry; entry fees kept for the trade's net P&L.
            new_qty = pos.quantity + signed
            pos.avg_entry = (pos.avg_entry * abs(pos.quantity) + fill.price * fill.quantity) / abs(new_qty)
            if pos.quantity == 0.0:
                pos.opened_at = fill.time
            pos.quantity = new_qty
            pos.entry_fees += fill.fee
            return None

        # Reducing (or reversing): close min(|pos|, fill qty) at fill price.
        closed = min(abs(pos.quantity), fill.quantity)
        direction = 1.0 if pos.quantity > 0 else -1.0
        share = closed / abs(pos.quantity)
        entry_fee_part = pos.entry_fees * share
        exit_fee_part = fill.fee * (closed / fill.quantity)
        gross = (fill.price - pos.avg_entry) * closed * direction
        pnl = gross - entry_fee_part - exit_fee_part
        self.realized_pnl += pnl  # net of both fees, equal to the sum of trade P&Ls
        trade = Trade(
            bot=self.bot, symbol=fill.symbol,
            side=PositionSide.LONG if direction > 0 else PositionSide.SHORT,
            quantity=closed, entry_price=pos.avg_entry, exit_price=fill.price,
            entry_time=pos.opened_at, exit_time=fill.time, pnl=pnl,
            fees=entry_fee_part + exit_fee_part, exit_reason=exit_reason,
        )
        pos.entry_fees -= entry_fee_part
        pos.quantity += signed
        if abs(pos.quantity) <= EPS * max(1.0, closed):
            self.positions[fill.symbol] = Position(fill.symbol)
        elif (pos.quantity > 0) != (direction > 0):
            # Reversal: the rest of the fill opens the other side at the fill price.
            rest_fee = fill.fee - exit_fee_part
            self.positions[fill.symbol] = Position(fill.symbol, pos.quantity, fill.price, fill.time, rest_fee)
        return trade
