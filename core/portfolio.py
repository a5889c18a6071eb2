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
_LONG, _SHORT = PositionSide.LONG, PositionSide.SHORT


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

    def equity_at(self, symbol: str, mark: float) -> float:
        """equity({symbol: mark}) without building the marks dict (the per-order path)."""
        eq = self.quote
        for s, p in self.positions.items():
            eq += p.quantity * (mark if s == symbol else p.avg_entry)
        return eq

    def unrealized(self, marks: dict[str, float]) -> float:
        return sum(p.unrealized_pnl(marks.get(s, p.avg_entry)) for s, p in self.positions.items())

    def apply(self, fill: Fill, exit_reason: str = "") -> Trade | None:
        """Book a fill. Returns the Trade for the part of a position it closed, if any."""
        symbol = fill.symbol
        pos = self.positions.get(symbol) or self.position(symbol)
        qty, price, fee = fill.quantity, fill.price, fill.fee
        buy = fill.side is Side.BUY
        signed = qty if buy else -qty
        self.fees_paid += fee
        if buy:
            self.quote -= qty * price + fee
        else:
            self.quote += qty * price - fee

        held = pos.quantity
        if held == 0.0 or (held > 0) == buy:
            # Opening or adding: weighted average entry; entry fees kept for the trade's net P&L.
            new_qty = held + signed
            pos.avg_entry = (pos.avg_entry * abs(held) + price * qty) / abs(new_qty)
            if held == 0.0:
                pos.opened_at = fill.time
            pos.quantity = new_qty
            pos.entry_fees += fee
            return None

        # Reducing (or reversing): close min(|pos|, fill qty) at fill price.
        size = abs(held)
        closed = min(size, qty)
        direction = 1.0 if held > 0 else -1.0
        entry_fee_part = pos.entry_fees * (closed / size)
        exit_fee_part = fee * (closed / qty)
        pnl = (price - pos.avg_entry) * closed * direction - entry_fee_part - exit_fee_part
        self.realized_pnl += pnl  # net of both fees, equal to the sum of trade P&Ls
        trade = Trade(self.bot, symbol, _LONG if direction > 0 else _SHORT, closed, pos.avg_entry, price,
                      pos.opened_at, fill.time, pnl, entry_fee_part + exit_fee_part, exit_reason)
        pos.entry_fees -= entry_fee_part
        pos.quantity = held + signed
        if abs(pos.quantity) <= EPS * max(1.0, closed):
            self.positions[symbol] = Position(symbol)
        elif (pos.quantity > 0) != (direction > 0):
            # Reversal: the rest of the fill opens the other side at the fill price.
            rest_fee = fee - exit_fee_part
            self.positions[symbol] = Position(symbol, pos.quantity, price, fill.time, rest_fee)
        return trade
