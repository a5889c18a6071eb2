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

This module deliberately imports only the standard library (no pydantic) so it can
be used by the engine, the UI and the CLI without extra dependencies; ``DcaParams``
therefore validates itself in ``__post_init__`` and ``DcaParams.from_mapping``
rejects unknown keys (the equivalent of pydantic's ``extra="forbid"``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Context, Decimal, InvalidOperation, localcontext
from enum import Enum
from typing import Any, Mapping

__all__ = [
    "DcaParams",
    "DcaParamsError",
    "DealSide",
    "Ladder",
    "Level",
    "StepMode",
    "StopLossReference",
    "TakeProfitType",
    "ladder",
    "liquidation_price",
    "stop_loss_price",
    "take_profit_plan",
    "take_profit_price",
]

# 40 significant digits: far more than any exchange tick, so rounding never shows up
# in the reported decimals, and sums of ladder values stay exact in practice.
_CTX = Context(prec=40)
# Wider still for the TP split: sums of lot-rounded parts must never round.
_PLAN_CTX = Context(prec=100)

_HUNDRED = Decimal(100)
_ZERO = Decimal(0)
_ONE = Decimal(1)

MAX_SAFETY_ORDERS = 200  # 3Commas' own upper bound
MAX_TP_STEPS = 4  # 3Commas allows at most 4 take-profit steps
MAX_SCALE = Decimal(10)  # our bound for SS and VS: keeps 10**200 inside float range for to_dict()
MAX_LEVERAGE = Decimal(125)  # highest leverage any major venue offers


class DealSide(str, Enum):
    LONG = "long"
    SHORT = "short"


class TakeProfitType(str, Enum):
    TOTAL = "total"  # profit measured on the whole position (from the average price)
    BASE = "base"  # profit measured on the base-order volume only (inferred semantics)


class StopLossReference(str, Enum):
    AVERAGE = "average"  # SL distance measured from the current average entry
    BASE = "base"  # SL distance measured from the base-order price P0


class StepMode(str, Enum):
    CUMULATIVE = "cumulative"  # canonical 3Commas: D_n = sum of steps, measured from P0
    FROM_PREVIOUS = "from_previous"  # each SO is step_n % beyond the previous SO's price


class DcaParamsError(ValueError):
    """Invalid DCA parameters. ``errors`` lists (field, rule) pairs; str() names them all."""

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{name}: {rule}" for name, rule in errors))


def _dec(value: Any) -> Decimal:
    """Convert a user number to Decimal; raises ValueError for bools, NaN, inf, junk."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    if isinstance(value, Decimal):
        out = value
    elif isinstance(value, (int, float, str)):
        try:
            out = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"must be a number (got {value!r})") from None
    else:
        raise ValueError(f"must be a number (got {type(value).__name__})")
    if not out.is_finite():
        raise ValueError(f"must be a finite number (got {value!r})")
    return out


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("must be an integer, not a boolean")
    if isinstance(value, int):
        return value
    d = _dec(value)
    if d != d.to_integral_value():
        raise ValueError(f"must be a whole number (got {value!r})")
    return int(d)


def _enum(enum_cls: type[Enum], value: Any) -> Any:
    if isinstance(value, enum_cls):
        return value
    try:
        return enum_cls(str(value).strip().lower())
    except ValueError:
        allowed = "|".join(m.value for m in enum_cls)  # type: ignore[attr-defined]
        raise ValueError(f"must be one of {allowed} (got {value!r})") from None


@dataclass(frozen=True)
class DcaParams:
    """One DCA deal configuration (3Commas field names in brackets).

    base_order            BO, quote amount of the first order [base_order_volume]
    safety_order          SO, quote amount of SO1 [safety_order_volume]
    deviation_pct         d, % distance of SO1 from P0 [safety_order_step_percentage]
    step_scale            SS, multiplier of each successive step [martingale_step_coefficient]
    volume_scale          VS, multiplier of each successive SO size [martingale_volume_coefficient]
    max_safety_orders     N, 0..200 [max_safety_orders]
    active_safety_orders  A, SO limits resting at once, 1..N (0 when N = 0; default min(1, N))
                          [active_safety_orders_count]
    take_profit_pct       tp > 0 [take_profit]
    take_profit_type      total | base [take_profit_type]
    take_profit_steps     up to 4 (amount_pct, profit_pct); amounts sum to 100. Empty means
                          one step: 100 % at take_profit_pct [take_profit_steps]
    stop_loss_pct         optional SL distance in % [stop_loss_percentage]
    stop_loss_reference   average | base: where the SL distance is measured from
    side                  long | short
    leverage              1..125 (futures; 1 = spot / no liquidation price reported)
    maintenance_margin_rate  mmr for the liquidation approximation, default 0.004
    step_mode             cumulative (canonical) | from_previous
    """

    base_order: Decimal
    safety_order: Decimal
    deviation_pct: Decimal
    step_scale: Decimal = Decimal(1)
    volume_scale: Decimal = Decimal(1)
    max_safety_orders: int = 0
    active_safety_orders: int | None = None
    take_profit_pct: Decimal = Decimal(1)
    take_profit_type: TakeProfitType = TakeProfitType.TOTAL
    take_profit_steps: tuple[tuple[Decimal, Decimal], ...] = ()
    stop_loss_pct: Decimal | None = None
    stop_loss_reference: StopLossReference = StopLossReference.AVERAGE
    side: DealSide = DealSide.LONG
    leverage: Decimal = Decimal(1)
    maintenance_margin_rate: Decimal = Decimal("0.004")
    step_mode: StepMode = StepMode.CUMULATIVE

    def __post_init__(self) -> None:
        errors: list[tuple[str, str]] = []
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)

        def conv(name: str, fn: Any) -> Any:
            try:
                value = fn(getattr(self, name))
            except ValueError as exc:
                errors.append((name, str(exc)))
                return None
            set_(name, value)
            return value

        bo = conv("base_order", _dec)
        so = conv("safety_order", _dec)
        d = conv("deviation_pct", _dec)
        ss = conv("step_scale", _dec)
        vs = conv("volume_scale", _dec)
        n = conv("max_safety_orders", _int)
        a = None if self.active_safety_orders is None else conv("active_safety_orders", _int)
        tp = conv("take_profit_pct", _dec)
        conv("take_profit_type", lambda v: _enum(TakeProfitType, v))
        sl = None if self.stop_loss_pct is None else conv("stop_loss_pct", _dec)
        conv("stop_loss_reference", lambda v: _enum(StopLossReference, v))
        side = conv("side", lambda v: _enum(DealSide, v))
        lev = conv("leverage", _dec)
        mmr = conv("maintenance_margin_rate", _dec)
        mode = conv("step_mode", lambda v: _enum(StepMode, v))
        long = side is DealSide.LONG

        if bo is not None and bo <= 0:
            errors.append(("base_order", f"must be > 0 (got {bo})"))
        if so is not None and so <= 0:
            errors.append(("safety_order", f"must be > 0 (got {so})"))
        if d is not None and not (0 < d < 100):
            errors.append(("deviation_pct", f"must be > 0 and < 100 (got {d})"))
        if ss is not None and not (0 < ss <= MAX_SCALE):
            errors.append(("step_scale", f"must be > 0 and <= {MAX_SCALE} (got {ss})"))
        if vs is not None and not (0 < vs <= MAX_SCALE):
            errors.append(("volume_scale", f"must be > 0 and <= {MAX_SCALE} (got {vs})"))
        if n is not None and not (0 <= n <= MAX_SAFETY_ORDERS):
            errors.append(("max_safety_orders", f"must be between 0 and {MAX_SAFETY_ORDERS} (got {n})"))
            n = None
        if n is not None:
            if a is None and self.active_safety_orders is None:
                set_("active_safety_orders", min(1, n))  # 3Commas default: one SO resting
            elif a is not None:
                if n == 0 and a != 0:
                    errors.append(("active_safety_orders", f"must be 0 when max_safety_orders is 0 (got {a})"))
                elif n > 0 and not (1 <= a <= n):
                    errors.append(("active_safety_orders", f"must be between 1 and max_safety_orders={n} (got {a})"))
        if tp is not None:
            if tp <= 0:
                errors.append(("take_profit_pct", f"must be > 0 (got {tp})"))
            elif not long and tp >= 100:
                errors.append(("take_profit_pct", f"must be < 100 for a short (got {tp})"))
        try:
            steps = self._convert_steps(self.take_profit_steps, long)
            set_("take_profit_steps", steps)
        except ValueError as exc:
            errors.append(("take_profit_steps", str(exc)))
        if sl is not None:
            if sl <= 0:
                errors.append(("stop_loss_pct", f"must be > 0 (got {sl})"))
            elif long and sl >= 100:
                errors.append(("stop_loss_pct", f"must be < 100 for a long (got {sl})"))
        if lev is not None and not (1 <= lev <= MAX_LEVERAGE):
            errors.append(("leverage", f"must be between 1 and {MAX_LEVERAGE} (got {lev})"))
            lev = None
        if mmr is not None:
            if not (0 <= mmr < 1):
                errors.append(("maintenance_margin_rate", f"must be >= 0 and < 1 (got {mmr})"))
            elif lev is not None and lev > 1 and mmr >= 1 / lev:
                # liquidation would sit at or beyond the entry: the deal could never open
                errors.append(("maintenance_margin_rate", f"must be < 1/leverage = {_ONE / lev:.6f} (got {mmr})"))
        # A long ladder must keep every SO price above zero.
        if long and None not in (d, ss, n, mode) and 0 < d < 100 and 0 < ss <= MAX_SCALE and n > 0:
            with localcontext(_CTX):
                if mode is StepMode.CUMULATIVE:
                    deepest = _cum_deviation(d, ss, n)
                    if deepest >= 100:
                        errors.append((
                            "max_safety_orders",
                            f"SO{n} would sit {deepest.normalize():f}% below the base price (>= 100%, "
                            "price <= 0); lower max_safety_orders, deviation_pct or step_scale",
                        ))
                else:
                    last_step = d * ss ** (n - 1)
                    if last_step >= 100:
                        errors.append((
                            "max_safety_orders",
                            f"the step to SO{n} would be {last_step.normalize():f}% (>= 100%, price <= 0); "
                            "lower max_safety_orders, deviation_pct or step_scale",
                        ))
        if errors:
            order = {f.name: i for i, f in enumerate(dataclasses.fields(self))}
            raise DcaParamsError(sorted(errors, key=lambda e: order.get(e[0], len(order))))

    @staticmethod
    def _convert_steps(raw: Any, long: bool) -> tuple[tuple[Decimal, Decimal], ...]:
        if raw is None:
            return ()
        try:
            items = list(raw)
        except TypeError:
            raise ValueError("must be a list of (amount_pct, profit_pct) pairs") from None
        if len(items) > MAX_TP_STEPS:
            raise ValueError(f"at most {MAX_TP_STEPS} steps allowed (got {len(items)})")
        out: list[tuple[Decimal, Decimal]] = []
        for i, item in enumerate(items, 1):
            if isinstance(item, Mapping):
                item = (item.get("amount_pct", item.get("amount_percentage")),
                        item.get("profit_pct", item.get("profit_percentage")))
            try:
                amount, profit = item
            except (TypeError, ValueError):
                raise ValueError(f"step {i} must be an (amount_pct, profit_pct) pair") from None
            amount, profit = _dec(amount), _dec(profit)
            if amount <= 0:
                raise ValueError(f"step {i} amount_pct must be > 0 (got {amount})")
            if profit <= 0:
                raise ValueError(f"step {i} profit_pct must be > 0 (got {profit})")
            if not long and profit >= 100:
                raise ValueError(f"step {i} profit_pct must be < 100 for a short (got {profit})")
            out.append((amount, profit))
        if out:
            total = sum((a for a, _ in out), _ZERO)
            if total != 100:
                raise ValueError(f"amount_pct values must sum to 100 (got {total.normalize():f})")
        return tuple(out)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "DcaParams":
        """Build from a config dict; unknown keys are an error (like pydantic extra="forbid")."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise DcaParamsError([(k, "unknown field (extra fields are forbidden)") for k in unknown])
        missing = [f.name for f in dataclasses.fields(cls)
                   if f.default is dataclasses.MISSING and f.name not in data]
        if missing:
            raise DcaParamsError([(k, "field required") for k in missing])
        return cls(**data)

    @property
    def is_long(self) -> bool:
        return self.side is DealSide.LONG

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (numbers as floats, enums as their string values)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "take_profit_steps":
                value = [[float(a), float(p)] for a, p in value]
            out[f.name] = _json_value(value)
        return out


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


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Enum):
        return value.value
    return value


def _cum_deviation(d: Decimal, ss: Decimal, n: int) -> Decimal:
    """D_n = d * (SS**n - 1)/(SS - 1), or d*n when SS = 1 (summed, so both cases are one path)."""
    total, step = _ZERO, d
    for _ in range(n):
        total += step
        step *= ss
    return total


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
