"""USD-M funding: index price, premium index, funding rate and the 8-hourly settlement.

Binance's documented method (USDⓈ-M "Introduction to Binance Futures Funding Rates"), on the
simulator's market clock (the price source's time, so a fast market funds fast):
* Prices. The contract trades at the price source's price (mark = last, as everywhere in the
  simulator). The index is the mark less a configurable premium:
  ``index = mark / (1 + premium)`` (8 decimals); the premium is 0 unless set with
  ``POST /admin/premium`` or ``SimConfig.premiums``, so by default the index equals the mark.
* Premium index of a minute: ``P = (mark - index) / index``, the last observation in each market
  minute (Binance derives it from the impact bid/ask against the index every 5 s; the simulator's
  book is symmetric around the mark, so the mark/index difference is what is left of it).
* Average premium over the interval: Binance's time weighting,
  ``(1*P1 + 2*P2 + ... + n*Pn) / (1 + 2 + ... + n)`` over the interval's minutes.
* Funding rate: ``F = P + clamp(I - P, -0.05 %, +0.05 %)`` with the interest rate ``I = 0.01 %``
  per 8 h, then capped to ``±0.75 x`` the symbol's maintenance margin ratio (Binance's capped
  funding rate: ``clamp(F, -0.75*MMR, 0.75*MMR)``; ±0.30 % for BTCUSDT/ETHUSDT at MMR 0.4 %,
  ±0.75 % for BNBUSDT/SOLUSDT at 1 %), rounded half-up to 8 decimals.
* Settlement at 00:00, 08:00 and 16:00 UTC of market time, before the first bar that opens at or
  after the boundary: every symbol gets a rate record (``/fapi/v1/fundingRate``); every open
  position pays ``positionAmt x mark x rate`` (longs pay shorts when the rate is positive), rounded
  half-up to 8 decimals, from the wallet (and from the isolated margin of an isolated position),
  booked as a FUNDING_FEE income at the funding time. If the market clock jumps over several
  boundaries at once (a restart much later), only the latest one is settled.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Callable

from simulator.futures import FuturesEngine, Position
from simulator.income import IncomeRecord

FUNDING_EVERY_MS = 8 * 3_600_000
INTEREST_RATE = Decimal("0.0001")  # per 8 h (0.03 % a day)
CLAMP = Decimal("0.0005")
CAP_FACTOR = Decimal("0.75")  # capped rate = clamp(F, -0.75*MMR, 0.75*MMR)
MINUTE_MS = 60_000
E8 = Decimal("0.00000001")
ZERO = Decimal(0)


def next_boundary(t_ms: int) -> int:
    """The first funding time at or after ``t_ms``."""
    return -(-t_ms // FUNDING_EVERY_MS) * FUNDING_EVERY_MS


def weighted_premium(premiums: list[Decimal]) -> Decimal:
    """Binance's time-weighted average: the i-th minute (1-based) weighs i."""
    if not premiums:
        return ZERO
    n = len(premiums)
    return sum((i * p for i, p in enumerate(premiums, start=1)), ZERO) / (n * (n + 1) // 2)


def funding_rate(avg_premium: Decimal, cap: Decimal, interest: Decimal = INTEREST_RATE) -> Decimal:
    """F = P + clamp(I - P, -0.05 %, 0.05 %), capped to ±cap, 8 decimals."""
    rate = avg_premium + min(max(interest - avg_premium, -CLAMP), CLAMP)
    rate = min(max(rate, -cap), cap)
    return rate.quantize(E8, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class FundingRateRecord:
    """One settled rate (``GET /fapi/v1/fundingRate``)."""

    symbol: str
    rate: Decimal
    time: int
    mark_price: Decimal


@dataclass(frozen=True, slots=True)
class FundingPayment:
    """One position's payment at one settlement; ``income.amount`` > 0 means received."""

    symbol: str
    rate: Decimal
    mark_price: Decimal
    position_amt: Decimal
    isolated: bool
    income: IncomeRecord
    wallet_after: Decimal  # wallet and cross wallet balance right after this payment
    cross_wallet_after: Decimal


@dataclass(frozen=True, slots=True)
class Settlement:
    time: int
    rates: list[FundingRateRecord]
    payments: list[FundingPayment]


@dataclass
class Funding:
    futures: FuturesEngine
    next_ms: int
    premiums: dict[str, Decimal] = field(default_factory=dict)  # configured mark-over-index premium
    # the current interval's premium index per market minute: symbol -> [(minute, P)]
    samples: dict[str, list[tuple[int, Decimal]]] = field(default_factory=dict)
    history: dict[str, list[FundingRateRecord]] = field(default_factory=dict)
    listeners: list[Callable[[Settlement], None]] = field(default_factory=list)

    @classmethod
    def start(cls, futures: FuturesEngine, market_ms: int, premiums: dict[str, Decimal] | None = None) -> "Funding":
        fund = cls(futures, next_boundary(market_ms))
        for symbol, premium in (premiums or {}).items():
            fund.set_premium(symbol, premium)
        return fund

    # -- prices --------------------------------------------------------------------------------

    def set_premium(self, symbol: str, premium: Decimal) -> None:
        if symbol not in self.futures.specs:
            raise ValueError(f"premium: {symbol} is not a listed futures symbol ({', '.join(self.futures.specs)})")
        if not Decimal("-0.5") < premium < Decimal("0.5"):
            raise ValueError("premium must be between -0.5 and 0.5 (a fraction: 0.001 = 0.1 %)")
        self.premiums[symbol] = premium

    def mark(self, symbol: str) -> Decimal:
        return self.futures.mark(symbol)

    def index(self, symbol: str) -> Decimal:
        mark = self.mark(symbol)
        premium = self.premiums.get(symbol, ZERO)
        return mark if not premium else (mark / (1 + premium)).quantize(E8, rounding=ROUND_HALF_UP)

    def premium_index(self, symbol: str) -> Decimal:
        if not self.premiums.get(symbol):
            return ZERO  # index = mark (sampled on every bar: skip the division)
        index = self.index(symbol)
        return (self.mark(symbol) - index) / index if index else ZERO

    def cap(self, symbol: str) -> Decimal:
        return CAP_FACTOR * self.futures.specs[symbol].maint_margin_ratio

    # -- the interval ----------------------------------------------------------------------------

    def sample(self, symbol: str, t_ms: int) -> None:
        """Record the premium index after a bar ending at ``t_ms`` (the minute's last one counts)."""
        if symbol not in self.futures.specs:
            return
        minute = t_ms // MINUTE_MS
        lst = self.samples.setdefault(symbol, [])
        p = self.premium_index(symbol)
        if lst and lst[-1][0] == minute:
            lst[-1] = (minute, p)
        else:
            lst.append((minute, p))

    def average_premium(self, symbol: str) -> Decimal:
        lst = self.samples.get(symbol)
        return weighted_premium([p for _, p in lst]) if lst else self.premium_index(symbol)

    def estimate(self, symbol: str) -> Decimal:
        """The rate the next settlement would charge if the interval ended now (premiumIndex's
        ``lastFundingRate``, markPriceUpdate's ``r``)."""
        return funding_rate(self.average_premium(symbol), self.cap(symbol))

    def last_rate(self, symbol: str) -> FundingRateRecord | None:
        lst = self.history.get(symbol)
        return lst[-1] if lst else None

    # -- settlement ------------------------------------------------------------------------------

    def before_bar(self, open_time: int) -> Settlement | None:
        """Called before a bar opening at ``open_time`` is applied: settle if a boundary passed."""
        if open_time < self.next_ms:
            return None
        at = open_time // FUNDING_EVERY_MS * FUNDING_EVERY_MS  # the latest boundary (jumps settle once)
        self.next_ms = at + FUNDING_EVERY_MS
        return self.settle(at)

    def settle(self, at: int) -> Settlement:
        f = self.futures
        rates: list[FundingRateRecord] = []
        payments: list[FundingPayment] = []
        for symbol in f.specs:
            rate = self.estimate(symbol)
            mark = self.mark(symbol)
            rec = FundingRateRecord(symbol, rate, at, mark)
            self.history.setdefault(symbol, []).append(rec)
            rates.append(rec)
            pos = f.positions[symbol]
            if pos.amt:
                payments.append(self._pay(pos, rate, mark, at))
        self.samples = {}
        settlement = Settlement(at, rates, payments)
        for listener in self.listeners:
            listener(settlement)
        return settlement

    def _pay(self, pos: Position, rate: Decimal, mark: Decimal, at: int) -> FundingPayment:
        f = self.futures
        amount = (-pos.amt * mark * rate).quantize(E8, rounding=ROUND_HALF_UP)
        f.wallet += amount
        isolated = pos.margin_type == "ISOLATED"
        if isolated:
            pos.isolated_wallet += amount
        f.update_time = pos.update_time = f.clock()
        income = f.income.add("FUNDING_FEE", pos.symbol, amount, at)
        isolated_total = sum((p.isolated_wallet for p in f.positions.values() if p.margin_type == "ISOLATED"), ZERO)
        return FundingPayment(pos.symbol, rate, mark, pos.amt, isolated, income, f.wallet, f.wallet - isolated_total)
