"""A restart of the local exchange (``python -m simulator --state-file``) changes nobody's account.

The exchange runs as a real subprocess, driven by an unmodified python-binance ``Client`` that keeps
its URL across the restart (same port), like a live bot would. Stopped with SIGTERM, everything is
kept; killed with SIGKILL, what was saved before the last fraction of a second is kept. A corrupt
state file stops the exchange with a message naming the file.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from binance.client import Client

from sim_process import KEY, REPO, SECRET, SimProcess, free_port

pytestmark = pytest.mark.timeout(120)

SYMBOL = "BTCUSDT"
# Paused synthetic market resumed at 60000 (as `make run` does): only the test moves the price, and
# resting orders sit 3 % away so the first candle after a restart cannot reach them.
ARGS = ("--source", "synthetic", "--symbols", SYMBOL, "--seed", "3", "--speed", "0", "--warmup", "10",
        "--resume", f"{SYMBOL}=60000", "--balances", "USDT=100000,BTC=1", "--futures-balance", "20000")


def client_for(url: str) -> Client:
    ws = url.replace("http://", "ws://")
    cls = type("SimClient", (Client,), {
        "API_URL": f"{url}/api", "FUTURES_URL": f"{url}/fapi", "FUTURES_DATA_URL": f"{url}/futures/data",
        "MARGIN_API_URL": f"{url}/sapi", "WS_API_URL": f"{ws}/ws-api/v3", "WS_FUTURES_URL": f"{ws}/ws-fapi/v1",
    })
    return cls(KEY, SECRET)


def start(tmp_path: Path, state: Path, run: int, port: int | None = None) -> SimProcess:
    sim = SimProcess(tmp_path / f"exchange-{run}.log", *ARGS, "--state-file", str(state), port=port)
    sim.set_price(SYMBOL, "60000")  # the same price before and after: mark-to-market fields compare too
    return sim


def view(c: Client) -> dict[str, Any]:
    """Everything a bot's reconciliation reads from the venue."""
    return {
        "account": c.get_account(),
        "open": c.get_open_orders(symbol=SYMBOL),
        "orders": c.get_all_orders(symbol=SYMBOL),
        "trades": c.get_my_trades(symbol=SYMBOL),
        "f_account": c.futures_account(),
        "f_positions": c.futures_position_information(symbol=SYMBOL),
        "f_open": c.futures_get_open_orders(symbol=SYMBOL),
        "f_orders": c.futures_get_all_orders(symbol=SYMBOL),
        "f_trades": c.futures_account_trades(symbol=SYMBOL),
        "f_algo_open": c.futures_get_open_orders(symbol=SYMBOL, conditional=True),
    }


def trade_everything(c: Client) -> None:
    c.order_market_buy(symbol=SYMBOL, quantity="0.01")
    c.order_limit_buy(symbol=SYMBOL, quantity="0.02", price="58000", newClientOrderId="rest-buy")
    gone = c.order_limit_sell(symbol=SYMBOL, quantity="0.1", price="62000")
    c.cancel_order(symbol=SYMBOL, orderId=gone["orderId"])
    c.order_limit_sell(symbol=SYMBOL, quantity="0.05", price="63000")
    c.futures_change_leverage(symbol=SYMBOL, leverage=10)
    c.futures_change_margin_type(symbol=SYMBOL, marginType="ISOLATED")
    c.futures_create_order(symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.1")
    c.futures_create_order(symbol=SYMBOL, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                           price="58000")
    c.futures_create_order(symbol=SYMBOL, side="SELL", type="STOP_MARKET", stopPrice="55000", closePosition="true")


def test_sigterm_restart_keeps_accounts_orders_and_ids(tmp_path: Path) -> None:
    state = tmp_path / "exchange-state.json"
    sim = start(tmp_path, state, 0)
    try:
        c = client_for(sim.url)
        trade_everything(c)
        before = view(c)
        stopped_at = int(time.time() * 1000)
    finally:
        sim.close()  # SIGTERM: a clean stop saves everything
    assert sim.proc.returncode == 0, sim.log()
    doc = json.loads(state.read_text())
    assert doc["version"] == 1 and doc["saved_at"] >= stopped_at  # written on the way out
    assert D(doc["spot"]["balances"]["BTC"]["free"]) == D(before["account"]["balances"][1]["free"])

    sim = start(tmp_path, state, 1, port=sim.port)
    try:
        assert "restored from" in sim.log()
        after = view(c)  # the same client, the same URL: as a live bot sees a venue restart
        assert after == before
        assert before["account"]["balances"][1]["locked"] == "0.05000000"  # the resting SELL's BTC
        f_pos = [p for p in before["f_account"]["positions"] if p["symbol"] == SYMBOL][0]
        assert f_pos["isolated"] is True and f_pos["leverage"] == "10" and f_pos["positionAmt"] == "0.100"
        assert len(before["f_algo_open"]) == 1 and len(before["open"]) == 2 and len(before["f_open"]) == 1

        # new ids continue after the old ones; the resting orders match the new prices
        last_spot = max(o["orderId"] for o in before["orders"])
        last_trade = max(t["id"] for t in before["trades"])
        last_fut = max(o["orderId"] for o in before["f_orders"])
        new = c.order_limit_buy(symbol=SYMBOL, quantity="0.01", price="50000")
        assert new["orderId"] == last_spot + 1
        fnew = c.futures_create_order(symbol=SYMBOL, side="BUY", type="LIMIT", timeInForce="GTC",
                                      quantity="0.01", price="50000")
        assert fnew["orderId"] == last_fut + 1
        sim.set_price(SYMBOL, "57900")
        rest = c.get_order(symbol=SYMBOL, origClientOrderId="rest-buy")
        assert rest["status"] == "FILLED"
        assert [t["id"] for t in c.get_my_trades(symbol=SYMBOL)][-1] == last_trade + 1
        assert c.futures_position_information(symbol=SYMBOL)[0]["positionAmt"] == "0.110"
        sim.set_price(SYMBOL, "54900")  # the restored algo stop closes the position
        assert c.futures_position_information(symbol=SYMBOL)[0]["positionAmt"] == "0.000"
        assert c.futures_get_open_orders(symbol=SYMBOL, conditional=True) == []
    finally:
        sim.close()
    assert "Traceback" not in sim.log(), sim.log()


def test_sigkill_loses_at_most_the_last_moment(tmp_path: Path) -> None:
    state = tmp_path / "exchange-state.json"
    sim = start(tmp_path, state, 0)
    try:
        c = client_for(sim.url)
        trade_everything(c)
        before = view(c)
        time.sleep(1.0)  # the saver writes within 0.2 s of a change
    finally:
        sim.proc.kill()  # no chance to save on the way out
        sim.proc.wait()
    sim = start(tmp_path, state, 1, port=sim.port)
    try:
        assert view(c) == before
        new = c.order_limit_buy(symbol=SYMBOL, quantity="0.01", price="50000")
        assert new["orderId"] == max(o["orderId"] for o in before["orders"]) + 1
    finally:
        sim.close()


def test_corrupt_state_file_stops_the_exchange_with_its_name(tmp_path: Path) -> None:
    state = tmp_path / "exchange-state.json"
    state.write_text('{"format": "simulator-state", "version": 1, "spot": {', encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "simulator", "--port", str(free_port()), "--speed", "0", "--state-file", str(state)],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert f"state file {state}: not valid JSON" in proc.stderr
    assert "listening" not in proc.stdout  # never started empty
    assert state.read_text().endswith('"spot": {')  # and the file is left for the user to inspect
