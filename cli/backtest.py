"""``python bot_manager.py backtest ...``: run configured bots over stored candles.

    backtest [--config FILE] [--bot NAME ...] [--data FILE_OR_DIR ...] [--from DATE] [--to DATE]
             [--fill-policy optimistic|realistic|pessimistic] [--fill-at close|next_open]
             [--intrabar stop_first|take_first|ohlc] [--json] [--plots DIR] ...
    backtest sweep --bot NAME --grid fast=5,10,20 --grid slow=30:90:20 [--sort sharpe] [--jobs N] ...

DCA bots (``kind: dca``) run on the bar path over all of their pairs and print a deals table
(``backtest.dca``); ``--path fast`` is refused for them.

Data: ``--data`` files or directories (data.binance.vision zip/csv, the shared market CSVs);
else the config's ``market.replay_files``; else ``--bars`` candles of the config's seeded
synthetic market. Exit codes: 0 done, 2 bad input (config, data, bot names).
"""
from __future__ import annotations

import argparse
import json
import sys

from backtest.data import LoadedData, data_info, parse_time, resolve_data
from backtest.engine import find_bots, run_config
from backtest.fills import FILL_AT, INTRABAR, POLICIES, FillModel, fill_model
from backtest.report import build_report, deals_text, summary_text
from settings import AppConfig, ConfigError, load_config

HELP = "run bots over stored candles, or sweep parameters (backtest --help)"
BAD_INPUT = (ConfigError, ValueError, FileNotFoundError)  # exit code 2: config, data, bot names


def _bad_input(prog: str, exc: Exception) -> int:
    """Say what was wrong with the input (a config error speaks for itself) and return exit code 2."""
    print(exc if isinstance(exc, ConfigError) else f"{prog}: {exc}", file=sys.stderr)
    return 2


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="config file (default: $BOT_CONFIG or config.yaml)")
    p.add_argument("--data", action="append", default=[], help="candle file or directory (repeatable)")
    p.add_argument("--from", dest="start", help="first candle open time (UTC date/ISO time or epoch ms)")
    p.add_argument("--to", dest="end", help="end, exclusive (UTC date/ISO time or epoch ms)")
    p.add_argument("--interval", help="only files of this interval (a directory may hold several)")
    p.add_argument("--bars", type=int, default=20_000, help="synthetic candles when there are no data files")
    p.add_argument("--fill-policy", default=None, choices=POLICIES, help="default: paper.fills.policy")
    p.add_argument("--fill-at", default="close", choices=FILL_AT,
                   help="market orders decided on a close fill at that close or at the next open")
    p.add_argument("--intrabar", default=None, choices=INTRABAR,
                   help="which of stop and take-profit inside one candle came first (default: paper.fills.intrabar)")
    p.add_argument("--taker-fee", type=float, default=None, help="percent (default: paper.fee_pct)")
    p.add_argument("--maker-fee", type=float, default=None,
                   help="percent (default: paper.fills.maker_fee_pct, else the taker fee)")
    p.add_argument("--slippage-bps", type=float, default=None, help="default: paper.slippage_bps")
    p.add_argument("--latency-ms", type=int, default=None, help="default: paper.fills.latency_ms")
    p.add_argument("--max-volume-pct", type=float, default=None,
                   help="realistic/pessimistic: largest share of a candle's volume one order takes "
                        "(default: paper.fills.max_volume_pct)")
    p.add_argument("--path", default="auto", choices=["auto", "fast", "bar"],
                   help="fast: vectorised signals + event visits; bar: every candle through evaluate(); "
                        "DCA bots: bar only")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bot_manager.py backtest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(p)
    p.add_argument("--bot", action="append", default=[], help="bot name (repeatable; default: all enabled)")
    p.add_argument("--json", action="store_true", help="print one JSON object (reports with trade lists)")
    p.add_argument("--plots", metavar="DIR", help="write equity/trades/monthly HTML plots here")
    return p


def _sweep_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bot_manager.py backtest sweep",
                                description="grid of strategy parameters across cores, ranked by a metric")
    _common(p)
    p.add_argument("--bot", required=True, help="the configured bot whose params are swept")
    p.add_argument("--grid", action="append", required=True, metavar="NAME=VALUES",
                   help="fast=5,10,20 or slow=20:100:10 (repeatable)")
    p.add_argument("--sort", default="sharpe", help="metric to rank by (sharpe, total_return_pct, calmar, ...)")
    p.add_argument("--jobs", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--json", action="store_true")
    return p


def _model(args: argparse.Namespace, app: AppConfig) -> FillModel:
    cap = {} if args.max_volume_pct is None else {"max_volume_pct": args.max_volume_pct}
    return fill_model(app, args.fill_policy, args.fill_at, args.intrabar, args.taker_fee, args.maker_fee,
                      args.slippage_bps, args.latency_ms, **cap)


def _data(args: argparse.Namespace, app: AppConfig, symbols: list[str]) -> LoadedData:
    return resolve_data(app, args.data, parse_time(args.start), parse_time(args.end), symbols, args.interval,
                        args.bars)


def _prepare(args: argparse.Namespace, bots: list[str]) -> tuple[AppConfig, LoadedData, FillModel]:
    app = load_config(args.config)
    symbols = sorted({s for b in find_bots(app, bots) for s in b.symbols})  # a DCA bot may trade several pairs
    return app, _data(args, app, symbols), _model(args, app)


def main(argv: list[str] | None = None) -> int:
    from backtest.ml.artifact import install_loader

    install_loader()  # ml_classifier bots read their model files (sweep processes inherit it)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "sweep":
        return _sweep(argv[1:])
    args = _parser().parse_args(argv)
    try:
        app, loaded, model = _prepare(args, args.bot)
        results = run_config(app, loaded.symbols, model, args.bot or None, path=args.path)
    except BAD_INPUT as exc:
        return _bad_input("backtest", exc)
    reports = [build_report(r) for r in results]
    plots: dict[str, list[str]] = {}
    if args.plots:
        from backtest.plots import write_plots

        for r in results:
            plots[r.name] = [str(p) for p in write_plots(r, args.plots)]
    info = data_info(loaded)
    if args.json:
        print(json.dumps({"bots": reports, "data": info, "plots": plots}, allow_nan=False))
        return 0
    for d in info["symbols"]:
        print(f"data {d['symbol']} {d['interval']}: {d['bars']:,} bars {d['start']} -> {d['end']}")
        q = d["quality"]
        print(f"  quality: {q['rejected_total']} rows rejected {q['rejected'] or ''}, {q['gaps']} gaps "
              f"({q['missing_bars']} bars missing, {q['long_gaps']} longer than {q['rules']['max_gap_bars']}), "
              f"{q['outliers']} outliers (a move over {q['rules']['outlier_k']:g} sigma)")
    for f in info["files"]:
        if f["rejected"] or f["gaps"]:
            print(f"  {f['file']}: rejected {f['rejected']}, {f['gaps']} gaps")
    for rep in reports:
        print()
        print(summary_text(rep))
        if rep.get("kind") == "dca":
            print(deals_text(rep))
    for name, files in plots.items():
        print(f"plots for {name}: {', '.join(files)}")
    return 0


def _sweep(argv: list[str]) -> int:
    from backtest.sweep import parse_grid, run_sweep, table_text

    args = _sweep_parser().parse_args(argv)
    try:
        spec = parse_grid(args.grid)
        app, loaded, model = _prepare(args, [args.bot])
        rows = run_sweep(app, loaded.symbols, model, args.bot, spec, args.sort, args.jobs)
    except BAD_INPUT as exc:
        return _bad_input("backtest sweep", exc)
    if args.json:
        print(json.dumps({"sort": args.sort, "rows": [{"params": r.params, "metrics": r.metrics, "error": r.error}
                                                      for r in rows]}, allow_nan=False))
    else:
        print(table_text(rows, args.sort, args.top))
    return 0
