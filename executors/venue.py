"""A simulated venue for resting limit orders (paper and ghost DCA ladders, take-profit orders).

A resting limit fills when a candle trades *through* its price (touching is not enough,
as on the local exchange), at the limit price, with the maker fee. Orders are matched in
the order they were placed. The venue's book is plain data so a bot can persist and restore it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from core.types import Candle, Fill, Side


@dataclass(slots=True)
class RestingOrder:
    client_order_id: str
    bot: str
    symbol: str
    side: str  # BUY | SELL
    quantity: float
    price: float
    tag: str = ""  # what the order is for (e.g. "SO3", "TP1")
    placed_at: int = 0


@dataclass(slots=True)
class SimVenue:
    maker_fee_pct: float = 0.1
    quote_asset: str = "USDT"
    touch_fills: bool = False  # ghost: a touch is enough (optimistic, hypothetical)
    book: dict[str, RestingOrder] = field(default_factory=dict)

    def place(self, order: RestingOrder, purpose: object = None) -> bool:
        """Rest it (the simulated venue refuses nothing the risk engine allowed)."""
        if order.client_order_id in self.book:
            raise ValueError(f"duplicate client order id {order.client_order_id}")
        self.book[order.client_order_id] = order
        return True

    def take(self, symbol: str | None = None) -> list[tuple[RestingOrder, Fill]]:
        """Fills that happened between candles: none here (this venue matches on candles)."""
        return []

    def unsellable(self, symbol: str, quantity: float, price: float) -> bool:
        """A remainder too small to trade: only float residue on a simulated venue."""
        return abs(quantity) <= 1e-12

    def cancel(self, client_order_id: str) -> RestingOrder | None:
        return self.book.pop(client_order_id, None)

    def open_orders(self, symbol: str | None = None) -> list[RestingOrder]:
        return [o for o in self.book.values() if symbol is None or o.symbol == symbol]

    def reserved_quote(self, symbol: str | None = None) -> float:
        """Quote locked by resting buys (counts as exposure and is not spendable)."""
        return sum(o.quantity * o.price for o in self.open_orders(symbol) if o.side == "BUY")

    def match(self, c: Candle) -> list[tuple[RestingOrder, Fill]]:
        out = []
        for o in list(self.book.values()):
            if o.symbol != c.symbol:
                continue
            if o.side == "BUY":
                hit = c.low <= o.price if self.touch_fills else c.low < o.price
            else:
                hit = c.high >= o.price if self.touch_fills else c.high > o.price
            if not hit:
                continue
            del self.book[o.client_order_id]
            # A candle that opens through the level fills at the open: the better price.
            price = min(o.price, c.open) if o.side == "BUY" else max(o.price, c.open)
            fee = o.quantity * price * self.maker_fee_pct / 100.0
            out.append((o, Fill(o.client_order_id, o.bot, o.symbol, Side(o.side), o.quantity, price, fee,
                                self.quote_asset, c.close_time + 1)))
        return out

    def dump(self) -> list[dict[str, object]]:
        return [asdict(o) for o in self.book.values()]

    def load(self, rows: list[dict[str, object]]) -> None:
        self.book = {str(r["client_order_id"]): RestingOrder(**r) for r in rows}  # type: ignore[arg-type]
