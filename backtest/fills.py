"""Simulated fills for backtests: the shared fill model plus what only a backtest can do.

The fill rules (policies, intrabar order, fees, slippage, latency, volume cap, resting orders'
queue and partial fills) are ``executors.fills.FillModel``, the one implementation paper bots use
too (re-exported here). What this module adds is the backtest's own venue, ``BacktestExecutor``:

* ``fill_at="next_open"``: a market order decided on a close fills at the next candle's open (the
  backtesting.py default when ``trade_on_close=False``); one decided on the last candle of the data
  has no next open and expires. A paper bot cannot see the next open when it decides, so paper
  fills at the close only;
* the re-check of an entry against cash at the fill (``portfolio``): an entry sized at a close and
  filled at the next open may cost more than the cash the bot has after a gap; it is resized to
  what the cash pays for (``resized``), or refused when that is nothing (``expired``), so spot cash
  never goes negative.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from core.types import Candle, Fill, Mode, Order, OrderPurpose, OrderStatus, OrderType, Side
from executors.fills import (  # noqa: F401  (re-exported: the backtest's names for the shared model)
    DEFAULT_TICK_FRACTION, FILL_AT, INTRABAR, INTRABAR_REASONS, POLICIES, FillAt, FillModel, Intrabar, Policy,
)
from settings import AppConfig

if TYPE_CHECKING:
    from core.portfolio import Portfolio


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
    series, i)``; the next candle of the series (for ``fill_at="next_open"``) is read only
    when an order needs it. ``portfolio``: the bot's book, for the cash re-check at the fill."""

    model: FillModel = field(default_factory=FillModel)
    quote_asset: str = "USDT"
    mode: Mode = Mode.BACKTEST
    bar: Candle | None = None
    expired: int = 0  # orders that found no price (decided on the last candle), no volume or no cash
    resized: int = 0  # entries cut to what the cash paid for at the fill
    portfolio: "Portfolio | None" = None
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
        if order.order_type is _LIMIT or m.fill_at == "close" or order.reason in INTRABAR_REASONS:
            price, t, volume = ref_price, time_ms, bar.volume if bar else None
        else:  # next_open: the decision was made on the close; the first price after it
            s, j = self._series, self._i + 1
            if s is None or j >= len(s):
                order.status = _EXPIRED
                self.expired += 1
                return []
            # read from the columns: no Candle object needed on this hot path
            price, t, volume = float(s.opens[j]), int(s.times[j]), float(s.volumes[j])
        fills = m.fill(order, price, t, volume, self.quote_asset)
        if not fills:
            self.expired += 1
            return fills
        pf = self.portfolio
        if pf is not None and order.side is _BUY and order.purpose is _ENTRY:
            f = fills[0]
            cost = f.quantity * f.price + f.fee
            if cost > pf.quote:  # a gap since the decision: what the cash pays for, or nothing
                scale = max(0.0, pf.quote) / cost * (1 - 1e-12)
                if scale * f.quantity * f.price <= 0.0:
                    order.status = _EXPIRED
                    order.reason = f"{order.reason}: refused at the fill, no cash for it at {f.price:.8g}"
                    self.expired += 1
                    return []
                f.quantity *= scale
                f.fee *= scale
                order.status = OrderStatus.PARTIALLY_FILLED
                self.resized += 1
        return fills


# Enum members looked up once (each `OrderType.LIMIT` costs ~100 ns on Python 3.11).
_LIMIT, _BUY, _ENTRY = OrderType.LIMIT, Side.BUY, OrderPurpose.ENTRY
_EXPIRED = OrderStatus.EXPIRED


_PAPER = object()  # fill_model's "not given": the config's paper.fills value


def fill_model(app: AppConfig, policy: str | None = None, fill_at: str = "close", intrabar: str | None = None,
               taker_fee: float | None = None, maker_fee: float | None = None, slippage_bps: float | None = None,
               latency_ms: int | None = None, max_volume_pct: "float | None | object" = _PAPER) -> FillModel:
    """The fill model of a run: what is not given is the paper bots' (``paper.fee_pct``, ``slippage_bps``
    and ``paper.fills``), so a backtest without options fills as the paper bots do; ``fill_at`` is the
    backtest's own (paper fills at the close)."""
    f = app.paper.fills
    taker = app.paper.fee_pct if taker_fee is None else taker_fee
    maker = maker_fee if maker_fee is not None else f.maker_fee_pct if f.maker_fee_pct is not None else taker
    return FillModel(
        policy=policy or f.policy, fill_at=fill_at, intrabar=intrabar or f.intrabar,  # type: ignore[arg-type]
        taker_fee_pct=taker, maker_fee_pct=maker,
        slippage_bps=app.paper.slippage_bps if slippage_bps is None else slippage_bps,
        latency_ms=f.latency_ms if latency_ms is None else latency_ms, tick_size=f.tick_size,
        max_volume_pct=f.max_volume_pct if max_volume_pct is _PAPER else max_volume_pct,  # type: ignore[arg-type]
    )
