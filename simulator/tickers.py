"""Rolling 24-hour statistics of a symbol, for ``ticker/24hr`` (spot and USD-M) and the
``@ticker`` / ``@miniTicker`` streams: the last 1440 one-minute klines of market time up to now."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from simulator.klines import KlineStore
from simulator.tape import Tape

DAY_MS = 86_400_000
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Stats24h:
    symbol: str
    open: Decimal
    high: Decimal
    low: Decimal
    last: Decimal
    volume: Decimal
    quote_volume: Decimal
    open_time: int
    close_time: int
    count: int
    first_id: int  # first / last public trade id in the window (-1 if none)
    last_id: int
    last_qty: Decimal

    @property
    def change(self) -> Decimal:
        return self.last - self.open

    @property
    def change_percent(self) -> str:
        return format(self.change / self.open * 100, ".3f") if self.open else "0.000"

    @property
    def weighted_avg(self) -> Decimal:
        return self.quote_volume / self.volume if self.volume else self.last


def stats_24h(klines: KlineStore, tape: Tape, symbol: str, market_ms: int, last: Decimal) -> Stats24h:
    ks = klines.klines(symbol, "1m", market_ms - DAY_MS, None, 1440)
    first = ks[0].open if ks else last
    trades = tape.recent(symbol, 1000, start=market_ms - DAY_MS)
    return Stats24h(
        symbol=symbol, open=first,
        high=max((k.high for k in ks), default=last), low=min((k.low for k in ks), default=last), last=last,
        volume=sum((k.volume for k in ks), ZERO), quote_volume=sum((k.quote_volume for k in ks), ZERO),
        open_time=ks[0].open_time if ks else market_ms, close_time=market_ms - 1,
        count=sum(k.trades for k in ks),
        first_id=trades[0].id if trades else -1, last_id=trades[-1].id if trades else -1,
        last_qty=trades[-1].qty if trades else ZERO,
    )
