"""DCA ladder preview: a text table and a small CLI around strategy.dca.

    python bot_manager.py dca-preview --price 100 --base-order 10 --safety-order 20 \\
        --deviation 1 --step-scale 2 --volume-scale 1.5 --max-safety-orders 4 --take-profit 1.5

Invalid input prints an error naming the option and the rule to stderr and returns 2;
``main`` never raises SystemExit and never shows a traceback for bad input.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Sequence

from strategy.dca import Ladder, ladder, take_profit_plan
from strategy.dca_params import DcaParams, DcaParamsError, StepMode

PROG = "bot_manager.py dca-preview"
HELP = "print a DCA safety-order ladder before launching a deal"

# DcaParams field -> CLI option, so validation errors name what the user typed.
OPTION_FOR_FIELD: dict[str, str] = {
    "price": "--price",
    "base_order": "--base-order",
    "safety_order": "--safety-order",
    "deviation_pct": "--deviation",
    "step_scale": "--step-scale",
    "volume_scale": "--volume-scale",
    "max_safety_orders": "--max-safety-orders",
    "active_safety_orders": "--active-safety-orders",
    "take_profit_pct": "--take-profit",
    "take_profit_type": "--take-profit-type",
    "take_profit_steps": "--take-profit-step",
    "stop_loss_pct": "--stop-loss",
    "stop_loss_reference": "--stop-loss-reference",
    "side": "--side",
    "leverage": "--leverage",
    "maintenance_margin_rate": "--mmr",
    "step_mode": "--step-mode",
}
# Only snake_case names are rewritten inside messages: plain words like "price" or
# "leverage" also occur as ordinary English in the rules.
_FIELD_RE = re.compile(
    r"\b(" + "|".join(sorted((f for f in OPTION_FOR_FIELD if "_" in f), key=len, reverse=True)) + r")\b"
)


def _q(value: Decimal, places: int) -> str:
    """Round half-up to a fixed number of places (how people read tables), no exponent."""
    return f"{value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):f}"


def _pct(value: Decimal | None) -> str:
    """A percentage with at most 4 decimals and no trailing zeros: 1, 15, 1.95."""
    if value is None:
        return "-"
    text = _q(value, 4)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _places(values: list[Decimal], min_places: int, significant: int) -> int:
    """Decimals needed so the smallest value still shows ``significant`` digits
    (4 decimals hide a 0.00001234 price; BTC quantities need more than 6)."""
    nonzero = [abs(v) for v in values if v]
    if not nonzero:
        return min_places
    smallest = min(nonzero)
    magnitude = math.floor(math.log10(smallest))
    return min(max(min_places, significant - 1 - magnitude), 12)


def format_table(ladder: Ladder, quote: str = "USDT") -> str:
    """Aligned text table of the ladder plus funds, deviation and (leverage > 1) liquidation lines."""
    params = ladder.params
    levels = ladder.levels
    price_dp = _places([lv.price for lv in levels] + [lv.tp_price for lv in levels], 4, 6)
    quote_dp = _places([lv.quote_size for lv in levels], 2, 4)
    qty_dp = _places([lv.base_qty for lv in levels], 6, 6)
    show_sl = params.stop_loss_pct is not None

    header = ["order", "step %", "cum dev %", "price", f"size {quote}", "size base",
              "cum cost", "cum qty", "avg price", f"TP price ({params.take_profit_type.value})"]
    if show_sl:
        header.append(f"SL price ({params.stop_loss_reference.value})")
    rows: list[list[str]] = []
    for lv in levels:
        row = [lv.name, _pct(lv.step_pct), _pct(lv.cum_deviation_pct), _q(lv.price, price_dp),
               _q(lv.quote_size, quote_dp), _q(lv.base_qty, qty_dp), _q(lv.cum_cost, quote_dp),
               _q(lv.cum_qty, qty_dp), _q(lv.avg_price, price_dp), _q(lv.tp_price, price_dp)]
        if show_sl:
            row.append(_q(lv.sl_price, price_dp) if lv.sl_price is not None else "-")
        rows.append(row)

    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        # first column (order name) left-aligned, numbers right-aligned
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    out.append("")
    side = params.side.value
    out.append(f"Side: {side}, step mode: {params.step_mode.value}, "
               f"take profit: {_pct(params.take_profit_pct)}% ({params.take_profit_type.value})")
    out.append(f"Max funds: {_q(ladder.max_funds, quote_dp)} {quote}")
    active = params.active_safety_orders or 0
    out.append(f"Funds at deal open (BO + {active} active SO): {_q(ladder.funds_at_open, quote_dp)} {quote}")
    out.append(f"Max deviation covered: {_pct(ladder.max_deviation_pct)}%")
    if params.take_profit_steps:
        last = levels[-1]
        plan = take_profit_plan(last.cum_qty, last.avg_price, params)
        steps = ", ".join(f"{_q(qty, qty_dp)} @ {_q(price, price_dp)}" for qty, price in plan)
        out.append(f"Take-profit steps after {last.name} fills: {steps}")
    if ladder.liquidation_price is not None:
        lev = _pct(params.leverage)
        out.append(f"Liquidation price (x{lev} isolated): {_q(ladder.liquidation_price, price_dp)} "
                   f"(approximation, mmr {_pct(params.maintenance_margin_rate * 100)}%)")
    for warning in ladder.warnings:
        out.append(f"WARNING: {warning}")
    return "\n".join(out)


def _number(text: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"must be a number (got {text!r})") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"must be a finite number (got {text!r})")
    return value


def _integer(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number (got {text!r})") from None


def _tp_step(text: str) -> tuple[Decimal, Decimal]:
    parts = text.split(":")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"must be AMOUNT_PCT:PROFIT_PCT, e.g. 50:1.5 (got {text!r})")
    return _number(parts[0]), _number(parts[1])


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors through an exception instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Preview a 3Commas-style DCA safety-order ladder.")
    req = p.add_argument_group("required")
    req.add_argument("--price", type=_number, required=True, metavar="P", help="base-order fill price P0")
    req.add_argument("--base-order", type=_number, required=True, metavar="BO", help="base order size (quote)")
    req.add_argument("--safety-order", type=_number, required=True, metavar="SO", help="SO1 size (quote)")
    req.add_argument("--deviation", type=_number, required=True, metavar="D", help="SO1 distance from P0, %%")
    req.add_argument("--step-scale", type=_number, required=True, metavar="SS", help="step multiplier")
    req.add_argument("--volume-scale", type=_number, required=True, metavar="VS", help="SO size multiplier")
    req.add_argument("--max-safety-orders", type=_integer, required=True, metavar="N", help="0..200")
    req.add_argument("--take-profit", type=_number, required=True, metavar="TP", help="take profit, %%")
    p.add_argument("--take-profit-type", choices=["total", "base"], default="total")
    p.add_argument("--take-profit-step", type=_tp_step, action="append", default=None,
                   metavar="AMOUNT:PROFIT", help="TP step, repeat up to 4 times; amounts sum to 100")
    p.add_argument("--active-safety-orders", type=_integer, default=None, metavar="A",
                   help="SOs resting at once, 1..N (default 1)")
    p.add_argument("--step-mode", choices=[m.value for m in StepMode], default="cumulative")
    p.add_argument("--side", choices=["long", "short"], default="long")
    p.add_argument("--leverage", type=_number, default=Decimal(1), metavar="L", help="futures leverage (default 1)")
    p.add_argument("--mmr", type=_number, default=Decimal("0.004"),
                   help="maintenance margin rate for the liquidation estimate (default 0.004)")
    p.add_argument("--stop-loss", type=_number, default=None, metavar="SL", help="stop loss, %%")
    p.add_argument("--stop-loss-reference", choices=["average", "base"], default="average")
    p.add_argument("--quote", default="USDT", help="quote currency label for the text table")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    return p


def _fail(parser: argparse.ArgumentParser, messages: list[str]) -> int:
    parser.print_usage(sys.stderr)
    for message in messages:
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code (0 ok, 2 invalid input)."""
    parser = build_parser()
    args_list: Sequence[str] = sys.argv[1:] if argv is None else argv
    try:
        args = parser.parse_args(list(args_list))
    except _UsageError as exc:
        return _fail(parser, [str(exc)])
    except SystemExit as exc:  # --help
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2

    errors: list[str] = []
    if args.price <= 0:
        errors.append(f"--price: must be > 0 (got {args.price})")
    try:
        params = DcaParams(
            base_order=args.base_order,
            safety_order=args.safety_order,
            deviation_pct=args.deviation,
            step_scale=args.step_scale,
            volume_scale=args.volume_scale,
            max_safety_orders=args.max_safety_orders,
            active_safety_orders=args.active_safety_orders,
            take_profit_pct=args.take_profit,
            take_profit_type=args.take_profit_type,
            take_profit_steps=tuple(args.take_profit_step or ()),
            stop_loss_pct=args.stop_loss,
            stop_loss_reference=args.stop_loss_reference,
            side=args.side,
            leverage=args.leverage,
            maintenance_margin_rate=args.mmr,
            step_mode=args.step_mode,
        )
    except DcaParamsError as exc:
        for name, rule in exc.errors:
            rule = _FIELD_RE.sub(lambda m: OPTION_FOR_FIELD[m.group(1)], rule)
            errors.append(f"{OPTION_FOR_FIELD.get(name, name)}: {rule}")
        params = None
    if errors or params is None:
        return _fail(parser, errors)

    result = ladder(params, args.price)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(format_table(result, quote=args.quote))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
