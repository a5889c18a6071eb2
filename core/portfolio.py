"""A bot's book: quote balance, one position per symbol with average entry, realized P&L, trades.

A position keeps its tranches (one per entry order: price, quantity, time, fee); a partial exit
takes its share from each tranche pro rata and returns its own Trade (its realized P&L).

Fills are applied here and nowhere else, in every mode, so paper, ghost, backtest and live
agree on what a fill means. Shorts (futures, ghost) hold a negative quantity; their sale
proceeds sit in the quote balance, so equity = quote + Σ quantity × mark in every case.
Fees are charged in the quote asset (a simplification of Binance spot, which charges the
received asset; documented in docs/architecture.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from core.types import Fill, Position, PositionSide, Side, Trade, Tranche

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
    funding: float = 0.0  # USD-M funding received (> 0) or paid (< 0), apart from fees and trade P&L

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

    def apply_funding(self, amount: float) -> None:
        """Book a funding payment (> 0 received, < 0 paid): cash, and the funding total."""
        self.quote += amount
        self.funding += amount

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
            if held == 0.0:
                pos.opened_at = fill.time
                pos.tranches = [Tranche(price, qty, fill.time, fee, fill.client_order_id)]
            else:
                _add_tranche(pos, price, qty, fill.time, fee, fill.client_order_id)  # before avg_entry moves
            pos.avg_entry = (pos.avg_entry * abs(held) + price * qty) / abs(new_qty)
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
                      pos.opened_at, fill.time, pnl, entry_fee_part + exit_fee_part, exit_reason, pos.temperature,
                      pos.regime)
        pos.entry_fees -= entry_fee_part
        pos.quantity = held + signed
        if abs(pos.quantity) <= EPS * max(1.0, closed):
            self.positions[symbol] = Position(symbol)
        elif (pos.quantity > 0) != (direction > 0):
            # Reversal: the rest of the fill opens the other side at the fill price.
            rest_fee = fee - exit_fee_part
            self.positions[symbol] = Position(symbol, pos.quantity, price, fill.time, rest_fee, tranches=[
                Tranche(price, abs(pos.quantity), fill.time, rest_fee, fill.client_order_id)])
        else:
            # Partial exit: every tranche gives up the same share (average cost), so the average
            # entry stays and each tranche's remaining fee matches entry_fees.
            keep = abs(pos.quantity) / size
            for t in pos.tranches:
                t.quantity *= keep
                t.fee *= keep
            pos.realized_pnl += pnl
        return trade


def _add_tranche(pos: Position, price: float, qty: float, time: int, fee: float, order_id: str) -> None:
    """A fill adding to an open position: a new tranche, or more of the last one when it is
    another fill of the same entry order (a tranche is one entry decision, not one fill)."""
    ts = pos.held_tranches()  # tranches that no longer add up are replaced by one standing for them
    if ts is not pos.tranches:
        pos.tranches = ts = list(ts)
    last = ts[-1]
    if order_id and last.order_id == order_id:
        q = last.quantity + qty
        last.price = (last.price * last.quantity + price * qty) / q
        last.quantity = q
        last.fee += fee
    else:
        ts.append(Tranche(price, qty, time, fee, order_id))
