"""USD-M funding in the local exchange (simulator/funding.py): the rate formula and one settlement
computed by hand, checked against what the exchange books (wallet, isolated margin, income
ledger, rate history), on the market clock."""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from simulator.funding import FUNDING_EVERY_MS, funding_rate, weighted_premium
from simulator.futures import parse_futures_order
from simulator.prices import RandomWalkSource
from simulator.state import SimConfig, SimExchange

B = 59_028 * FUNDING_EVERY_MS  # a funding time: 2023-11-15 00:00 UTC
assert B == 1_700_006_400_000


def make(premium: str | None = None, start: int = B - 60_000) -> SimExchange:
    premiums = {"BTCUSDT": D(premium)} if premium is not None else {}
    return SimExchange(SimConfig(seed=3, speed=0, premiums=premiums), RandomWalkSource(seed=3, start_ms=start))


def buy(ex: SimExchange, qty: str, side: str = "BUY", symbol: str = "BTCUSDT") -> None:
    ex.futures.place(parse_futures_order({"symbol": symbol, "side": side, "type": "MARKET", "quantity": qty}))


def hold_price_until(ex: SimExchange, t_ms: int, price: str, symbol: str = "BTCUSDT") -> None:
    """One-second bars at ``price`` until the market clock reaches ``t_ms`` (the bar that opens there
    is not applied yet: funding for ``t_ms`` is still due)."""
    while ex.market_ms < t_ms:
        ex.move_price(symbol, D(price))


def test_rate_formula_by_hand() -> None:
    cap = D("0.003")  # BTCUSDT: 0.75 x maintenance margin ratio 0.004
    assert funding_rate(D(0), cap) == D("0.00010000")  # no premium: the interest rate
    assert funding_rate(D("0.0003"), cap) == D("0.00010000")  # |I - P| < 0.05 %: still I
    assert funding_rate(D("0.001"), cap) == D("0.00050000")  # 0.001 + clamp(-0.0009) = 0.001 - 0.0005
    assert funding_rate(D("-0.002"), cap) == D("-0.00150000")  # -0.002 + clamp(0.0021) = -0.002 + 0.0005
    assert funding_rate(D("0.01"), cap) == D("0.00300000")  # capped
    assert funding_rate(D("-0.01"), cap) == D("-0.00300000")
    # Binance's time weighting: the i-th minute weighs i
    assert weighted_premium([D("0.001"), D("0.002"), D("0.004")]) == D("0.017") / 6
    assert funding_rate(weighted_premium([D("0.001"), D("0.002"), D("0.004")]), cap) == D("0.00233333")


def test_one_settlement_by_hand_long_pays() -> None:
    ex = make(premium="0.001")
    ex.move_price("BTCUSDT", D("50000"))
    buy(ex, "0.1")
    pos = ex.futures.positions["BTCUSDT"]
    assert pos.amt == D("0.1")
    hold_price_until(ex, B, "50000")
    assert ex.funding.next_ms == B and not ex.funding.history
    wallet_before = ex.futures.wallet

    # by hand: index = 50000 / 1.001 = 49950.04995005 (8 dp); premium = (50000 - index) / index
    index = D("49950.04995005")
    premium = (D("50000") - index) / index
    rate = premium + max(min(D("0.0001") - premium, D("0.0005")), D("-0.0005"))
    assert rate.quantize(D("0.00000001")) == D("0.00050000")
    payment = D("0.1") * D("50000") * D("0.00050000")  # notional at mark x rate: 2.5 USDT, paid by the long
    assert payment == D("2.5")

    ex.move_price("BTCUSDT", D("50000"))  # the first bar at or after 00:00 UTC settles the funding first
    assert ex.futures.wallet == wallet_before - payment
    assert ex.funding.next_ms == B + FUNDING_EVERY_MS
    rec = ex.funding.last_rate("BTCUSDT")
    assert rec is not None and (rec.rate, rec.time, rec.mark_price) == (D("0.00050000"), B, D("50000"))
    fees = [r for r in ex.futures.income.records if r.income_type == "FUNDING_FEE"]
    assert [(r.symbol, r.amount, r.time) for r in fees] == [("BTCUSDT", -payment, B)]
    # every wallet change is an income record: they add up to the wallet
    assert sum((r.amount for r in ex.futures.income.records), D(0)) == ex.futures.wallet
    # every symbol gets a rate, with or without positions; ETH has no premium: the interest rate
    eth = ex.funding.last_rate("ETHUSDT")
    assert eth is not None and eth.rate == D("0.00010000") and eth.time == B


def test_negative_rate_pays_longs_and_charges_isolated_shorts_margin() -> None:
    ex = make(premium="-0.002")
    ex.move_price("BTCUSDT", D("40000"))
    ex.futures.set_margin_type("BTCUSDT", "ISOLATED")
    buy(ex, "0.05", side="SELL")
    pos = ex.futures.positions["BTCUSDT"]
    iso_before, wallet_before = pos.isolated_wallet, ex.futures.wallet
    hold_price_until(ex, B, "40000")
    ex.move_price("BTCUSDT", D("40000"))
    rate = ex.funding.last_rate("BTCUSDT").rate  # type: ignore[union-attr]
    assert rate == D("-0.00150000")
    # a short pays when the rate is negative: -(-0.05) x 40000 x -0.0015 = -3
    assert ex.futures.wallet == wallet_before - D("3")
    assert pos.isolated_wallet == iso_before - D("3")  # an isolated position's funding comes out of its margin


def test_no_position_no_payment_and_a_jump_settles_once() -> None:
    ex = make()
    hold_price_until(ex, B, "50000")
    ex.move_price("BTCUSDT", D("50000"))
    assert not [r for r in ex.futures.income.records if r.income_type == "FUNDING_FEE"]
    assert len(ex.funding.history["BTCUSDT"]) == 1
    # the market clock jumps three funding times ahead (a restart much later): one settlement, the latest
    buy(ex, "0.01")
    later = B + 3 * FUNDING_EVERY_MS + 5_000
    ex.market_ms = later
    ex.move_price("BTCUSDT", D("50000"))
    times = [r.time for r in ex.funding.history["BTCUSDT"]]
    assert times == [B, B + 3 * FUNDING_EVERY_MS]
    assert ex.funding.next_ms == B + 4 * FUNDING_EVERY_MS
    assert len([r for r in ex.futures.income.records if r.income_type == "FUNDING_FEE"]) == 1


def test_estimate_follows_the_interval_and_premium_is_validated() -> None:
    ex = make(premium="0.001")
    ex.move_price("BTCUSDT", D("50000"))
    assert ex.funding.estimate("BTCUSDT") == D("0.00050000")
    assert ex.funding.estimate("ETHUSDT") == D("0.00010000")
    with pytest.raises(ValueError, match="premium"):
        ex.funding.set_premium("BTCUSDT", D("0.7"))
    with pytest.raises(ValueError, match="not a listed futures symbol"):
        ex.funding.set_premium("NOPEUSDT", D("0.001"))
