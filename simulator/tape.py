"""The public trade tape: the market's trades as ``/api/v3/trades``, ``aggTrades``, ``@trade`` and
``@aggTrade`` show them (spot and USD-M alike; the futures contract trades at the same price).

Nobody else trades on the simulator, so each bar of the price source is the market's trading in
that stretch: it becomes one trade at the bar's close for the bar's volume, at the bar's close
time (market clock). The taker side follows the bar's direction (the buyer is the maker when the
price went down). One trade is also one aggregate trade (same id, ``f == l``). Ids count up per
symbol from 1; the last ``KEEP`` trades per symbol are kept (Binance serves older ones from its
history endpoint, which the simulator does not have). The user's own fills against the synthetic
book are not on the tape (they have no counterparty here).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal

from simulator.prices import Bar

KEEP = 1000


@dataclass(slots=True)  # not frozen: created once per bar, and a frozen __init__ costs twice as much
class MarketTrade:
    symbol: str
    id: int
    price: Decimal
    qty: Decimal
    time: int
    buyer_maker: bool


class Tape:
    def __init__(self) -> None:
        self._trades: dict[str, deque[MarketTrade]] = {}
        self._next: dict[str, int] = {}

    def on_bar(self, bar: Bar) -> MarketTrade | None:
        if bar.volume <= 0:
            return None
        n = self._next.get(bar.symbol, 1)
        self._next[bar.symbol] = n + 1
        trade = MarketTrade(bar.symbol, n, bar.close, bar.volume, bar.close_time, bar.close < bar.open)
        self._trades.setdefault(bar.symbol, deque(maxlen=KEEP)).append(trade)
        return trade

    def last(self, symbol: str) -> MarketTrade | None:
        lst = self._trades.get(symbol)
        return lst[-1] if lst else None

    def recent(self, symbol: str, limit: int, from_id: int | None = None, start: int | None = None,
               end: int | None = None) -> list[MarketTrade]:
        """Oldest first: from ``from_id`` / ``start`` onward (the first ``limit``), else the last ``limit``."""
        rows = list(self._trades.get(symbol, ()))
        if from_id is not None:
            rows = [t for t in rows if t.id >= from_id]
        if start is not None:
            rows = [t for t in rows if t.time >= start]
        if end is not None:
            rows = [t for t in rows if t.time <= end]
        if from_id is not None or start is not None:
            return rows[:limit]
        return rows[-limit:]
