"""The input of the DCA ladder math (``strategy.dca``): ``DcaParams``, one deal's ladder parameters as
exact Decimals, and the rules they must keep (3Commas' bounds, prices above zero, take-profit steps
that sum to 100 %, a liquidation beyond the entry). These rules are the ladder's only ones: the bot
config (``strategy.dca_settings.DcaConfig``), the dashboard form and ``dca-preview`` all reach them
through ``DcaParams``, whose ``DcaParamsError`` lists every (field, rule) at once.

Only the standard library: the ladder runs in the engine, the UI and the CLI alike.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation, localcontext
from enum import Enum
from typing import Any, Mapping

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
