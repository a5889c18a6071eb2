"""Simulated fills for backtests: fill policies, intrabar order, fees, slippage, latency, volume.

One ``FillModel`` decides two things, and the engine uses the same object on the per-candle
path and on the fast path, so both agree by construction:

* ``exit_check`` (plugged into ``engine.bot.Bot``): does a closed candle trigger the open
  position's stop-loss or take-profit, and at which price;
* ``BacktestExecutor.execute``: the price, fee, time and quantity of a risk-approved order.

Policies (stops are stop-market orders, take-profits are resting limit orders):

==============  =============================  ===============================================
policy          take-profit triggers when      fill price
==============  =============================  ===============================================
optimistic      the candle touches it          stop: the stop level; take: the limit price
realistic       price trades *through* it      stop: level + slippage; take: the limit price;
                (high > take for a long)       quantity capped at ``max_volume_pct`` of the
                                               candle's volume (the rest is cancelled, IOC)
pessimistic     through by one tick            stop: the worst price of the candle (low for a
                (high >= take + tick)          long); take: the limit price; volume cap too
==============  =============================  ===============================================

A stop triggers on a touch in every policy (it is a market order once touched). A candle that
*opens* beyond a level (a gap) fills there at the open, first. When both levels lie inside one
candle, ``intrabar`` says which came first:

* ``stop_first`` (default, the worst case for the strategy),
* ``take_first`` (the best case),
* ``ohlc``: the usual bar-path heuristic: a bullish candle (close >= open) went
  open -> low -> high -> close, a bearish one open -> high -> low -> close.

Market orders decided on a candle's close (entries, opposite-signal exits, time horizon) fill
at that close (``fill_at="close"``) or at the next candle's open (``fill_at="next_open"``, the
backtesting.py default when ``trade_on_close=False``); an order decided on the last candle of
the data has no next open and expires. Market orders and stops pay ``taker_fee_pct``,
take-profits (limit orders) ``maker_fee_pct``. Slippage (bps) always hurts and applies to market
and stop fills, not to limit fills. ``latency_ms`` is added to fill times; its price effect is
modelled by ``fill_at="next_open"`` (the first price after the decision), not per millisecond.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from core.types import Candle, Fill, Mode, Order, OrderStatus, OrderType, Side
from settings import AppConfig

Policy = Literal["optimistic", "realistic", "pessimistic"]
Intrabar = Literal["stop_first", "take_first", "ohlc"]
FillAt = Literal["close", "next_open"]

POLICIES: tuple[str, ...] = ("optimistic", "realistic", "pessimistic")
INTRABAR: tuple[str, ...] = ("stop_first", "take_first", "ohlc")
FILL_AT: tuple[str, ...] = ("close", "next_open")
# Exit reasons whose orders fill inside the candle (at the level), not at a close/next open.
INTRABAR_REASONS = frozenset({"stop_loss", "take_profit"})
DEFAULT_TICK_FRACTION = 1e-4  # with tick_size 0: one tick = 1 bp of the level


@dataclass(frozen=True, slots=True)
class FillModel:
    """How the simulated venue fills orders (see the module docstring)."""

    policy: Policy = "realistic"
    fill_at: FillAt = "close"
    intrabar: Intrabar = "stop_first"
    taker_fee_pct: float = 0.1
    maker_fee_pct: float = 0.1
    slippage_bps: float = 0.0
    latency_ms: int = 0
    tick_size: float = 0.0  # 0: DEFAULT_TICK_FRACTION of the price
    max_volume_pct: float | None = 10.0  # realistic/pessimistic: share of a candle's volume we may take

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
            elif self.intrabar == "stop_first":
                take_hit = False
            elif self.intrabar == "take_first":
                stop_hit = False
            else:  # ohlc: bullish bars visit the low first, bearish bars the high first
                low_first = c.close >= c.open
                stop_hit = low_first == long
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
        gap = (c.open >= take) if long else (c.open <= take)
        price = c.open if gap and self.policy != "pessimistic" else take
        return "take_profit", price, OrderType.LIMIT

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


class CandleSource(Protocol):
    """A symbol's candles as columns (backtest.engine.SymbolData)."""

    times: np.ndarray
    opens: np.ndarray
    volumes: np.ndarray

    def __len__(self) -> int: ...

    def candle(self, i: int) -> Candle: ...


@dataclass(slots=True)
class BacktestExecutor:
    """The simulated venue. Before each bot call the engine says where the bot is: ``at(bar,
    series, i)``; the next candle of the series (for ``fill_at="next_open"``) is built only
    when an order needs it."""

    model: FillModel = field(default_factory=FillModel)
    quote_asset: str = "USDT"
    mode: Mode = Mode.BACKTEST
    bar: Candle | None = None
    expired: int = 0  # orders that found no price (decided on the last candle) or no volume
    _series: CandleSource | None = None
    _i: int = 0

    def at(self, bar: Candle, series: CandleSource | None = None, i: int = 0) -> None:
        self.bar, self._series, self._i = bar, series, i

    @property
    def next_bar(self) -> Candle | None:
        s = self._series
        return s.candle(self._i + 1) if s is not None and self._i + 1 < len(s) else None

    def execute(self, order: Order, ref_price: float, time_ms: int) -> list[Fill]:
        m = self.model
        bar = self.bar
        qty = order.quantity
        if order.order_type is _LIMIT:  # take-profit: priced by exit_check, maker fee
            price, fee_pct, t, volume = ref_price, m.maker_fee_pct, time_ms, bar.volume if bar else None
        else:
            fee_pct = m.taker_fee_pct
            if m.fill_at == "close" or order.reason in INTRABAR_REASONS:
                price, t, volume = ref_price, time_ms + m.latency_ms, bar.volume if bar else None
            else:  # next_open: the decision was made on the close; the first price after it
                s, j = self._series, self._i + 1
                if s is None or j >= len(s):
                    order.status = _EXPIRED
                    self.expired += 1
                    return []
                # read from the columns: no Candle object needed on this hot path
                price, t, volume = float(s.opens[j]), int(s.times[j]) + m.latency_ms, float(s.volumes[j])
            if m.slippage_bps:
                slip = m.slippage_bps / 10_000.0  # slippage always hurts
                price = price * (1 + slip) if order.side is _BUY else price * (1 - slip)
        if m.policy != "optimistic" and m.max_volume_pct is not None and volume is not None:
            qty = min(qty, volume * (m.max_volume_pct / 100.0))  # volume_cap()
            if qty <= 0:
                order.status = _EXPIRED
                self.expired += 1
                return []
        order.status = _FILLED if qty >= order.quantity else OrderStatus.PARTIALLY_FILLED
        fee = qty * price * fee_pct / 100.0
        return [Fill(order.client_order_id, order.bot, order.symbol, order.side, qty, price, fee,
                     self.quote_asset, t)]


# Enum members looked up once (each `OrderType.LIMIT` costs ~100 ns on Python 3.11).
_LIMIT, _BUY = OrderType.LIMIT, Side.BUY
_EXPIRED, _FILLED = OrderStatus.EXPIRED, OrderStatus.FILLED


def fill_model(app: AppConfig, policy: str = "realistic", fill_at: str = "close", intrabar: str = "stop_first",
               taker_fee: float | None = None, maker_fee: float | None = None, slippage_bps: float | None = None,
               latency_ms: int = 0, max_volume_pct: float | None = 10.0) -> FillModel:
    """The fill model of a run: fee and slippage default to the config's paper ones."""
    taker = app.paper.fee_pct if taker_fee is None else taker_fee
    return FillModel(
        policy=policy, fill_at=fill_at, intrabar=intrabar, taker_fee_pct=taker,  # type: ignore[arg-type]
        maker_fee_pct=taker if maker_fee is None else maker_fee,
        slippage_bps=app.paper.slippage_bps if slippage_bps is None else slippage_bps,
        latency_ms=latency_ms, max_volume_pct=max_volume_pct,
    )
