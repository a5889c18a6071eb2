"""Paper executor: simulated market fills on the feed's prices, with the shared fill model.

A market order decided on a candle's close fills at that close (the reference price), a stop at the
level the exit check found, a take-profit (a LIMIT order) at its limit: ``executors.fills.FillModel.
fill`` prices it (slippage, taker/maker fee, latency, the volume cap against the deciding candle's
volume) exactly as a backtest does. ``bar_of`` gives the candle an order was decided on (the worker's
last candle of the symbol); without it there is no volume cap.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.types import Candle, Fill, Mode, Order
from executors.fills import FillModel


@dataclass(slots=True)
class PaperExecutor:
    fee_pct: float = 0.1
    slippage_bps: float = 2.0
    quote_asset: str = "USDT"
    mode: Mode = Mode.PAPER
    model: FillModel | None = None  # None: realistic with these fee and slippage figures, no volume cap
    bar_of: Callable[[str], Candle | None] | None = None  # symbol -> the candle orders are decided on

    def __post_init__(self) -> None:
        if self.model is None:
            self.model = FillModel(taker_fee_pct=self.fee_pct, maker_fee_pct=self.fee_pct,
                                   slippage_bps=self.slippage_bps, max_volume_pct=None)
        else:
            self.fee_pct, self.slippage_bps = self.model.taker_fee_pct, self.model.slippage_bps

    def execute(self, order: Order, ref_price: float, time_ms: int) -> list[Fill]:
        bar = self.bar_of(order.symbol) if self.bar_of is not None else None
        assert self.model is not None
        return self.model.fill(order, ref_price, time_ms, bar.volume if bar is not None else None, self.quote_asset)
