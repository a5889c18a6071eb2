"""A signal bot's exits beyond a plain stop and take-profit (``strategy.exit_settings.ExitsConfig``, the bot's
``exits:`` section): ATR stop and take-profit, trailing stop (percent or ATR), move to breakeven and
scale-out targets, each target booked as its own partial exit (a Trade with its P&L).

``PositionExits.opened`` plans the levels when an entry fills: the ATR (Wilder, ``atr_period``) of the bot's
candle history at that candle, the stop and take-profit from it, R = |entry - stop|, the targets' prices
(entry ± R multiple) and quantities (a share of the entry quantity). ``check`` runs each later candle in
place of the plain stop / take-profit check, with the bot's own intrabar rule (``exit_check``: the
worker's touch rule, the backtest fill model's rule), nearest level first: the stop closes everything, a
target its quantity (then the next target is checked in the same candle), the final take-profit the rest.
After the candle the stop moves for the next one, never backwards: to the entry once the best price since
the entry is ``breakeven_at_r`` R in profit, and ``trailing`` behind that best price.

While targets remain the position's ``take_profit`` is None, so a venue bot rests only its stop on the
exchange (a take-profit order there would close the whole position at the first target); the targets are
taken by the candle check, as market-priced exits through the risk engine. The worker's Bot and the
backtest's bar and fast paths run this same object on the same candles (the fast path visits every candle of
a position whose stop can move: ``backtest.fast_visits``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from core.exits import ExitCheck
from core.types import Candle, OrderType, Position, Side, Signal
from strategy.exit_settings import ExitsConfig
from strategy.indicators import atr_last

__all__ = ["PositionExits"]

# (quantity, reference price, reason, order type) -> filled?
Submit = Callable[[float, float, str, OrderType], bool]


@dataclass(slots=True)
class _Target:
    price: float
    quantity: float
    label: str


@dataclass(slots=True)
class _Plan:
    opened_at: int
    long: bool
    entry: float
    risk: float | None  # R
    atr: float | None
    take: float | None  # the final take-profit (the position's once the targets are done)
    peak: float
    stop_kind: str = "stop_loss"
    targets: list[_Target] = field(default_factory=list)


class PositionExits:
    """One signal bot's exit plan for its open position (module docstring)."""

    __slots__ = ("config", "exit_check", "plan")

    def __init__(self, config: ExitsConfig | None, exit_check: ExitCheck) -> None:
        self.config = config
        self.exit_check = exit_check
        self.plan: _Plan | None = None

    def active(self, pos: Position) -> bool:
        """Is there a plan for this open position (opened by the bot in this run)?"""
        return self.plan is not None and self.plan.opened_at == pos.opened_at

    def _atr(self, history: Sequence[Candle]) -> float | None:
        cfg = self.config
        if cfg is None or not cfg.needs_atr or len(history) <= cfg.atr_period:
            return None
        return atr_last([c.high for c in history], [c.low for c in history], [c.close for c in history],
                        cfg.atr_period)

    def entry_stop(self, sig: Signal, price: float, history: Sequence[Candle]) -> float | None:
        """The stop an entry on ``sig`` at ``price`` will get (what the risk engine judges the entry at)."""
        cfg = self.config
        if cfg is None or cfg.stop_atr is None:
            return sig.stop_loss
        atr = self._atr(history)
        if not atr:
            return sig.stop_loss
        return price - (1.0 if sig.side is Side.BUY else -1.0) * cfg.stop_atr * atr

    def opened(self, pos: Position, history: Sequence[Candle]) -> None:
        """An entry filled (a new position): plan its levels; they replace the signal's where configured."""
        cfg = self.config
        if cfg is None:
            return
        long = pos.quantity > 0
        sign = 1.0 if long else -1.0
        entry = pos.avg_entry
        atr = self._atr(history)
        if cfg.stop_atr is not None and atr:
            pos.stop_loss = entry - sign * cfg.stop_atr * atr
        take = entry + sign * cfg.take_atr * atr if cfg.take_atr is not None and atr else pos.take_profit
        risk = abs(entry - pos.stop_loss) if pos.stop_loss is not None and pos.stop_loss != entry else None
        plan = _Plan(pos.opened_at, long, entry, risk, atr, take, entry)
        if risk is not None:
            qty = abs(pos.quantity)
            plan.targets = [_Target(entry + sign * r * risk, qty * pct / 100.0, f"take_profit_{i + 1}")
                            for i, (r, pct) in enumerate(cfg.targets)]
        pos.take_profit = None if plan.targets else take
        self.plan = plan

    def check(self, c: Candle, pos: Position, submit: Submit) -> None:
        """Candle ``c``'s exits for the open position, then the stop moved for the next candle."""
        plan = self.plan
        assert plan is not None
        while pos.quantity != 0.0:
            target = plan.targets[0] if plan.targets else None
            hit = self.exit_check(c, plan.long, pos.stop_loss, target.price if target else plan.take)
            if hit is None:
                break
            reason, price, order_type = hit
            if reason == "stop_loss" or target is None:
                submit(abs(pos.quantity), price, plan.stop_kind if reason == "stop_loss" else reason, order_type)
                return
            left = abs(pos.quantity)
            qty = left if target.quantity >= left * (1 - 1e-9) else target.quantity
            if not submit(qty, price, target.label, order_type):
                return  # refused or not filled: the next candle tries again
            plan.targets.pop(0)
            if not plan.targets:
                pos.take_profit = plan.take
        if pos.quantity != 0.0:
            self._move_stop(c, pos, plan)

    def _move_stop(self, c: Candle, pos: Position, plan: _Plan) -> None:
        cfg = self.config
        assert cfg is not None
        plan.peak = max(plan.peak, c.high) if plan.long else min(plan.peak, c.low)
        sign = 1.0 if plan.long else -1.0
        stop, kind = pos.stop_loss, plan.stop_kind

        def better(level: float) -> bool:
            return stop is None or (level > stop if plan.long else level < stop)

        if cfg.breakeven_at_r is not None and plan.risk is not None and \
                sign * (plan.peak - plan.entry) >= cfg.breakeven_at_r * plan.risk and better(plan.entry):
            stop, kind = plan.entry, "breakeven_stop"
        trail = None
        if cfg.trailing_pct is not None:
            trail = plan.peak * cfg.trailing_pct / 100.0
        elif cfg.trailing_atr is not None and plan.atr:
            trail = cfg.trailing_atr * plan.atr
        if trail is not None and better(plan.peak - sign * trail):
            stop, kind = plan.peak - sign * trail, "trailing_stop"
        pos.stop_loss, plan.stop_kind = stop, kind
