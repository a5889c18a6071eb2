"""DCA (safety-order ladder) math with 3Commas semantics.

Pure functions, no I/O: given the deal parameters and the base-order fill price P0,
compute every safety order (SO) of the ladder, the running average entry, the take-profit
and stop-loss targets, the funds a deal can use and, for leveraged futures, an
approximate isolated-margin liquidation price.

Canonical 3Commas-compatible formulas (long deal; a short mirrors the signs), with
n = 1..N, base step d, step scale SS, volume scale VS:

    step_n = d * SS**(n-1)
    D_n    = step_1 + ... + step_n                 (cumulative deviation from P0)
    P_n    = P0 * (1 - D_n/100)                    (step_mode "cumulative", canonical)
    P_n    = P_{n-1} * (1 - step_n/100)            (step_mode "from_previous", alternative)
    V_n    = SO * VS**(n-1)  (quote),  q_n = V_n / P_n  (base)
    avg_k  = C_k / Q_k,  C_k = BO + sum V_n,  Q_k = BO/P0 + sum q_n
    TP total: avg_k * (1 + tp/100)
    TP base (inferred): (C_k + BO*tp/100) / Q_k

Numbers are ``decimal.Decimal`` throughout so the ladder is reproducible to the last
digit (the engine elsewhere uses floats; convert at the call site). Inputs may be
int, float, str or Decimal; floats are converted through ``str`` so 0.1 stays 0.1.
No fees are modelled here: add quote fees to cum_cost / subtract base fees from cum_qty
at the call site (see docs/dca.md).

The ladder's input, ``DcaParams``, and its rules live in ``strategy.dca_params``; a bot's whole
DCA settings (the ladder plus deal management: trailing, stop timeout, cooldown, ...) are
``strategy.dca_settings.DcaConfig``, whose ``params()`` is the one way from settings to a ladder.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, localcontext
from typing import Any

from strategy.dca_params import (
    _CTX,
    _HUNDRED,
    _ONE,
    _PLAN_CTX,
    _ZERO,
    DcaParams,
    StepMode,
    StopLossReference,
    TakeProfitType,
    _dec,
    _json_value,
)

__all__ = ["Ladder", "Level", "ladder", "liquidation_price", "stop_loss_price", "take_profit_plan",
           "take_profit_price"]


@dataclass(frozen=True)
class Level:
    """One order of the ladder and the deal state once it (and all before it) filled.

    index 0 is the base order (name "BO", step_pct None); SOn has index n.
    tp_price / sl_price follow the params' take_profit_type / stop_loss settings.
    """

    index: int
    name: str
    step_pct: Decimal | None
    cum_deviation_pct: Decimal
    price: Decimal
    quote_size: Decimal
    base_qty: Decimal
    cum_cost: Decimal
    cum_qty: Decimal
    avg_price: Decimal
    tp_total: Decimal
    tp_base: Decimal
    tp_price: Decimal
    sl_price: Decimal | None = None
    liquidation_price: Decimal | None = None  # of the position after this fill (leverage > 1)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _json_value(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class Ladder:
    """The full ladder for one deal.

    max_funds            BO + all N SOs (3Commas "max amount for bot usage", per deal)
    funds_at_open        BO + the first A SOs: what is committed on the exchange at deal open
    max_deviation_pct    deviation of the last SO from P0 (D_N)
    liquidation_price    approximate isolated-margin liquidation of the fully filled deal
                         (None when leverage is 1)
    warnings             human-readable risks, e.g. liquidation before an SO can fill
    """

    params: DcaParams
    base_price: Decimal
    levels: list[Level]
    max_funds: Decimal
    funds_at_open: Decimal
    max_deviation_pct: Decimal
    liquidation_price: Decimal | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def base(self) -> Level:
        return self.levels[0]

    @property
    def safety_orders(self) -> list[Level]:
        return self.levels[1:]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict. Numbers are floats (JSON numbers; the exact values stay in the
        Decimal fields), enums are strings, missing values are None (JSON null)."""
        return {
            "side": self.params.side.value,
            "base_price": float(self.base_price),
            "levels": [lv.to_dict() for lv in self.levels],
            "max_funds": float(self.max_funds),
            "funds_at_open": float(self.funds_at_open),
            "max_deviation_pct": float(self.max_deviation_pct),
            "liquidation_price": _json_value(self.liquidation_price),
            "warnings": list(self.warnings),
            "params": self.params.to_dict(),
        }


def _sign(params: DcaParams) -> Decimal:
    # +1 for a long (profit when price rises), -1 for a short: every formula mirrors on it.
    return _ONE if params.is_long else -_ONE


def take_profit_price(avg: Any, cum_cost: Any, cum_qty: Any, params: DcaParams,
                      profit_pct: Any | None = None) -> Decimal:
    """TP price for a position of cum_qty bought for cum_cost at average avg.

    total: avg * (1 ± tp/100).  base (inferred): (C ± BO*tp/100) / Q, i.e. the price at which
    the whole position earns tp % of the base-order volume. ``profit_pct`` overrides
    params.take_profit_pct (used for TP steps). Long uses +, short uses -.
    """
    tp = params.take_profit_pct if profit_pct is None else _dec(profit_pct)
    return _tp(_dec(avg), _dec(cum_cost), _dec(cum_qty), params, params.take_profit_type, tp)


def _tp(avg: Decimal, cost: Decimal, qty: Decimal, params: DcaParams,
        tp_type: TakeProfitType, tp: Decimal) -> Decimal:
    with localcontext(_CTX):
        s = _sign(params)
        if tp_type is TakeProfitType.TOTAL:
            return avg * (1 + s * tp / _HUNDRED)
        if qty <= 0:
            raise ValueError("cum_qty must be > 0")
        return (cost + s * params.base_order * tp / _HUNDRED) / qty


def take_profit_plan(position_qty: Any, avg: Any, params: DcaParams,
                     qty_step: Any | None = None) -> list[tuple[Decimal, Decimal]]:
    """Split a position into TP orders: [(qty, price), ...].

    Without take_profit_steps: one order for the whole position at take_profit_price.
    With steps: amount_pct of the position each, at that step's profit_pct. Every step but
    the last is rounded DOWN to qty_step (a lot size; default: the position's own decimals,
    but at least 8), and the last takes the remainder, so the quantities add up exactly to
    position_qty (pass a lot-aligned position_qty when using qty_step).
    Steps that round to zero are dropped. For take_profit_type base the position's cost is
    taken as avg * position_qty (the plan is made for the position as it is now).
    """
    with localcontext(_PLAN_CTX):
        qty = _dec(position_qty)
        if qty <= 0:
            raise ValueError("position_qty must be > 0")
        avg_d = _dec(avg)
        cost = avg_d * qty
        steps = params.take_profit_steps or ((_HUNDRED, params.take_profit_pct),)
        # default lot: the position's own decimals, but at least 8 (typical exchange precision)
        quantum = (_dec(qty_step) if qty_step is not None
                   else Decimal(1).scaleb(min(qty.as_tuple().exponent, -8)))
        if quantum <= 0:
            raise ValueError("qty_step must be > 0")
        plan: list[tuple[Decimal, Decimal]] = []
        allocated = _ZERO
        for i, (amount, profit) in enumerate(steps):
            price = take_profit_price(avg_d, cost, qty, params, profit_pct=profit)
            if i == len(steps) - 1:
                part = qty - allocated  # remainder: guarantees an exact total
            else:
                part = (qty * amount / _HUNDRED / quantum).to_integral_value(ROUND_DOWN) * quantum
            if part > 0:
                plan.append((part, price))
                allocated += part
        return plan


def stop_loss_price(avg: Any, base_price: Any, params: DcaParams) -> Decimal | None:
    """SL trigger price, or None when no stop_loss_pct is set.

    Long: ref * (1 - sl/100); short: ref * (1 + sl/100), where ref is the average entry
    (stop_loss_reference average) or the base-order price P0 (base). 3Commas does not state
    which one it uses, hence the explicit setting.
    """
    if params.stop_loss_pct is None:
        return None
    with localcontext(_CTX):
        ref = _dec(avg) if params.stop_loss_reference is StopLossReference.AVERAGE else _dec(base_price)
        return ref * (1 - _sign(params) * params.stop_loss_pct / _HUNDRED)


def liquidation_price(avg: Any, params: DcaParams) -> Decimal | None:
    """APPROXIMATE isolated-margin liquidation price of a position entered at avg.

    long:  avg * (1 - 1/L + mmr)      short: avg * (1 + 1/L - mmr)

    Assumes the margin posted is exactly cost/L and ignores fees, funding, tiered mmr and
    the exchange's maintenance amount; real venues differ slightly. None when L = 1.
    """
    if params.leverage <= 1:
        return None
    with localcontext(_CTX):
        return _dec(avg) * (1 - _sign(params) * (1 / params.leverage - params.maintenance_margin_rate))


def ladder(params: DcaParams, price: Any) -> Ladder:
    """Build the ladder for a deal whose base order filled at ``price`` (P0)."""
    with localcontext(_CTX):
        p0 = _dec(price)
        if p0 <= 0:
            raise ValueError(f"price must be > 0 (got {price!r})")
        s = _sign(params)
        bo = params.base_order

        def level(index: int, name: str, step: Decimal | None, cum_dev: Decimal, p: Decimal,
                  quote: Decimal, cost: Decimal, qty: Decimal) -> Level:
            avg = cost / qty
            tp = params.take_profit_pct
            return Level(
                index=index, name=name, step_pct=step, cum_deviation_pct=cum_dev, price=p,
                quote_size=quote, base_qty=quote / p, cum_cost=cost, cum_qty=qty, avg_price=avg,
                tp_total=_tp(avg, cost, qty, params, TakeProfitType.TOTAL, tp),
                tp_base=_tp(avg, cost, qty, params, TakeProfitType.BASE, tp),
                tp_price=_tp(avg, cost, qty, params, params.take_profit_type, tp),
                sl_price=stop_loss_price(avg, p0, params),
                liquidation_price=liquidation_price(avg, params),
            )

        cost, qty = bo, bo / p0
        levels = [level(0, "BO", None, _ZERO, p0, bo, cost, qty)]
        step, volume, cum_dev, prev = params.deviation_pct, params.safety_order, _ZERO, p0
        for n in range(1, params.max_safety_orders + 1):
            if params.step_mode is StepMode.CUMULATIVE:
                cum_dev += step  # D_n = sum of steps, exact (no division)
                p = p0 * (1 - s * cum_dev / _HUNDRED)
            else:
                p = prev * (1 - s * step / _HUNDRED)
                # compounded distance from P0: 1 - prod(1 - step_k/100), positive for both sides
                cum_dev = s * (p0 - p) / p0 * _HUNDRED
            cost += volume
            qty += volume / p
            levels.append(level(n, f"SO{n}", step, cum_dev, p, volume, cost, qty))
            prev = p
            step *= params.step_scale
            volume *= params.volume_scale

        last = levels[-1]
        a = params.active_safety_orders or 0
        funds_at_open = bo + sum((lv.quote_size for lv in levels[1:a + 1]), _ZERO)
        warnings: list[str] = []
        if params.leverage > 1:
            # Each partial position must survive until the next SO fills, or the ladder is fiction.
            for cur, nxt in zip(levels, levels[1:]):
                liq = cur.liquidation_price
                if liq is not None and s * (liq - nxt.price) >= 0:
                    warnings.append(
                        f"liquidation (~{float(liq):.8g}) after {cur.name} is reached before "
                        f"{nxt.name} at {float(nxt.price):.8g} can fill"
                    )
                    break
        return Ladder(
            params=params,
            base_price=p0,
            levels=levels,
            max_funds=last.cum_cost,
            funds_at_open=funds_at_open,
            max_deviation_pct=last.cum_deviation_pct,
            liquidation_price=last.liquidation_price,
            warnings=warnings,
        )
