"""``python bot_manager.py optimize ...``: hyperopt of a configured bot's strategy parameters (Optuna TPE).

    optimize --bot NAME --space fast=5:50 --space slow=20:200 [--trials 100]
             [--objective sharpe|sortino|calmar|profit|expectancy] [--min-trades 1] [--jobs K] [--ray]
             [--study NAME] [--resume] [--seed 42] [--walk-forward K [--wf-mode rolling|anchored]]
             [--data FILE_OR_DIR ...] [--from DATE] [--to DATE] [fill-model options as for backtest] [--json]

A space is ``name=low:high[:step][:log]``, checked against the strategy's params model (its types
and bounds); points the model rejects (``slow <= fast``) are pruned, never run. Trials run in K
local processes (default: all cores), or on Ray with ``--ray`` / ``RAY_ADDRESS``. The study is
stored in ``var/optimize/<study>.db`` (SQLite; ``BOT_OPTIMIZE_DIR`` moves it): ``--resume``
continues it. Results are on the dashboard's Backtest tab. Exit codes: 0 done, 2 bad input
(nothing written), 130 interrupted (what finished is stored; continue with --resume).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Any

from cli.backtest import BAD_INPUT, _bad_input, _common, _prepare

HELP = "hyperopt a bot's strategy parameters with Optuna, walk-forward, on local processes or Ray (optimize --help)"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bot_manager.py optimize", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(p)
    p.add_argument("--bot", required=True, help="the configured bot whose strategy params are optimised")
    p.add_argument("--space", action="append", default=[], metavar="NAME=LOW:HIGH",
                   help="a parameter range: fast=5:50, slow=20:200:5, stop_loss_pct=0.5:5:log (repeatable)")
    p.add_argument("--trials", type=int, default=100, help="trials to finish (per walk-forward window)")
    p.add_argument("--objective", default="sharpe", choices=["sharpe", "sortino", "calmar", "profit", "expectancy"])
    p.add_argument("--min-trades", type=int, default=1, help="a trial with fewer trades is pruned")
    p.add_argument("--jobs", type=int, default=None, help="trials at once (default: all cores)")
    p.add_argument("--ray", action="store_true", help="run trials on Ray (RAY_ADDRESS, else a local instance)")
    p.add_argument("--study", help="study name (default: BOT-OBJECTIVE)")
    p.add_argument("--resume", action="store_true", help="continue the stored study")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--walk-forward", type=int, default=0, metavar="K", help="K train/test windows")
    p.add_argument("--wf-mode", default="rolling", choices=["rolling", "anchored"])
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--json", action="store_true")
    return p


def _max_warmup(strategy: str, base: dict[str, Any], dims: list[Any]) -> int:
    """The most candles the strategy needs over the space (corners and midpoints the model accepts)."""
    from backtest.search_space import probe_points, feasible
    from strategy.base import history_needed
    from strategy.registry import build_strategy, params_model

    model = params_model(strategy)
    most = 0
    for p in probe_points(dims, 50, 0):
        if feasible(model, base, p) is None:
            most = max(most, history_needed(build_strategy(strategy, {**base, **p})))
    return most


def _preflight(args: argparse.Namespace) -> dict[str, Any]:
    """Every check that can fail on the input, before anything is written."""
    from backtest.engine import find_bots
    from backtest.optimize import StudySpec, check_study_name, data_fingerprint, study_file
    from backtest.search_space import check_space, feasible, parse_space
    from backtest.walk_forward import windows
    from strategy.registry import build_strategy, params_model

    if args.trials < 1:
        raise ValueError(f"--trials {args.trials}: must be >= 1")
    if args.min_trades < 0:
        raise ValueError(f"--min-trades {args.min_trades}: must be >= 0")
    if args.jobs is not None and args.jobs < 1:
        raise ValueError(f"--jobs {args.jobs}: must be >= 1")
    name = check_study_name(args.study or f"{args.bot}-{args.objective}")
    app, loaded, model = _prepare(args, [args.bot])
    (cfg,) = find_bots(app, [args.bot])
    if cfg.kind == "dca" or cfg.strategy is None:
        raise ValueError(f"{args.bot} is a DCA bot: optimize varies a strategy's params; DCA settings are not "
                         "optimised")
    pmodel = params_model(cfg.strategy)
    dims = parse_space(args.space, pmodel)
    share = check_space(dims, pmodel, cfg.params)
    unusable = getattr(build_strategy(cfg.strategy, cfg.params), "unavailable", None)
    if unusable:  # e.g. ml_classifier whose model file is missing or corrupt
        raise ValueError(f"bot {cfg.name}: {unusable}")
    if cfg.symbol not in loaded.symbols:
        raise ValueError(f"bot {cfg.name}: no candles for {cfg.symbol}")
    sym_data = loaded.symbols[cfg.symbol]
    wins = []
    if args.walk_forward:
        wins = windows(sym_data, args.walk_forward, args.wf_mode, 2 * _max_warmup(cfg.strategy, cfg.params, dims))
    fixed = {k: v for k, v in cfg.params.items()}
    spec = StudySpec(bot=cfg.name, strategy=cfg.strategy, space=[d.text() for d in dims], objective=args.objective,
                     min_trades=args.min_trades, data=data_fingerprint({cfg.symbol: sym_data}),
                     fill_model=repr(model))
    return {"app": app, "data": {cfg.symbol: sym_data}, "model": model, "cfg": cfg, "dims": dims, "spec": spec,
            "name": name, "file": study_file(name), "windows": wins, "share": share,
            "feasible": lambda p: feasible(pmodel, fixed, p)}


def main(argv: list[str] | None = None) -> int:
    from backtest.ml.artifact import install_loader

    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    install_loader()  # ml_classifier bots read their models (forked trial processes inherit it)
    try:
        plan = _preflight(args)
        if args.walk_forward:
            return _walk_forward(args, plan)
        return _plain(args, plan)
    except BAD_INPUT as exc:
        return _bad_input("optimize", exc)


def _progress(quiet: bool):  # type: ignore[no-untyped-def]
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if not quiet and (now - last[0] > 2 or done == total):
            last[0] = now
            print(f"  {done}/{total} trials", file=sys.stderr, flush=True)
    return show


def _pool(args: argparse.Namespace, plan: dict[str, Any]):  # type: ignore[no-untyped-def]
    from backtest.trials import RunContext, make_pool

    ctx = RunContext(plan["app"], plan["data"], plan["model"], plan["cfg"].name)
    return ctx, make_pool(ctx, args.jobs or os.cpu_count() or 1, args.ray)


def _plain(args: argparse.Namespace, plan: dict[str, Any]) -> int:
    from backtest.optimize import open_study, result_json, run_trials, summarize, trials_table

    study = open_study(plan["name"], plan["spec"], args.resume, args.seed, plan["file"])
    _, pool = _pool(args, plan)
    t0 = time.perf_counter()
    added = 0
    try:
        added = run_trials(study, plan["dims"], plan["feasible"], pool, args.trials, args.objective,
                           args.min_trades, progress=_progress(args.json))
    except KeyboardInterrupt:
        print(f"optimize: interrupted; finished trials are stored in {plan['file']}: continue with --resume",
              file=sys.stderr)
        return 130
    finally:
        pool.close()
    res = summarize(study, added, pool.name, time.perf_counter() - t0, plan["file"])
    if args.json:
        print(result_json(res))
        return 0
    print(f"study {res.name} ({res.file}): {res.finished} trials finished ({res.complete} complete, {res.pruned} "
          f"pruned), {res.new_trials} new in {res.seconds:.1f} s on {res.executor} "
          f"({60 * res.new_trials / max(res.seconds, 1e-9):.0f} trials/min)")
    if res.best:
        print(f"best: trial {res.best['number']} {args.objective} = {res.best['value']:.4f} params {res.best['params']}")
    if res.importance:
        print("importance: " + ", ".join(f"{k} {v:.2f}" for k, v in res.importance.items()))
    for row in trials_table(study, args.top):
        print("  " + "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    return 0


def _walk_forward(args: argparse.Namespace, plan: dict[str, Any]) -> int:
    from backtest.data import iso
    from backtest.optimize import best_of, open_study, run_trials, summarize
    from backtest.walk_forward import (WalkForwardReport, WindowResult, collapsed, concatenate, finish,
                                       out_of_sample, report_text)

    report = WalkForwardReport(plan["name"], args.wf_mode, args.objective)
    # every window's study is checked (exists / resume) before any is created
    specs = []
    for w in plan["windows"]:
        spec = dataclasses.replace(plan["spec"], window=[w.train[0], w.train[1]])
        specs.append((w, spec, f"{plan['name']}-w{w.index}"))
    for w, spec, name in specs:
        _check_window_study(name, spec, args.resume, plan["file"])
    if args.resume and not any(plan["file"].exists() and n in _names(plan["file"]) for _, _, n in specs):
        raise ValueError(f"--resume: no walk-forward study {plan['name']!r} in {plan['file']}")
    ctx, pool = _pool(args, plan)
    oos_results = []
    try:
        for w, spec, name in specs:
            study = open_study(name, spec, args.resume, args.seed + w.index, plan["file"], create_missing=True)
            t0 = time.perf_counter()
            added = run_trials(study, plan["dims"], plan["feasible"], pool, args.trials, args.objective,
                               args.min_trades, window=w.train, progress=_progress(args.json))
            summarize(study, added, pool.name, time.perf_counter() - t0, plan["file"])
            best = best_of(study)
            span = ([iso(w.train[0]), iso(w.train[1])], [iso(w.test[0]), iso(w.test[1])])
            if best is None:
                report.windows.append(WindowResult(w.index, *span, None, {}, {}, {}, False,
                                                   "no complete trial in the train window"))
                continue
            oos, res = out_of_sample(ctx, best["params"], w.test)
            oos_results.append(res)
            ins = best["metrics"]
            report.windows.append(WindowResult(w.index, *span, best["number"], best["params"], ins, oos,
                                               collapsed(ins.get("sharpe"), oos.get("sharpe"))))
    except KeyboardInterrupt:
        print(f"optimize: interrupted; finished trials are stored in {plan['file']}: continue with --resume",
              file=sys.stderr)
        return 130
    finally:
        pool.close()
    report.oos_concatenated = concatenate(oos_results)
    finish(report)
    out = report.as_dict()
    path = plan["file"].with_suffix(".walkforward.json")
    path.write_text(json.dumps(out, allow_nan=False, default=str, indent=1))
    print(json.dumps(out, allow_nan=False, default=str) if args.json else report_text(report))
    return 0


def _names(file: Any) -> list[str]:
    from backtest.optimize import study_names

    return study_names(file)


def _check_window_study(name: str, spec: Any, resume: bool, file: Any) -> None:
    """A window's study may not exist without --resume, nor ask another question with it."""
    from backtest.optimize import stored_spec

    exists = file.exists() and name in _names(file)
    if exists and resume:
        diff = spec.differences(stored_spec(file, name))
        if diff:
            raise ValueError(f"--resume: study {name!r} was run with other settings: {'; '.join(diff)}")
    if exists and not resume:
        raise ValueError(f"study {name!r} already exists in {file}: add --resume to continue it, or pick another "
                         "--study")
