"""The fill model shared by paper bots and backtests: one implementation of every fill rule.

``FillModel`` says how a simulated venue fills orders; ``executors.paper.PaperExecutor`` and
``backtest.fills.BacktestExecutor`` fill market orders with it (``fill``), both kinds of bot
check their protective exits with it (``exit_check``, ``trigger_mask``), and the simulated venue
for resting limit orders (``executors.venue.SimVenue``: DCA ladders and take-profit steps) matches
them with it (``match_resting``). So paper and backtest fill alike by construction.

Policies (stops are stop-market orders, take-profits and ladders are resting limit orders):

==============  ============================  ==========================================================
policy          a resting limit fills when    fill price
==============  ============================  ==========================================================
optimistic      the candle touches it         stop: the stop level (no slippage); take: the limit, or
                                              the open when the candle opens beyond it
realistic       price trades *through* it;    stop: level + slippage; take: the limit, or the open on a
                a resting order on the        gap; quantity at most ``max_volume_pct`` of the candle's
                venue also on a touch once    volume (a market order's rest is cancelled, IOC; a
                the queue ahead has traded    resting order's rest keeps resting)
pessimistic     through by one tick           stop: the worst price of the candle (low for a long);
                                              take: the limit even on a gap; volume cap too
==============  ============================  ==========================================================

A stop triggers on a touch in every policy (it is a market order once touched) and a candle that
*opens* beyond a stop fills it at the open, first. When both levels lie inside one candle,
``intrabar`` says which came first: ``stop_first`` (default, the adverse move first),
``take_first``, or ``ohlc`` (a bullish candle went open -> low -> high -> close, a bearish one
open -> high -> low -> close). On the venue the same rule decides between a deal's safety orders
(the adverse side) and its take-profit (the favourable side) inside one candle: only the side
that came first fills there; the other keeps resting.

Market orders decided on a close fill at that close (``fill_at="close"``) or, in backtests only, at
the next candle's open (``next_open``). Market orders and stops pay ``taker_fee_pct``, limit orders
``maker_fee_pct``; slippage (bps, always adverse) applies to market orders and to stops except
under ``optimistic``, never to limit fills. ``latency_ms`` is added to market fills' times.

Resting orders on the simulated venue (``match_resting``):

* volume: on each candle the orders of one side share ``max_volume_pct`` of the candle's volume in
  price-time priority (best price first, then the oldest), so a large order fills partially over
  several candles, as on the local exchange (which shares 50 %); ``optimistic`` has no cap;
* queue position on a touch (``realistic`` only): a candle whose low (high for a sell) is exactly
  the limit trades at that price only the price level's share of its volume, estimated as
  ``volume * tick / (high - low + tick)`` (volume spread evenly over the ticks of the range).
  An order joins the back of the queue: on the first candle it sees, one such share is ahead of
  it; each touching candle's share first works off what is ahead, and only the rest fills it. A
  candle that trades through the price fills it whatever the queue (everything there traded).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from core.types import Candle, Fill, Order, OrderStatus, OrderType, Side
from settings import PaperConfig

Policy = Literal["optimistic", "realistic", "pessimistic"]
Intrabar = Literal["stop_first", "take_first", "ohlc"]
FillAt = Literal["close", "next_open"]

POLICIES: tuple[str, ...] = ("optimistic", "realistic", "pessimistic")
INTRABAR: tuple[str, ...] = ("stop_first", "take_first", "ohlc")
FILL_AT: tuple[str, ...] = ("close", "next_open")
# Exit reasons whose orders fill inside the candle (at the level), not at a close/next open.
INTRABAR_REASONS = frozenset({"stop_loss", "take_profit"})
DEFAULT_TICK_FRACTION = 1e-4  # with tick_size 0: one tick = 1 bp of the level
EPS = 1e-12

# Enum members looked up once (each `OrderType.LIMIT` costs ~100 ns on Python 3.11).
_LIMIT, _BUY = OrderType.LIMIT, Side.BUY
_EXPIRED, _FILLED, _PARTIAL = OrderStatus.EXPIRED, OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED


class RestingOrder(Protocol):
    """What matching reads and writes on a resting order (``executors.venue.RestingOrder``)."""

    symbol: str
    side: str
    quantity: float
    price: float
    tag: str
    placed_at: int
    executed: float
    cum_quote: float
    avg_price: float
    fee_paid: float
    queue_ahead: float
    filled_at: int


@dataclass(frozen=True, slots=True)
class FillModel:
    """How a simulated venue fills orders (see the module docstring)."""

    policy: Policy = "realistic"
    fill_at: FillAt = "close"
    intrabar: Intrabar = "stop_first"
    taker_fee_pct: float = 0.1
    maker_fee_pct: float = 0.1
    slippage_bps: float = 0.0
    latency_ms: int = 0
    tick_size: float = 0.0  # 0: DEFAULT_TICK_FRACTION of the price
    max_volume_pct: float | None = 10.0  # realistic/pessimistic: share of a candle's volume we may take
    queue: bool = True  # realistic: a resting order fills on a touch once the queue ahead traded (False: never)

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"fill policy must be one of {', '.join(POLICIES)}, got {self.policy!r}")
        if self.fill_at not in FILL_AT:
            raise ValueError(f"fill_at must be one of {', '.join(FILL_AT)}, got {self.fill_at!r}")
        if self.intrabar not in INTRABAR:
            raise ValueError(f"intrabar must be one of {', '.join(INTRABAR)}, got {self.intrabar!r}")
        if min(self.taker_fee_pct, self.maker_fee_pct, self.slippage_bps, self.latency_ms, self.tick_size) < 0:
            raise ValueError("fees, slippage, latency and tick size must be >= 0")
        if self.max_volume_pct is not None and not 0 < self.max_volume_pct <= 100:
            raise ValueError("max_volume_pct must be in (0, 100] or None")

    # ---- protective exits inside a candle ----------------------------------------------
    def _tick(self, level: float) -> float:
        return self.tick_size if self.tick_size > 0 else level * DEFAULT_TICK_FRACTION

    def _take_hit(self, long: bool, take: float, high: float, low: float) -> bool:
        if self.policy == "optimistic":
            return high >= take if long else low <= take
        if self.policy == "realistic":
            return high > take if long else low < take
        tick = self._tick(take)
        return high >= take + tick if long else low <= take - tick

    def adverse_first(self, c: Candle, long: bool) -> bool:
        """Did the candle visit the side adverse to a long (``long``) or short position first?"""
        if self.intrabar == "stop_first":
            return True
        if self.intrabar == "take_first":
            return False
        return (c.close >= c.open) == long  # ohlc: bullish bars visit the low first

    def exit_check(self, c: Candle, long: bool, stop: float | None,
                   take: float | None) -> tuple[str, float, OrderType] | None:
        """The exit candle ``c`` triggers for an open position, as (reason, price, order type)."""
        stop_hit = stop is not None and (c.low <= stop if long else c.high >= stop)
        take_hit = take is not None and self._take_hit(long, take, c.high, c.low)
        if not (stop_hit or take_hit):
            return None
        if stop_hit and take_hit:
            assert stop is not None and take is not None
            stop_gap = c.open <= stop if long else c.open >= stop
            take_gap = c.open >= take if long else c.open <= take
            if stop_gap:
                take_hit = False
            elif take_gap:
                stop_hit = False
            else:
                stop_hit = self.adverse_first(c, long)
                take_hit = not stop_hit
        if stop_hit:
            assert stop is not None
            if (c.open <= stop) if long else (c.open >= stop):
                price = c.open  # gapped through: the first trade is the open
            elif self.policy == "pessimistic":
                price = c.low if long else c.high  # the worst price of the candle
            else:
                price = stop
            return "stop_loss", price, OrderType.MARKET
        assert take is not None
        return "take_profit", self.limit_price(not long, take, c.open), OrderType.LIMIT

    def limit_price(self, buy: bool, level: float, open_: float) -> float:
        """A limit order's fill price: its level, or the open when the candle opened beyond it (the
        better price), except under ``pessimistic`` (the level even on a gap)."""
        if self.policy == "pessimistic":
            return level
        if buy:
            return open_ if open_ < level else level
        return open_ if open_ > level else level

    def trigger_mask(self, long: bool, stop: float | None, take: float | None,
                     highs: np.ndarray, lows: np.ndarray) -> np.ndarray:
        """Vector form of "exit_check(...) is not None" over many candles (the fast path's
        search for the next exit). Exactly the same comparisons as ``exit_check``."""
        mask = np.zeros(len(highs), dtype=bool)
        if stop is not None:
            mask |= (lows <= stop) if long else (highs >= stop)
        if take is not None:
            if self.policy == "optimistic":
                mask |= (highs >= take) if long else (lows <= take)
            elif self.policy == "realistic":
                mask |= (highs > take) if long else (lows < take)
            else:
                tick = self._tick(take)
                mask |= (highs >= take + tick) if long else (lows <= take - tick)
        return mask

    def volume_cap(self) -> float | None:
        """Share (0..1] of a candle's volume an order may take, or None for no cap."""
        if self.policy == "optimistic" or self.max_volume_pct is None:
            return None
        return self.max_volume_pct / 100.0

    # ---- market orders ------------------------------------------------------------------
    def fill(self, order: Order, price: float, time_ms: int, volume: float | None, quote_asset: str) -> list[Fill]:
        """Fill a risk-approved order at reference ``price`` (the close, the next open, or the level an
        exit check found) decided at ``time_ms``; ``volume``: the candle's (None: unknown, no cap).
        A limit order (take-profit) pays the maker fee at its price; a market order the taker fee,
        slippage (not on an optimistic stop) and the latency. Sets ``order.status``."""
        qty = order.quantity
        if order.order_type is _LIMIT:
            fee_pct, t = self.maker_fee_pct, time_ms
        else:
            fee_pct, t = self.taker_fee_pct, time_ms + self.latency_ms
            if self.slippage_bps and not (self.policy == "optimistic" and order.reason == "stop_loss"):
                slip = self.slippage_bps / 10_000.0  # slippage always hurts
                price = price * (1 + slip) if order.side is _BUY else price * (1 - slip)
        if self.policy != "optimistic" and self.max_volume_pct is not None and volume is not None:
            qty = min(qty, volume * (self.max_volume_pct / 100.0))  # volume_cap()
            if qty <= 0:
                order.status = _EXPIRED
                return []
        order.status = _FILLED if qty >= order.quantity else _PARTIAL
        return [Fill(order.client_order_id, order.bot, order.symbol, order.side, qty, price,
                     qty * price * fee_pct / 100.0, quote_asset, t)]

    # ---- resting limit orders on the simulated venue --------------------------------------
    def level_volume(self, c: Candle, price: float) -> float:
        """The volume a candle is taken to trade at one price level (spread evenly over its range)."""
        tick = self._tick(price)
        return c.volume * tick / (c.high - c.low + tick)

    def _rests_hit(self, o: RestingOrder, c: Candle) -> tuple[bool, bool]:
        """(through, touched): does candle ``c`` trade through the order's price, or only touch it?"""
        buy = o.side == "BUY"
        p = o.price
        if self.policy == "pessimistic":
            tick = self._tick(p)
            return (c.low <= p - tick if buy else c.high >= p + tick), False
        through = c.low < p if buy else c.high > p
        touched = not through and (c.low == p if buy else c.high == p)
        return through, touched

    def match_resting(self, orders: Iterable[RestingOrder], c: Candle) -> list[RestingOrder]:
        """Match candle ``c`` against resting limit orders of its symbol; each order hit gets its
        ``executed``, ``cum_quote`` and ``fee_paid`` raised (partially or to its full quantity).
        Returns the orders that traded on this candle (the caller hands over the complete ones)."""
        hits: list[tuple[RestingOrder, float]] = []  # (order, most it may take here: inf when through)
        for o in orders:
            if o.symbol != c.symbol:
                continue
            if o.queue_ahead < 0:  # the first candle it sees: it joins the back of the queue
                o.queue_ahead = self.level_volume(c, o.price)
            through, touched = self._rests_hit(o, c)
            if through or (touched and self.policy == "optimistic"):
                hits.append((o, float("inf")))
            elif touched and self.policy == "realistic" and self.queue:
                traded, ahead = self.level_volume(c, o.price), o.queue_ahead
                o.queue_ahead = max(0.0, ahead - traded)
                if traded > ahead:
                    hits.append((o, traded - ahead))
        if not hits:
            return []
        buys = [h for h in hits if h[0].side == "BUY"]
        sells = [h for h in hits if h[0].side == "SELL"]
        if buys and sells:  # one candle through both sides: only the side it visited first fills
            long = _entry_side(hits) == "BUY"
            buys, sells = (buys, []) if self.adverse_first(c, long) == long else ([], sells)
        cap = self.volume_cap()
        out = []
        for side_hits, buy in ((buys, True), (sells, False)):
            # price-time priority: the best price first (highest buy, lowest sell), then the oldest
            side_hits.sort(key=lambda h: (-h[0].price if buy else h[0].price, h[0].placed_at))
            budget = float("inf") if cap is None else cap * c.volume
            for o, most in side_hits:
                qty = min(o.quantity - o.executed, most, budget)
                if qty <= EPS:
                    continue
                budget -= qty
                price = self.limit_price(buy, o.price, c.open)
                first = o.executed == 0.0
                o.executed = o.quantity if qty >= o.quantity - o.executed else o.executed + qty
                o.filled_at = c.close_time + 1
                o.cum_quote += qty * price
                o.avg_price = price if first else o.cum_quote / o.executed  # one fill: its price exactly
                o.fee_paid += qty * price * self.maker_fee_pct / 100.0
                out.append(o)
        return out


def paper_model(paper: PaperConfig) -> FillModel:
    """The fill model of the config's ``paper:`` section (its ``fills:`` and fee and slippage figures)."""
    f = paper.fills
    return FillModel(policy=f.policy, intrabar=f.intrabar, taker_fee_pct=paper.fee_pct,  # type: ignore[arg-type]
                     maker_fee_pct=paper.fee_pct if f.maker_fee_pct is None else f.maker_fee_pct,
                     slippage_bps=paper.slippage_bps, latency_ms=f.latency_ms, tick_size=f.tick_size,
                     max_volume_pct=f.max_volume_pct)


def _entry_side(hits: list[tuple[RestingOrder, float]]) -> str:
    """Which side of a two-sided candle adds to the position: a DCA ladder's safety orders (tag SO...)
    say so; without tags, the buys (a long ladder buys below the price)."""
    for o, _ in hits:
        if o.tag.startswith("SO"):
            return o.side
    return "BUY"
