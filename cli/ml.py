"""``python bot_manager.py ml ...``: the ML signal pipeline.

    ml train --model NAME [--data FILE_OR_DIR ...] [--symbol S] [--horizon 12] [--threshold 0.6]
             [--folds 4] [--embargo N] [--fee-pct 0.1] [--seed 7] [--from/--to/--interval/--bars]
             [fill-model options as for backtest] [--json]
    ml monitor --model NAME [--version N] [--data ...] [--symbol S] [--json]
    ml list [--json]

``train`` builds features and labels from candles, trains a LightGBM classifier on purged
walk-forward splits and writes ``var/models/NAME/vN/`` (``BOT_MODELS_DIR`` moves it) with its
metadata and a backtest of its signals on the holdout; trade it with a bot of strategy
``ml_classifier`` (params: model, version, threshold). ``monitor`` scores a model on newer candles:
hit rate against training, feature drift (PSI). Exit codes: 0 done, 2 bad input (nothing written).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cli.backtest import BAD_INPUT, _bad_input, _common, _data, _model

HELP = "train, monitor and list ML signal models (ml --help)"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bot_manager.py ml", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train a classifier and save a model version")
    _common(t)
    t.add_argument("--model", required=True, help="model name (var/models/NAME)")
    t.add_argument("--symbol", help="the symbol to train on (default: the only one in the data)")
    t.add_argument("--horizon", type=int, default=12, help="label: forward return over this many candles")
    t.add_argument("--threshold", type=float, default=0.6, help="trading threshold on P(gain beyond fees)")
    t.add_argument("--folds", type=int, default=4, help="purged walk-forward folds")
    t.add_argument("--embargo", type=int, default=None, help="candles dropped after the purge (default: horizon)")
    t.add_argument("--fee-pct", type=float, default=None, help="fee per side for the label (default: the taker fee)")
    t.add_argument("--seed", type=int, default=7)
    t.add_argument("--json", action="store_true")
    m = sub.add_parser("monitor", help="hit rate and feature drift of a model on newer candles")
    _common(m)
    m.add_argument("--model", required=True)
    m.add_argument("--version", type=int, default=None)
    m.add_argument("--symbol")
    m.add_argument("--json", action="store_true")
    ls = sub.add_parser("list", help="stored models and their metrics")
    ls.add_argument("--json", action="store_true")
    return p


def _symbol_data(args: argparse.Namespace, app: Any, want: str | None) -> Any:
    loaded = _data(args, app, [want] if want else [])
    if want:
        if want not in loaded.symbols:
            raise ValueError(f"--symbol {want}: not in the data ({', '.join(sorted(loaded.symbols)) or 'none'})")
        return loaded.symbols[want]
    if len(loaded.symbols) != 1:
        raise ValueError(f"the data holds {', '.join(sorted(loaded.symbols))}: pick one with --symbol")
    return next(iter(loaded.symbols.values()))


def main(argv: list[str] | None = None) -> int:
    from backtest.ml.artifact import install_loader

    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    install_loader()  # ml_classifier bots built here read their models from var/models
    try:
        if args.cmd == "list":
            return _list(args)
        if args.cmd == "train":
            return _train(args)
        return _monitor(args)
    except BAD_INPUT as exc:
        return _bad_input(f"ml {args.cmd}", exc)


def _train(args: argparse.Namespace) -> int:
    from backtest.ml.artifact import check_name
    from backtest.ml.train import TrainSpec, train
    from settings import load_config

    check_name(args.model)
    app = load_config(args.config)
    fills = _model(args, app)
    data = _symbol_data(args, app, args.symbol)
    spec = TrainSpec(args.model, args.horizon, args.threshold, args.folds, args.embargo,
                     fills.taker_fee_pct if args.fee_pct is None else args.fee_pct, args.seed)
    folder, meta = train(spec, data, app, fills)
    if args.json:
        print(json.dumps({"path": str(folder), "meta": meta}, allow_nan=False, default=str))
        return 0
    m, bt = meta["metrics"], meta["backtest"]

    def f(x: Any, spec: str = ".3f") -> str:
        return "n/a" if x is None else format(x, spec)

    print(f"model {meta['name']} v{meta['version']} -> {folder}")
    print(f"  data {meta['data']['symbol']} {meta['data']['interval']} {meta['data']['start']} -> "
          f"{meta['data']['end']} ({meta['data']['bars']:,} bars, sha256 {meta['data']['sha256'][:12]})")
    print(f"  label {meta['label']}; base rate {f(m['base_rate'])}")
    print(f"  out-of-sample over {meta['folds']} purged folds (embargo {meta['embargo']}): AUC {f(m['auc'])}  "
          f"accuracy {f(m['accuracy'])}  precision at {meta['threshold']} {f(m['precision_at_threshold'])} "
          f"({m['signals_at_threshold']} rows)")
    print(f"  holdout backtest {bt['start']} -> {bt['end']}: return {f(bt['total_return_pct'], '.2f')} % "
          f"(buy & hold {f(bt['buy_and_hold_return_pct'], '.2f')} %)  Sharpe {f(bt['sharpe'], '.2f')}  "
          f"trades {bt['trades']}  max drawdown {f(bt['max_drawdown_pct'], '.2f')} %")
    print(f"  trade it: strategy ml_classifier, params {{model: {meta['name']}, version: {meta['version']}, "
          f"threshold: {meta['threshold']}}}")
    return 0


def _monitor(args: argparse.Namespace) -> int:
    from backtest.ml.monitor import monitor_model
    from settings import load_config
    from backtest.ml.artifact import read_model
    from strategy.ml_classifier import ModelUnavailable

    try:
        pred = read_model(args.model, args.version)
        app = load_config(args.config)
        data = _symbol_data(args, app, args.symbol or pred.meta.get("data", {}).get("symbol"))
        rep = monitor_model(args.model, pred.version, data)
    except ModelUnavailable as exc:
        raise ValueError(str(exc)) from None
    if args.json:
        print(json.dumps(rep.as_dict(), allow_nan=False))
        return 0
    hr = "n/a" if rep.hit_rate is None else f"{rep.hit_rate:.1%}"
    tp = "n/a" if rep.train_precision is None else f"{rep.train_precision:.1%}"
    print(f"model {rep.model} v{rep.version} on {data.symbol} {len(data):,} candles: {rep.signals} signals scored, "
          f"hit rate {hr} (training precision {tp})")
    print("  PSI " + ", ".join(f"{k} {v:.3f}" for k, v in rep.psi.items()))
    for w in rep.warnings:
        print(f"  WARNING: {w}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from backtest.ml.artifact import list_models

    rows = list_models()
    if args.json:
        print(json.dumps(rows, allow_nan=False, default=str))
        return 0
    if not rows:
        print("no models yet: bot_manager.py ml train --model NAME ...")
    for r in rows:
        if "error" in r:
            print(f"{r['name']} v{r['version']}: {r['error']}")
            continue
        m, bt = r.get("metrics") or {}, r.get("backtest") or {}
        print(f"{r['name']} v{r['version']}  {r.get('data', {}).get('symbol')} {r.get('data', {}).get('interval')}  "
              f"AUC {m.get('auc')}  precision@{r.get('threshold')} {m.get('precision_at_threshold')}  "
              f"holdout return {bt.get('total_return_pct')} %  created {r.get('created_at')}")
    return 0
