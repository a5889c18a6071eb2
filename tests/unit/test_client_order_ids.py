"""Deterministic client order ids (core.ids): base 36 of the candle time, right on every branch, and
within Binance's 36-character limit."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.ids import _b36, client_order_id, protective_id
from core.types import OrderPurpose

DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def reference(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = DIGITS[r] + out
        if n == 0:
            return out


@given(st.integers(min_value=0, max_value=36 ** 10))
def test_base36_equals_the_schoolbook_conversion(n: int) -> None:
    assert _b36(n) == reference(n)
    assert int(_b36(n), 36) == n


def test_base36_at_the_edges_of_each_branch() -> None:
    for k in range(0, 11):
        for n in (36 ** k - 1, 36 ** k, 36 ** k + 1):
            if n >= 0:
                assert _b36(n) == reference(n), n


@given(st.text(min_size=1, max_size=64), st.integers(min_value=0, max_value=4_102_444_800_000),
       st.sampled_from(list(OrderPurpose)), st.integers(min_value=0, max_value=9_999_999))
def test_ids_are_deterministic_and_fit_binance(bot: str, t: int, purpose: OrderPurpose, seq: int) -> None:
    a = client_order_id(bot, t, purpose, seq)
    assert a == client_order_id(bot, t, purpose, seq)
    assert len(a) <= 36 and a.startswith("tb")
    assert len(protective_id(bot, t, seq)) <= 36
