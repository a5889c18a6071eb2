"""Backtests for the dashboard: a validated request, one run, and a separate process for it.

* ``BacktestRequest``: what the Backtest tab posts (as the ``payload`` of a ``backtest``
  command): a configured bot, a data file or directory, a date range and the fill model.
* ``run_request(app or config path, request) -> dict``: the run itself (``backtest.engine``, the
  same engine as the CLI) as one JSON-ready dict: the report with its trade list, the plot
  data (equity and drawdown thinned to at most ``MAX_CURVE_POINTS`` points, candles, monthly
  returns) and what data was loaded. A DCA bot's report also has its deals table (all its
  ``dca.pairs`` are loaded; it runs on the bar path, see ``backtest.dca``).
* ``start_in_process(request, redis_url, app, result_id) -> id``: for the worker: marks the
  result ``running`` in Redis, runs ``run_request`` in a *spawned* process (the worker's
  trading loop never waits for it, and a crash there cannot touch the worker) and stores the
  result as ``done`` or ``failed`` with the error (``state.backtest_store``).

Data paths from the dashboard are confined to the shared market directory and the config's
``market.replay_files``: a request cannot make the worker read an arbitrary file.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import time
import uuid
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.validation import format_errors
from settings import AppConfig, load_config
from state.connection import connect

MAX_CURVE_POINTS = 2000
MAX_TRADES_STORED = 10_000  # a 1m run can make tens of thousands; the report counts them all
MAX_DEALS_STORED = 10_000  # DCA bots: the deals table, likewise
MAX_RUNNING = 2  # backtests at once per worker host (each takes a core)
STALE_RUNNING_MS = 6 * 3_600_000  # a "running" line this old lost its process (worker restart)


class BacktestRequest(BaseModel):
    """One dashboard backtest. ``from``/``to`` accept '2024-06-01', an ISO time or epoch ms
    (``to`` exclusive); no data means the config's replay files, else its synthetic market."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    bot: str = Field(min_length=1, max_length=64)
    data: str | None = Field(None, max_length=1000, description="candle file or directory")
    start: str | None = Field(None, alias="from", max_length=40)
    end: str | None = Field(None, alias="to", max_length=40)
    fill_policy: Literal["optimistic", "realistic", "pessimistic"] = "realistic"
    fill_at: Literal["close", "next_open"] = "close"
    intrabar: Literal["stop_first", "take_first", "ohlc"] = "stop_first"
    interval: str | None = Field(None, max_length=4, description="only files of this interval")
    path: Literal["auto", "fast", "bar"] = "auto"
    bars: int = Field(20_000, ge=100, le=2_000_000, description="synthetic candles when there is no data")

    @field_validator("start", "end")
    @classmethod
    def _time(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        from backtest.data import parse_time

        try:
            parse_time(v)
        except ValueError as exc:
            raise ValueError(f"not a date/time: {v!r}") from exc
        return v

    def payload(self) -> str:
        """The command payload (JSON, with ``from``/``to``)."""
        return self.model_dump_json(by_alias=True, exclude_none=True)


def data_choices(app: AppConfig) -> list[str]:
    """Candle files a dashboard user may pick: the CSV/zip files under the shared market
    directory, then the config's replay files (files or directories)."""
    from backtest.data import data_files
    from market.replay import shared_market_dir

    out: list[str] = []
    base = shared_market_dir()
    if base is not None:
        out.extend(str(p) for p in data_files(base))
    for f in app.market.replay_files:
        if f not in out:
            out.append(f)
    return out


def _allowed(app: AppConfig, path: str) -> bool:
    from market.replay import shared_market_dir

    p = Path(path).expanduser().resolve()
    roots = [Path(f).expanduser().resolve() for f in app.market.replay_files]
    base = shared_market_dir()
    if base is not None:
        roots.append(base.resolve())
    return any(p == r or r in p.parents for r in roots)


def run_request(app: AppConfig | str | os.PathLike[str] | None, request: BacktestRequest) -> dict[str, Any]:
    """Run one request; raises ValueError/FileNotFoundError on bad input (unknown bot, data)."""
    from backtest.data import data_info, parse_time, resolve_data
    from backtest.engine import find_bots, run_config
    from backtest.fills import fill_model
    from backtest.plots import plot_data
    from backtest.report import build_report, json_safe

    cfg_app = app if isinstance(app, AppConfig) else load_config(app)
    (bot,) = find_bots(cfg_app, [request.bot])
    if request.data and not _allowed(cfg_app, request.data):
        raise ValueError(f"{request.data}: only files under the shared market directory or the config's "
                         "market.replay_files can be backtested from the dashboard")
    t0 = time.perf_counter()
    loaded = resolve_data(cfg_app, [request.data] if request.data else [], parse_time(request.start),
                          parse_time(request.end), bot.symbols, request.interval, request.bars)
    model = fill_model(cfg_app, request.fill_policy, request.fill_at, request.intrabar)
    res = run_config(cfg_app, loaded.symbols, model, [bot.name], path=request.path)[0]
    elapsed = time.perf_counter() - t0
    report = build_report(res, include_trades=True)
    trades = report.get("trade_list", [])
    if len(trades) > MAX_TRADES_STORED:
        report["trade_list"] = trades[-MAX_TRADES_STORED:]
        report["trade_list_truncated"] = len(trades)
    deals = report.get("deals", [])
    if len(deals) > MAX_DEALS_STORED:  # the summary still counts them all
        report["deals"] = deals[-MAX_DEALS_STORED:]
        report["deals_truncated"] = len(deals)
    return json_safe({
        "bot": bot.name,
        "request": request.model_dump(by_alias=True),
        "report": report,
        "plot": plot_data(res, max_points=MAX_CURVE_POINTS),
        "data": data_info(loaded),
        "elapsed_s": elapsed,
        "bars_per_s": res.bars / elapsed if elapsed > 0 else None,
        "finished_at": int(time.time() * 1000),
    })


# ---- a separate process for the worker ----------------------------------------------------
def _redis(url: str):  # type: ignore[no-untyped-def]
    return connect(url, timeout_s=10)


def launch(request_json: str, target: str, app: AppConfig, result_id: str) -> str:
    """The worker's ``backtest`` command: validate the request for ``target`` and start it in its own
    process; a ValueError says why nothing started (bad request, too many running)."""
    try:
        request = BacktestRequest.model_validate_json(request_json)
    except ValidationError as exc:
        raise ValueError(f"payload: {format_errors(exc)}") from None
    if request.bot != target:
        raise ValueError(f"payload: bot {request.bot!r} is not the target {target!r}")
    try:
        return start_in_process(request, app.redis.url, app, result_id=result_id)
    except RuntimeError as exc:
        raise ValueError(str(exc)) from None


def _child(request_json: str, redis_url: str, app: AppConfig | str | None, result_id: str) -> None:
    """The spawned process: run, store the result or the error. Never raises."""
    from backtest.ml.artifact import install_loader
    from state import backtest_store as store
    from strategy.registry import register_user_strategies

    install_loader()  # a spawned process: ml_classifier bots need the model reader here too
    if isinstance(app, AppConfig):  # and the user strategies (a path or None loads the config, which does)
        register_user_strategies(app.strategies.path)
    try:
        os.nice(10)  # the worker's trading loop keeps priority on a small machine
    except OSError:
        pass
    r = _redis(redis_url)
    bot = ""
    try:
        req = BacktestRequest.model_validate_json(request_json)
        bot = req.bot
        result = run_request(app, req)
        result["id"] = result_id
        store.save(r, result_id, result)
    except BaseException as exc:  # noqa: BLE001 - whatever happened, the dashboard must learn it
        store.set_status(r, result_id, bot, "failed", error=f"{type(exc).__name__}: {exc}")


def start_in_process(request: BacktestRequest, redis_url: str, app: AppConfig | str | None = None,
                     result_id: str | None = None) -> str:
    """Mark the result running and start ``run_request`` in a spawned process; returns the
    result id at once (``result_id``, e.g. the command's nonce, or a new one).

    ``app`` is the worker's AppConfig (or a config path; None: the default config). Raises
    RuntimeError when ``MAX_RUNNING`` backtests are already running (the command is then
    answered with that message and nothing starts)."""
    from state import backtest_store as store

    mp.active_children()  # reaps finished children (no zombies)
    r = _redis(redis_url)
    now = int(time.time() * 1000)
    busy = [m for m in store.running(r) if now - int(m.get("updated_at", 0)) < STALE_RUNNING_MS]
    if len(busy) >= MAX_RUNNING:
        raise RuntimeError(f"{len(busy)} backtests already running ({', '.join(m['bot'] for m in busy)}); "
                           "try again when one finishes")
    rid = result_id or uuid.uuid4().hex
    store.set_status(r, rid, request.bot, "running", request=request.model_dump(by_alias=True))
    proc = mp.get_context("spawn").Process(target=_child, args=(request.model_dump_json(), redis_url, app, rid),
                                           name=f"backtest-{rid[:8]}", daemon=True)
    proc.start()
    return rid
