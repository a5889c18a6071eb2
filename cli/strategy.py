"""``bot_manager.py strategy list|check``: the strategies there are (built-in and user, with the user files
that failed to load and why) and the proofs one must pass (``backtest.strategy_check``)."""
from __future__ import annotations

import argparse
import json

from cli._common import exit_bad, load_or_exit

HELP = "list the strategies (built-in and user) or check one for lookahead"


def _list() -> int:
    from strategy.base import informative_of, is_vectorised
    from strategy.registry import build_strategy, origin, params_model, strategy_names, user_report

    for name in strategy_names():
        try:
            s = build_strategy(name)
            vec = "vectorised" if is_vectorised(s) else "per-candle"
            inf = informative_of(s)
            extra = f" informative {', '.join(f'{k}x{v}' for k, v in inf.items())}" if inf else ""
        except Exception:  # noqa: BLE001 - required params: still listed
            vec, extra = "needs params", ""
        fields = ", ".join(params_model(name).model_fields)
        print(f"  {name:20} {origin(name):40} {vec}{extra}  params: {fields or '-'}")
    report = user_report()
    if report is not None:
        print(f"user strategies folder: {report.folder} ({len(report.strategies)} loaded, "
              f"{len(report.errors)} skipped)")
        for err in report.errors:
            print(f"  SKIPPED {err}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from backtest.data import SymbolData, data_files, load_data
    from backtest.strategy_check import check_strategy
    from market.synthetic import DEFAULT_SYMBOLS, SyntheticMarket
    from strategy.registry import strategy_names

    app = load_or_exit(args.config)
    if args.name not in strategy_names():
        exit_bad(f"strategy: unknown strategy {args.name!r}; known: {', '.join(strategy_names())}")
    try:
        params = json.loads(args.params) if args.params else {}
    except ValueError as exc:
        exit_bad(f"--params: not valid JSON: {exc}")
    if args.data:
        loaded = load_data(data_files(args.data), interval=args.interval)
        if not loaded.symbols:
            exit_bad(f"--data: no candles in {args.data}")
        data = loaded.symbols[sorted(loaded.symbols)[0]]
        data = data.between(int(data.times[max(0, len(data) - args.bars)]), None)
    else:
        sym = app.market.symbols[0]
        market = SyntheticMarket({sym: DEFAULT_SYMBOLS.get(sym, 100.0)}, seed=app.market.seed,
                                 interval=app.market.interval)
        data = SymbolData.from_candles(market.history(args.bars, 1_704_067_200_000)[sym])
    try:
        report = check_strategy(args.name, params, data, cuts=args.cuts)
    except ValueError as exc:  # params the strategy's model rejects
        exit_bad(f"strategy {args.name}: {exc}")
    print(f"strategy {report.name} ({report.origin}) on {report.candles} {data.symbol} {data.interval} candles, "
          f"{'vectorised' if report.vectorised else 'per-candle'}:")
    for line in report.passed:
        print(f"  ok   {line}")
    for line in report.problems:
        print(f"  FAIL {line}")
    print("PASSED" if report.ok else "FAILED")
    return 0 if report.ok else 1


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bot_manager.py strategy", description=HELP)
    p.add_argument("--config", help="config file (default: $BOT_CONFIG or config.yaml)")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="built-in and user strategies, and user files that failed to load")
    c = sub.add_parser("check", help="lookahead (truncation and shuffling of future candles) and, for a "
                                     "vectorised strategy, signals() == evaluate()")
    c.add_argument("name")
    c.add_argument("--data", help="candle file or folder (default: the config's synthetic market)")
    c.add_argument("--interval", help="with --data: the interval to use when the folder holds several")
    c.add_argument("--params", help="strategy params as JSON (default: its defaults)")
    c.add_argument("--bars", type=int, default=2000, help="candles checked (the last N of --data)")
    c.add_argument("--cuts", type=int, default=6, help="cut points of the lookahead check")
    args = p.parse_args(argv)
    if args.cmd == "list":
        load_or_exit(args.config)
        return _list()
    return _check(args)
