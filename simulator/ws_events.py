"""Market-data stream events, Binance's JSON shapes (spot and USD-M differ in a few fields), built
from the exchange's state after a bar (reference/binance-api.md §8; Binance's stream docs where it
is silent). ``StreamHub`` (``ws.py``) decides who gets which; ``DepthDiff`` keeps the previous book
of a diff-depth stream.

Streams (symbol lower-case; ``futures`` = a connection on a ``public/``, ``market/`` or
``private/`` path):
    <s>@kline_<i>, <s>_perpetual@continuousKline_<i>   kline events (``k.x`` = closed)
    <s>@bookTicker                 best bid/ask (futures adds e/E/T)
    <s>@trade, <s>@aggTrade        the bar's public trade (``tape.py``)
    <s>@markPrice[@1s]             mark, index, estimated funding rate, next funding time
    <s>@ticker, <s>@miniTicker     rolling 24 h statistics (``tickers.py``), at most once a second
    <s>@depth<N>[@<ms>ms]          the best N (5, 10, 20) levels
    <s>@depth[@<ms>ms]             diff depth: every level that changed since the previous event
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from simulator.book import Level
from simulator.filters import fmt8
from simulator.klines import bucket
from simulator.prices import Bar
from simulator.tickers import stats_24h

if TYPE_CHECKING:
    from simulator.state import SimExchange

DEPTH_DIFF_LEVELS = 1000  # per side: ccxt's default snapshot depth and the USD-M REST maximum
ZERO = Decimal(0)


def _fmt_level(ex: SimExchange, symbol: str, futures: bool, lv: Level) -> list[str]:
    if futures:
        spec = ex.futures_specs[symbol]
        return [spec.fmt_price(lv.price), spec.fmt_qty(lv.qty)]
    return [fmt8(lv.price), fmt8(lv.qty)]


def _book(ex: SimExchange, symbol: str, futures: bool):  # type: ignore[no-untyped-def]
    return ex.futures.book(symbol) if futures else ex.engine.book(symbol)


def kline(ex: SimExchange, bar: Bar, interval: str, continuous: bool, futures: bool = False) -> dict[str, object]:
    k = (ex.futures_klines if futures else ex.klines).klines(bar.symbol, interval, bucket(bar.open_time, interval)[0], None, 1)[0]
    body: dict[str, object] = {
        "t": k.open_time, "T": k.close_time, "s": bar.symbol, "i": interval,
        "f": 100, "L": 100 + k.trades - 1 if k.trades else 99,
        "o": fmt8(k.open), "c": fmt8(k.close), "h": fmt8(k.high), "l": fmt8(k.low),
        "v": fmt8(k.volume), "n": k.trades, "x": bar.close_time >= k.close_time, "q": fmt8(k.quote_volume),
        "V": fmt8(k.taker_buy_base), "Q": fmt8(k.taker_buy_quote), "B": "0",
    }
    now = ex.now_ms()
    if continuous:
        body.pop("s")
        return {"e": "continuous_kline", "E": now, "ps": bar.symbol, "ct": "PERPETUAL", "k": body}
    return {"e": "kline", "E": now, "s": bar.symbol, "k": body}


def book_ticker(ex: SimExchange, symbol: str, futures: bool) -> dict[str, object]:
    book = _book(ex, symbol, futures)
    bid, ask = _fmt_level(ex, symbol, futures, book.levels("bids", 1)[0]), \
        _fmt_level(ex, symbol, futures, book.levels("asks", 1)[0])
    ev: dict[str, object] = {"u": ex.update_ids[symbol], "s": symbol, "b": bid[0], "B": bid[1], "a": ask[0], "A": ask[1]}
    if futures:
        now = ex.now_ms()
        ev = {"e": "bookTicker", **ev, "E": now, "T": now}
    return ev


def trade(ex: SimExchange, symbol: str, futures: bool, aggregate: bool) -> dict[str, object] | None:
    t = ex.tape.last(symbol)
    if t is None:
        return None
    price, qty = _fmt_level(ex, symbol, futures, Level(t.price, t.qty))
    now = ex.now_ms()
    if aggregate:
        ev: dict[str, object] = {"e": "aggTrade", "E": now, "s": symbol, "a": t.id, "p": price, "q": qty,
                                 "f": t.id, "l": t.id, "T": t.time, "m": t.buyer_maker}
        if not futures:
            ev["M"] = True
        return ev
    if futures:
        return {"e": "trade", "E": now, "T": t.time, "s": symbol, "t": t.id, "p": price, "q": qty, "X": "MARKET",
                "m": t.buyer_maker}
    return {"e": "trade", "E": now, "s": symbol, "t": t.id, "p": price, "q": qty, "T": t.time,
            "m": t.buyer_maker, "M": True}


def mark_price(ex: SimExchange, symbol: str) -> dict[str, object]:
    fund = ex.funding
    mark, index = fmt8(fund.mark(symbol)), fmt8(fund.index(symbol))
    return {"e": "markPriceUpdate", "E": ex.now_ms(), "s": symbol, "p": mark, "ap": mark, "i": index, "P": index,
            "r": fmt8(fund.estimate(symbol)), "T": fund.next_ms}


def ticker(ex: SimExchange, symbol: str, futures: bool, mini: bool) -> dict[str, object]:
    last = ex.futures.mark(symbol) if futures else ex.engine.price(symbol)
    s = stats_24h(ex.klines, ex.tape, symbol, ex.market_ms, last)
    now = ex.now_ms()
    if mini:
        return {"e": "24hrMiniTicker", "E": now, "s": symbol, "c": fmt8(s.last), "o": fmt8(s.open),
                "h": fmt8(s.high), "l": fmt8(s.low), "v": fmt8(s.volume), "q": fmt8(s.quote_volume)}
    ev: dict[str, object] = {
        "e": "24hrTicker", "E": now, "s": symbol, "p": fmt8(s.change), "P": s.change_percent,
        "w": fmt8(s.weighted_avg), "c": fmt8(s.last), "Q": fmt8(s.last_qty), "o": fmt8(s.open), "h": fmt8(s.high),
        "l": fmt8(s.low), "v": fmt8(s.volume), "q": fmt8(s.quote_volume), "O": s.open_time, "C": s.close_time,
        "F": s.first_id, "L": s.last_id, "n": s.count,
    }
    if not futures:
        book = ex.engine.book(symbol)
        bid, ask = book.levels("bids", 1)[0], book.levels("asks", 1)[0]
        ev.update(x=fmt8(s.open), b=fmt8(bid.price), B=fmt8(bid.qty), a=fmt8(ask.price), A=fmt8(ask.qty))
    return ev


def partial_depth(ex: SimExchange, symbol: str, futures: bool, levels: int, prev_u: int) -> dict[str, object]:
    book = _book(ex, symbol, futures)
    bids = [_fmt_level(ex, symbol, futures, lv) for lv in book.levels("bids", levels)]
    asks = [_fmt_level(ex, symbol, futures, lv) for lv in book.levels("asks", levels)]
    u = ex.update_ids[symbol]
    if not futures:
        return {"lastUpdateId": u, "bids": bids, "asks": asks}
    now = ex.now_ms()
    return {"e": "depthUpdate", "E": now, "T": now, "s": symbol, "U": prev_u + 1, "u": u, "pu": prev_u,
            "b": bids, "a": asks}


@dataclass
class DepthDiff:
    """One (symbol, market) diff-depth feed: the previous event's book (best ``DEPTH_DIFF_LEVELS``
    per side) and update id. An event is made for every book change, i.e. every bar, so applying
    them in order to a REST snapshot rebuilds the book exactly (Binance's diff-depth procedure)."""

    symbol: str
    futures: bool
    last_u: int
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)

    @classmethod
    def start(cls, ex: SimExchange, symbol: str, futures: bool) -> "DepthDiff":
        d = cls(symbol, futures, ex.update_ids[symbol])
        d.bids, d.asks = d._levels(ex)
        return d

    def _levels(self, ex: SimExchange) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        book = _book(ex, self.symbol, self.futures)
        return ({lv.price: lv.qty for lv in book.levels("bids", DEPTH_DIFF_LEVELS)},
                {lv.price: lv.qty for lv in book.levels("asks", DEPTH_DIFF_LEVELS)})

    def event(self, ex: SimExchange) -> dict[str, object] | None:
        u = ex.update_ids[self.symbol]
        if u == self.last_u:
            return None
        bids, asks = self._levels(ex)

        def changes(old: dict[Decimal, Decimal], new: dict[Decimal, Decimal]) -> list[list[str]]:
            out = [_fmt_level(ex, self.symbol, self.futures, Level(p, q)) for p, q in new.items() if old.get(p) != q]
            out += [_fmt_level(ex, self.symbol, self.futures, Level(p, ZERO)) for p in old if p not in new]
            return out

        now = ex.now_ms()
        ev: dict[str, object] = {"e": "depthUpdate", "E": now, "s": self.symbol, "U": self.last_u + 1, "u": u,
                                 "b": changes(self.bids, bids), "a": changes(self.asks, asks)}
        if self.futures:
            ev.update(T=now, pu=self.last_u)
        self.bids, self.asks, self.last_u = bids, asks, u
        return ev
