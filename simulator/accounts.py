"""Spot balances: free and locked amounts per asset, in Decimal.

Resting orders lock what they may spend (quote for BUY = price * qty, base for SELL); fills move
locked (or free, for takers) into the other asset. Every change bumps ``update_time``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from simulator import errors

ZERO = Decimal(0)


@dataclass(slots=True)
class Balance:
    free: Decimal = ZERO
    locked: Decimal = ZERO


@dataclass
class Account:
    balances: dict[str, Balance] = field(default_factory=dict)
    update_time: int = 0
    maker_rate: Decimal = Decimal("0.001")
    taker_rate: Decimal = Decimal("0.001")

    @classmethod
    def with_balances(cls, amounts: dict[str, Decimal]) -> "Account":
        return cls({a: Balance(Decimal(v)) for a, v in amounts.items()})

    def get(self, asset: str) -> Balance:
        return self.balances.setdefault(asset, Balance())

    def free(self, asset: str) -> Decimal:
        return self.get(asset).free

    def lock(self, asset: str, amount: Decimal, now_ms: int) -> None:
        bal = self.get(asset)
        if amount > bal.free:
            raise errors.insufficient_balance()
        bal.free -= amount
        bal.locked += amount
        self.update_time = now_ms

    def unlock(self, asset: str, amount: Decimal, now_ms: int) -> None:
        bal = self.get(asset)
        amount = min(amount, bal.locked)
        bal.locked -= amount
        bal.free += amount
        self.update_time = now_ms

    def spend_locked(self, asset: str, amount: Decimal, now_ms: int) -> None:
        bal = self.get(asset)
        bal.locked -= amount
        if bal.locked < 0:  # never expected; keep the books balanced rather than negative
            bal.free += bal.locked
            bal.locked = ZERO
        self.update_time = now_ms

    def spend_free(self, asset: str, amount: Decimal, now_ms: int) -> None:
        bal = self.get(asset)
        if amount > bal.free:
            raise errors.insufficient_balance()
        bal.free -= amount
        self.update_time = now_ms

    def credit(self, asset: str, amount: Decimal, now_ms: int) -> None:
        self.get(asset).free += amount
        self.update_time = now_ms

    def snapshot(self, omit_zero: bool = False) -> list[tuple[str, Balance]]:
        return [
            (a, b) for a, b in self.balances.items() if not (omit_zero and b.free == 0 and b.locked == 0)
        ]
