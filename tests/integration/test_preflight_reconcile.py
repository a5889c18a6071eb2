"""Pre-flight checks and reconciliation against the real local exchange (subprocess)."""
from __future__ import annotations

import uuid
from decimal import Decimal as D
from pathlib import Path
from typing import Iterator

import pytest

from exchange.client import ExchangeClient
from exchange.preflight import run_preflight
from exchange.reconcile import reconcile
from exchange.venues import venue_urls
from sim_process import KEY, SECRET, SimProcess, free_port

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    p = SimProcess(Path(tmp_path_factory.mktemp("sim")) / "exchange.log", "--seed", "9", "--speed", "0",
                   "--balances", "USDT=10000,BTC=0.5")
    p.set_price("BTCUSDT", "60000")
    yield p
    p.close()


@pytest.mark.parametrize("market", ["spot", "futures"])
def test_preflight_all_pass_on_the_local_exchange(sim: SimProcess, market: str) -> None:
    rep = run_preflight(sim.client(market), "BTCUSDT", D("2500"))
    assert rep.ok, rep.summary()
    assert [c.name for c in rep.checks] == ["reachable", "clock_skew", "api_key", "can_trade", "symbol", "balance",
                                            "positions", "open_orders"]
    assert abs(rep.check("clock_skew").data["skew_ms"]) < 1000
    assert rep.check("balance").data == {"have": "10000", "need": "2500", "asset": "USDT"}


def test_preflight_bad_key_fails_with_the_reason(sim: SimProcess) -> None:
    rep = run_preflight(sim.client(key="not-a-key", secret="nope"), "BTCUSDT", 100)
    assert not rep.ok
    key = rep.check("api_key")
    assert not key.ok and "API key refused" in key.reason and "-2015" in key.reason
    assert rep.check("reachable").ok and rep.check("balance").reason.startswith("skipped")
    assert "nope" not in rep.summary()  # the secret never appears in a report


def test_preflight_insufficient_balance_fails_with_the_numbers(sim: SimProcess) -> None:
    rep = run_preflight(sim.client(), "BTCUSDT", "25000.5")
    bal = rep.check("balance")
    assert not rep.ok and [c.name for c in rep.failed] == ["balance"]
    assert "10000" in bal.reason and "25000.5" in bal.reason and "<" in bal.reason


def test_preflight_unreachable_venue() -> None:
    client = ExchangeClient(venue_urls("local", f"http://127.0.0.1:{free_port()}"), KEY, SECRET, timeout_s=1)
    client.retry = type(client.retry)(attempts=1)
    rep = run_preflight(client, "BTCUSDT", 1)
    assert not rep.check("reachable").ok and "unreachable" in rep.check("reachable").reason
    assert all(not c.ok for c in rep.checks)


def test_reconcile_spot_no_drift_then_order_behind_the_bots_back(sim: SimProcess) -> None:
    client = sim.client()
    bals = client.balances()
    holdings = {"USDT": bals["USDT"].total, "BTC": bals["BTC"].total}
    coid = f"t{uuid.uuid4().hex[:20]}"
    mine = {coid: ("BTCUSDT", "NEW")}  # the bot's record of it: client order id -> (symbol, status)
    client.raw.order_limit_buy(symbol="BTCUSDT", quantity="0.001", price="50000",
                               newClientOrderId=coid)
    try:
        rep = reconcile(client, ["BTCUSDT"], holdings, intents=mine)
        assert rep.ok, rep.summary()
        sneaky = client.raw.order_limit_sell(symbol="BTCUSDT", quantity="0.01", price="70000",
                                             newClientOrderId="manual-1")
        rep = reconcile(client, ["BTCUSDT"], holdings, intents=mine)
        assert [(d.kind, d.key) for d in rep.drifts] == [("unknown_open_order", "manual-1")]
        assert "not placed by this bot" in rep.summary()
        client.raw.cancel_order(symbol="BTCUSDT", orderId=sneaky["orderId"])
        # a balance the bot does not expect
        rep = reconcile(client, ["BTCUSDT"], {**holdings, "BTC": holdings["BTC"] + D("0.1")}, intents=mine)
        assert [d.kind for d in rep.drifts] == ["balance"] and rep.drifts[0].actual == "0.5"
    finally:
        client.raw.cancel_all_open_orders(symbol="BTCUSDT")
    rep = reconcile(client, ["BTCUSDT"], holdings, intents=mine)
    assert [(d.kind, d.key) for d in rep.drifts] == [("intent_not_open", coid)]


def test_reconcile_futures_positions(sim: SimProcess) -> None:
    client = sim.client("futures")
    assert reconcile(client, ["ETHUSDT"], expected_positions={}).ok
    sim.set_price("ETHUSDT", "3000")
    client.raw.futures_create_order(symbol="ETHUSDT", side="BUY", type="MARKET", quantity="0.05")
    try:
        rep = reconcile(client, ["ETHUSDT"], expected_positions={})
        assert [(d.kind, d.key, d.actual) for d in rep.drifts] == [("position", "ETHUSDT", "0.05")]
        assert reconcile(client, ["ETHUSDT"], expected_positions={"ETHUSDT": D("0.05")}).ok
    finally:
        client.raw.futures_create_order(symbol="ETHUSDT", side="SELL", type="MARKET", quantity="0.05",
                                        reduceOnly="true")
