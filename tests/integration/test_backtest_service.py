"""The dashboard's backtest service: a request runs in a spawned process and its result (report,
trades, thinned curves) lands in Redis; failures are stored with their error; only the last
results are kept."""
from __future__ import annotations

import time

import pytest

from backtest import service
from state import backtest_store as store
from backtest.service import BacktestRequest, run_request, start_in_process
from settings import AppConfig
from state import keys

RISK = {"max_position_pct": 100, "min_notional": 0, "max_orders_per_minute": None,
        "max_loss_per_trade_pct": None, "daily_loss_pct": None, "max_drawdown_pct": 3}


def _app() -> AppConfig:
    return AppConfig(market={"symbols": ["BTCUSDT"]}, paper={"fee_pct": 0.1, "slippage_bps": 0},
                     bots=[{"name": "sma", "mode": "paper", "symbol": "BTCUSDT", "strategy": "sma_crossover",
                            "params": {"fast": 5, "slow": 20}, "sizing": {"kind": "percent_equity", "value": 90},
                            "risk": RISK}])


def _wait(r, rid: str, timeout: float = 60.0) -> dict:
    end = time.time() + timeout
    while time.time() < end:
        m = store.meta(r, rid)
        if m and m["status"] != "running":
            return m
        time.sleep(0.2)
    raise AssertionError(f"backtest {rid} still running after {timeout} s")


def test_request_payload_round_trip():
    req = BacktestRequest.model_validate({"bot": "sma", "from": "2024-01-01", "to": "2024-02-01",
                                          "fill_policy": "pessimistic", "fill_at": "next_open"})
    assert req.start == "2024-01-01" and req.end == "2024-02-01"
    again = BacktestRequest.model_validate_json(req.payload())
    assert again == req and '"from"' in req.payload()
    with pytest.raises(ValueError):
        BacktestRequest.model_validate({"bot": "sma", "from": "yesterday-ish"})
    with pytest.raises(ValueError):
        BacktestRequest.model_validate({"bot": "sma", "fill_policy": "magic"})


def test_run_request_result_shape():
    res = run_request(_app(), BacktestRequest(bot="sma", bars=30_000))
    rep = res["report"]
    assert rep["bot"] == "sma" and rep["bars"] == 30_000 and rep["trades"] == len(rep["trade_list"]) > 0
    assert len(res["plot"]["curves"]["equity"]["t"]) <= service.MAX_CURVE_POINTS
    assert len(res["plot"]["candles"]["t"]) <= 1500
    assert res["plot"]["monthly"]["years"]
    assert "trading_state" in rep and res["data"]["symbols"][0]["bars"] == 30_000
    from backtest.plots import equity_figure_of, monthly_figure_of, trades_figure_of
    for f in (equity_figure_of, trades_figure_of, monthly_figure_of):
        f(res["plot"])  # the dashboard's figures draw from the stored data


def test_run_request_refuses_bad_input(tmp_path):
    with pytest.raises(ValueError, match="no bot named"):
        run_request(_app(), BacktestRequest(bot="nope"))
    f = tmp_path / "x.csv"
    f.write_text("open_time,open,high,low,close,volume\n")
    with pytest.raises(ValueError, match="only files under"):
        run_request(_app(), BacktestRequest(bot="sma", data=str(f)))


def test_start_in_process_stores_done_and_failed(redis_server):
    r = redis_server.client(decode=True)
    r.flushdb()
    rid = start_in_process(BacktestRequest(bot="sma", bars=5000), redis_server.url, _app(), result_id="abc123ok")
    assert rid == "abc123ok" and store.meta(r, rid)["status"] == "running"
    bad = start_in_process(BacktestRequest(bot="ghost-of-nobody"), redis_server.url, _app())
    m = _wait(r, rid)
    assert m["status"] == "done" and m["headline"]["trades"] > 0 and m["bot"] == "sma"
    doc = store.load(r, rid)
    assert doc["id"] == rid and doc["report"]["bars"] == 5000
    mb = _wait(r, bad)
    assert mb["status"] == "failed" and "no bot named" in mb["error"]
    assert [m["id"] for m in store.list_results(r)] == [bad, rid]


def test_keeps_the_last_results(redis_server):
    r = redis_server.client(decode=True)
    r.flushdb()
    for i in range(store.KEEP + 5):
        store.set_status(r, f"id{i:03d}", "sma", "running")
        store.save(r, f"id{i:03d}", {"bot": "sma", "report": {"trades": i}})
        time.sleep(0.002)  # distinct created_at
    ids = [m["id"] for m in store.list_results(r)]
    assert len(ids) == store.KEEP and ids[0] == f"id{store.KEEP + 4:03d}"
    assert store.load(r, "id000") is None and r.hget(keys.BACKTEST_META, "id000") is None
    assert r.zcard(keys.BACKTEST_INDEX) == store.KEEP


def test_too_many_running(redis_server):
    r = redis_server.client(decode=True)
    r.flushdb()
    for i in range(service.MAX_RUNNING):
        store.set_status(r, f"busy{i}", "sma", "running")
    with pytest.raises(RuntimeError, match="already running"):
        start_in_process(BacktestRequest(bot="sma"), redis_server.url, _app())
