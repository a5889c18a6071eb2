"""The USD-M income ledger: every change of the futures wallet, as ``GET /fapi/v1/income`` lists it.

One ``IncomeRecord`` per change, in the order they happen (``tran_id`` ascending):
    TRANSFER         the starting wallet (the seed deposit), once, when the exchange is created
    REALIZED_PNL     a reducing fill's realized profit or loss (one per fill with a non-zero PnL)
    COMMISSION       a fill's fee (negative)
    FUNDING_FEE      one funding settlement of one position (``funding.py``)
    INSURANCE_CLEAR  the liquidation clearance fee (negative)
So the sum of a fresh exchange's incomes is its wallet balance, as on Binance, where every wallet
change is an income record. Amounts are in USDT, exact Decimals (the engine's own numbers);
the API shows them with 8 decimals.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

INCOME_TYPES = ("TRANSFER", "REALIZED_PNL", "COMMISSION", "FUNDING_FEE", "INSURANCE_CLEAR")
SEVEN_DAYS_MS = 7 * 86_400_000


@dataclass(frozen=True, slots=True)
class IncomeRecord:
    tran_id: int
    income_type: str
    symbol: str  # "" when the change belongs to no symbol (TRANSFER)
    amount: Decimal
    asset: str
    time: int
    trade_id: int = 0  # the fill, for REALIZED_PNL / COMMISSION; 0 otherwise (the API shows "")


class IncomeLedger:
    def __init__(self, next_tran_id: int = 9_000_000_000) -> None:
        self.records: list[IncomeRecord] = []
        self.next_tran_id = next_tran_id

    def add(self, income_type: str, symbol: str, amount: Decimal, time: int, trade_id: int = 0,
            asset: str = "USDT") -> IncomeRecord:
        if income_type not in INCOME_TYPES:
            raise ValueError(f"unknown income type {income_type!r}")
        self.next_tran_id += 1
        rec = IncomeRecord(self.next_tran_id, income_type, symbol, amount, asset, time, trade_id)
        self.records.append(rec)
        return rec

    def query(self, now_ms: int, symbol: str | None = None, income_type: str | None = None,
              start: int | None = None, end: int | None = None, limit: int = 100, page: int = 1) -> list[IncomeRecord]:
        """Binance's selection: ascending by time; without ``startTime`` and ``endTime`` only the last
        7 days (before ``now_ms``); ``limit`` records from the start of the range, page by page."""
        if start is None and end is None:
            start = now_ms - SEVEN_DAYS_MS
        rows = [r for r in self.records
                if (symbol is None or r.symbol == symbol)
                and (income_type is None or r.income_type == income_type)
                and (start is None or r.time >= start)
                and (end is None or r.time <= end)]
        rows.sort(key=lambda r: (r.time, r.tran_id))
        first = (page - 1) * limit
        return rows[first:first + limit]
