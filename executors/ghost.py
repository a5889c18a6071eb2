"""Ghost mode: places nothing. Every accepted signal becomes its own hypothetical trade at the
signal price (no fees, no slippage), followed until the opposite signal, its stop-loss, its
take-profit or the time horizon closes it. Ghost statistics therefore measure the signals.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from core.exits import touch_exit_check
from core.types import Candle, Fill, Mode, Order, OrderStatus, PositionSide, Side, Trade


@dataclass(slots=True)
class GhostExecutor:
    """Fills at the reference price with no fee: the hypothetical execution of a signal."""

    quote_asset: str = "USDT"
    mode: Mode = Mode.GHOST

    def execute(self, order: Order, ref_price: float, time_ms: int) -> list[Fill]:
        order.status = OrderStatus.FILLED
        return [Fill(order.client_order_id, order.bot, order.symbol, order.side, order.quantity,
                     ref_price, 0.0, self.quote_asset, time_ms)]


@dataclass(slots=True)
class Hypothetical:
    """One signal's hypothetical trade."""

    signal_id: str
    side: str  # LONG | SHORT
    quantity: float
    entry_price: float
    entry_time: int
    stop_loss: float | None = None
    take_profit: float | None = None
    candles_held: int = 0

    @property
    def long(self) -> bool:
        return self.side == PositionSide.LONG.value

    def pnl(self, price: float) -> float:
        return (price - self.entry_price) * self.quantity * (1 if self.long else -1)


@dataclass(slots=True)
class ClosedSignal:
    signal_id: str
    trade: Trade


class SignalTracker:
    """The open hypothetical trades of one ghost bot, each closed on its own terms."""

    def __init__(self, bot: str, symbol: str, horizon_candles: int | None) -> None:
        self.bot = bot
        self.symbol = symbol
        self.horizon = horizon_candles
        self.open: list[Hypothetical] = []

    def add(self, h: Hypothetical) -> None:
        self.open.append(h)

    def unrealized(self, mark: float) -> float:
        return sum(h.pnl(mark) for h in self.open)

    def _close(self, h: Hypothetical, price: float, now: int, reason: str) -> ClosedSignal:
        self.open.remove(h)
        trade = Trade(self.bot, self.symbol, PositionSide(h.side), h.quantity, h.entry_price, price,
                      h.entry_time, now, h.pnl(price), 0.0, reason)
        return ClosedSignal(h.signal_id, trade)

    def on_candle(self, c: Candle, now: int) -> list[ClosedSignal]:
        """Stops before take-profits inside one candle (pessimistic), then the time horizon."""
        out = []
        for h in list(self.open):
            h.candles_held += 1
            hit = touch_exit_check(c, h.long, h.stop_loss, h.take_profit)
            if hit is not None:
                out.append(self._close(h, hit[1], now, hit[0]))
            elif self.horizon and h.candles_held >= self.horizon:
                out.append(self._close(h, c.close, now, "time_horizon"))
        return out

    def close_opposite(self, side: Side, price: float, now: int) -> list[ClosedSignal]:
        closing = PositionSide.SHORT.value if side is Side.BUY else PositionSide.LONG.value
        return [self._close(h, price, now, "opposite_signal") for h in list(self.open) if h.side == closing]

    def close_all(self, price: float, now: int, reason: str) -> list[ClosedSignal]:
        return [self._close(h, price, now, reason) for h in list(self.open)]

    def dump(self) -> list[dict[str, object]]:
        return [asdict(h) for h in self.open]

    def load(self, rows: list[dict[str, object]]) -> None:
        self.open = [Hypothetical(**row) for row in rows]  # type: ignore[arg-type]
