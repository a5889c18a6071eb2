"""USD-M funding on the local exchange as a real process, seen by every client: unmodified
python-binance (premiumIndex, fundingRate, income, the wallet), the adapter (``ExchangeClient.
funding_income``, ``UserDataStream`` with ``on_funding``) and ccxt (fetchFundingRate,
fetchFundingRateHistory, fetchFundingHistory); then a restart from the state file keeps it all
and charges nothing twice.

The market starts one minute before a funding time (``--start-ms``) and is paused; one-second
bars at fixed prices (``/admin/price``) carry it over the funding time, so every number is by hand:
BTCUSDT at 50 000 with a 0.1 % premium -> rate 0.05 %, a 0.1 BTC cross long pays 2.5 USDT;
ETHUSDT at 3 000 without premium -> rate 0.01 %, a 1 ETH isolated short receives 0.3 USDT.
"""
from __future__ import annotations

import threading
import time
from decimal import Decimal as D
from pathlib import Path
from typing import Iterator

import pytest

import ccxt_sim
from exchange.userdata import FundingEvent, UserDataStream
from exchange.venues import client_class, venue_urls
from sim_process import KEY, SECRET, SimProcess
from support import wait_for

pytestmark = pytest.mark.timeout(120)

EIGHT_H = 8 * 3_600_000
FUNDING_AT = int(time.time() * 1000) // EIGHT_H * EIGHT_H  # the last funding time before now (market clock)


def exchange(tmp: Path, state: Path, start_ms: int, port: int | None = None) -> SimProcess:
    return SimProcess(tmp / f"exchange-{start_ms}.log", "--speed", "0", "--seed", "4",
                      "--start-ms", str(start_ms), "--premium", "BTCUSDT=0.001", "--futures-balance", "10000",
                      "--state-file", str(state), port=port)


def hold(sim: SimProcess, until_ms: int) -> None:
    """One-second bars at the test's prices until the market clock reaches ``until_ms``."""
    while sim.admin("GET", "/admin/state")["marketTime"] < until_ms:
        sim.set_price("BTCUSDT", "50000")
        sim.set_price("ETHUSDT", "3000")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """Open the two positions, cross the funding time with the user-data stream listening."""
    tmp = tmp_path_factory.mktemp("funding")
    state = tmp / "state.json"
    sim = exchange(tmp, state, FUNDING_AT - 60_000)
    client = client_class(venue_urls("local", sim.url))(KEY, SECRET)
    sim.set_price("BTCUSDT", "50000")
    sim.set_price("ETHUSDT", "3000")
    client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.1")
    client.futures_change_margin_type(symbol="ETHUSDT", marginType="ISOLATED")
    client.futures_create_order(symbol="ETHUSDT", side="SELL", type="MARKET", quantity="1")
    events: list[FundingEvent] = []
    lock = threading.Lock()

    def on_funding(ev: FundingEvent) -> None:
        with lock:
            events.append(ev)

    stream = UserDataStream(venue_urls("local", sim.url), KEY, SECRET, "futures", on_event=lambda ev: None,
                            on_funding=on_funding)
    stream.start()
    try:
        assert stream.wait_connected(15)
        hold(sim, FUNDING_AT)
        wallet_before = D(client.futures_account_balance()[0]["balance"])
        iso_before = D(client.futures_position_information(symbol="ETHUSDT")[0]["isolatedWallet"])
        sim.set_price("BTCUSDT", "50000")  # the first bar at the funding time settles it
        wait_for(lambda: len(events) >= 2, 10, "two FUNDING_FEE account updates")
        yield {"sim": sim, "client": client, "events": events, "wallet_before": wallet_before,
               "iso_before": iso_before, "tmp": tmp, "state": state}
    finally:
        stream.close()
        sim.close()


def test_python_binance_sees_rates_income_and_wallet(run: dict) -> None:  # type: ignore[type-arg]
    client = run["client"]
    [btc] = client.futures_funding_rate(symbol="BTCUSDT")
    assert btc == {"symbol": "BTCUSDT", "fundingRate": "0.00050000", "fundingTime": FUNDING_AT,
                   "markPrice": "50000.00000000"}
    [eth] = client.futures_funding_rate(symbol="ETHUSDT")
    assert (eth["fundingRate"], eth["fundingTime"]) == ("0.00010000", FUNDING_AT)
    mark = client.futures_mark_price(symbol="BTCUSDT")
    assert mark["nextFundingTime"] == FUNDING_AT + EIGHT_H and mark["interestRate"] == "0.00010000"
    assert D(mark["indexPrice"]) == D("49950.04995005")  # 50000 / 1.001
    fees = client.futures_income_history(incomeType="FUNDING_FEE", startTime=FUNDING_AT)
    assert [(f["symbol"], f["income"], f["time"], f["asset"]) for f in fees] == [
        ("BTCUSDT", "-2.50000000", FUNDING_AT, "USDT"), ("ETHUSDT", "0.30000000", FUNDING_AT, "USDT")]
    # the wallet moved by exactly the two payments; the isolated short's margin took its own
    assert D(client.futures_account_balance()[0]["balance"]) == run["wallet_before"] - D("2.2")
    assert D(client.futures_position_information(symbol="ETHUSDT")[0]["isolatedWallet"]) == run["iso_before"] + D("0.3")
    # every wallet change is an income record (TRANSFER, COMMISSION, FUNDING_FEE): they add up to the wallet
    everything = client.futures_income_history(startTime=0, limit=1000)
    assert {r["incomeType"] for r in everything} == {"TRANSFER", "COMMISSION", "FUNDING_FEE"}
    assert sum(D(r["income"]) for r in everything) == D(client.futures_account_balance()[0]["balance"])


def test_user_data_stream_and_adapter_read_funding_as_decimals(run: dict) -> None:  # type: ignore[type-arg]
    events = sorted(run["events"], key=lambda e: e.amount)
    assert [(e.asset, e.amount, e.symbol, e.funding_time) for e in events] == [
        ("USDT", D("-2.5"), None, FUNDING_AT),  # cross: the balance only, no position (Binance)
        ("USDT", D("0.3"), "ETHUSDT", FUNDING_AT),  # isolated: the balance and that position
    ]
    sim = run["sim"]
    adapter = sim.client("futures")
    income = adapter.funding_income(FUNDING_AT)
    assert [(f.symbol, f.amount, f.time) for f in income] == [("BTCUSDT", D("-2.5"), FUNDING_AT),
                                                              ("ETHUSDT", D("0.3"), FUNDING_AT)]
    assert all(isinstance(f.amount, D) for f in income)
    assert adapter.funding_income(FUNDING_AT, symbol="ETHUSDT")[0].amount == D("0.3")
    assert sim.client("spot").funding_income(FUNDING_AT) == []


def test_ccxt_sees_rate_rate_history_and_funding_history(run: dict) -> None:  # type: ignore[type-arg]
    ex = ccxt_sim.futures(run["sim"])
    rate = ex.fetch_funding_rate("BTC/USDT:USDT")
    assert rate["fundingTimestamp"] == FUNDING_AT + EIGHT_H and rate["interval"] is None
    assert rate["indexPrice"] == pytest.approx(49950.04995005) and rate["markPrice"] == 50000.0
    assert rate["fundingRate"] == 0.0005  # the new interval, at the same premium, estimates the same rate
    [hist] = ex.fetch_funding_rate_history("BTC/USDT:USDT")
    assert (hist["fundingRate"], hist["timestamp"], hist["symbol"]) == (0.0005, FUNDING_AT, "BTC/USDT:USDT")
    paid = ex.fetch_funding_history("BTC/USDT:USDT", since=FUNDING_AT)
    assert [(p["amount"], p["timestamp"], p["code"]) for p in paid] == [(-2.5, FUNDING_AT, "USDT")]
    assert [p["amount"] for p in ex.fetch_funding_history(since=FUNDING_AT)] == [-2.5, 0.3]


def test_restart_keeps_funding_and_charges_nothing_twice(run: dict) -> None:  # type: ignore[type-arg]
    sim, client = run["sim"], run["client"]
    wallet = client.futures_account_balance()[0]["balance"]
    port = sim.port
    sim.close()
    # the market continues a minute later, in the same funding interval
    again = exchange(run["tmp"], run["state"], FUNDING_AT + 60_000, port=port)
    try:
        run["sim"] = again
        assert client.futures_account_balance()[0]["balance"] == wallet
        assert [r["fundingTime"] for r in client.futures_funding_rate(symbol="BTCUSDT")] == [FUNDING_AT]
        assert len(client.futures_income_history(incomeType="FUNDING_FEE", startTime=FUNDING_AT)) == 2
        again.set_price("BTCUSDT", "50000")
        assert client.futures_mark_price(symbol="BTCUSDT")["nextFundingTime"] == FUNDING_AT + EIGHT_H
        assert client.futures_account_balance()[0]["balance"] == wallet  # no second charge
    finally:
        again.close()
