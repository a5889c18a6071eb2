"""A simulated venue for resting limit orders (paper, ghost and backtest DCA ladders, take-profit steps).

Orders are matched candle by candle with the shared fill model (``executors.fills.FillModel.
match_resting``): the policy's touch / trade-through rule, the price (the limit, or the open on a
gap), the maker fee, the volume cap shared in price-time priority, the queue ahead of an order on a
touch, and the ``intrabar`` rule for a candle through both a deal's safety orders and its
take-profit. As on a real venue (``executors.live_book.LiveBook``), an order is handed to the bot
once, when it is complete, as one fill at its average price with its summed fee; an order canceled
after a partial fill hands over what it executed (``take``, or the next ``match``). Without a model
(ghost, and bots built without one) a touch (ghost) or a trade-through fills in full, with no volume
cap. The venue's book is plain data so a bot can persist and restore it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from core.types import Candle, Fill, Side
from executors.fills import FillModel


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
    # the simulated venue's matching state (a real venue keeps its own)
    executed: float = 0.0
    cum_quote: float = 0.0
    avg_price: float = 0.0
    fee_paid: float = 0.0
    queue_ahead: float = -1.0  # base quantity ahead of it at its price (-1: not in the queue yet)
    filled_at: int = 0  # time of its last (partial) fill


@dataclass(slots=True)
class SimVenue:
    maker_fee_pct: float = 0.1
    quote_asset: str = "USDT"
    touch_fills: bool = False  # without a model: a touch is enough (ghost: optimistic, hypothetical)
    book: dict[str, RestingOrder] = field(default_factory=dict)
    model: FillModel | None = None
    _pending: list[tuple[RestingOrder, Fill]] = field(default_factory=list)  # canceled after a partial fill

    _plain: bool = False  # no model given: each side matched on its own, as before fill models

    def __post_init__(self) -> None:
        if self.model is None:
            self._plain = True
            self.model = FillModel(policy="optimistic" if self.touch_fills else "realistic",
                                   maker_fee_pct=self.maker_fee_pct, max_volume_pct=None, queue=False)
        else:
            self.maker_fee_pct = self.model.maker_fee_pct

    def place(self, order: RestingOrder, purpose: object = None) -> bool:
        """Rest it (the simulated venue refuses nothing the risk engine allowed)."""
        if order.client_order_id in self.book:
            raise ValueError(f"duplicate client order id {order.client_order_id}")
        self.book[order.client_order_id] = order
        return True

    def take(self, symbol: str | None = None) -> list[tuple[RestingOrder, Fill]]:
        """Fills handed over between candles: what orders canceled after a partial fill executed."""
        out = [(o, f) for o, f in self._pending if symbol is None or o.symbol == symbol]
        self._pending = [(o, f) for o, f in self._pending if not (symbol is None or o.symbol == symbol)]
        return out

    def unsellable(self, symbol: str, quantity: float, price: float) -> bool:
        """A remainder too small to trade: only float residue on a simulated venue."""
        return abs(quantity) <= 1e-12

    def cancel(self, client_order_id: str) -> RestingOrder | None:
        o = self.book.pop(client_order_id, None)
        if o is not None and o.executed > 0:
            self._pending.append((o, self._fill(o)))  # what it executed before the cancel is the bot's
        return o

    def open_orders(self, symbol: str | None = None) -> list[RestingOrder]:
        return [o for o in self.book.values() if symbol is None or o.symbol == symbol]

    def reserved_quote(self, symbol: str | None = None) -> float:
        """Quote locked by resting buys (counts as exposure and is not spendable)."""
        return sum(o.quantity * o.price for o in self.open_orders(symbol) if o.side == "BUY")

    def match(self, c: Candle) -> list[tuple[RestingOrder, Fill]]:
        out = self.take(c.symbol)
        assert self.model is not None
        resting = list(self.book.values())
        sides = [[o for o in resting if o.side == s] for s in ("BUY", "SELL")] if self._plain else [resting]
        for o in [o for orders in sides for o in self.model.match_resting(orders, c)]:
            if o.executed >= o.quantity:
                del self.book[o.client_order_id]
                out.append((o, self._fill(o)))
        return out

    def _fill(self, o: RestingOrder) -> Fill:
        """An order's one fill: what it executed at its average price, with its summed fee."""
        return Fill(o.client_order_id, o.bot, o.symbol, Side(o.side), o.executed, o.avg_price,
                    o.fee_paid, self.quote_asset, o.filled_at)

    def dump(self) -> list[dict[str, object]]:
        return [asdict(o) for o in self.book.values()]

    def load(self, rows: list[dict[str, object]]) -> None:
        self.book = {str(r["client_order_id"]): RestingOrder(**r) for r in rows}  # type: ignore[arg-type]
