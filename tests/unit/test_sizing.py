"""Sizing policies, with the arithmetic written out."""
from __future__ import annotations

import pytest

from risk.sizing import SizingInputs, SizingPolicy, confidence_factor, drawdown_factor, kelly_fraction, size_quote


def test_fixed_and_percent() -> None:
    assert size_quote(SizingPolicy(kind="fixed_quote", value=500), SizingInputs(10_000, 100)) == 500
    assert size_quote(SizingPolicy(kind="percent_equity", value=2), SizingInputs(10_000, 100)) == pytest.approx(200)


def test_risk_based_uses_the_stop_distance() -> None:
    # 1 % of 10 000 = 100 at risk; stop 2 % below -> notional 100 / 0.02 = 5 000
    p = SizingPolicy(kind="risk", value=2, risk_pct=1.0)
    assert size_quote(p, SizingInputs(10_000, 100, stop=98)) == pytest.approx(5_000)
    assert size_quote(p, SizingInputs(10_000, 100, stop=None)) == pytest.approx(200)  # fallback 2 %


def test_atr_sizing() -> None:
    # stop distance 2 x ATR 1.5 = 3 on price 100 -> 3 %; risk 1 % of 10 000 -> 100 / 0.03 = 3 333.33
    p = SizingPolicy(kind="atr", risk_pct=1.0, atr_mult=2.0)
    assert size_quote(p, SizingInputs(10_000, 100, atr=1.5)) == pytest.approx(3_333.333, rel=1e-6)


def test_kelly_is_off_until_enough_trades_then_quarter_and_capped() -> None:
    pnls = [10, 10, 10, -5] * 10          # W = 0.75, R = 10/5 = 2 -> f* = 0.75 - 0.25/2 = 0.625
    assert kelly_fraction(pnls) == pytest.approx(0.625)
    p = SizingPolicy(kind="kelly", value=1, kelly_min_trades=30, kelly_cap_pct=2.0)
    assert size_quote(p, SizingInputs(10_000, 100, trade_pnls=pnls[:20])) == pytest.approx(100)  # fallback 1 %
    # quarter Kelly 0.156 > cap 2 % -> 200
    assert size_quote(p, SizingInputs(10_000, 100, trade_pnls=pnls)) == pytest.approx(200)
    loose = SizingPolicy(kind="kelly", kelly_min_trades=30, kelly_cap_pct=50.0)
    assert size_quote(loose, SizingInputs(10_000, 100, trade_pnls=pnls)) == pytest.approx(1_562.5)


def test_confidence_bands_and_drawdown_shrink() -> None:
    assert [confidence_factor(c) for c in (0.9, 0.8, 0.6, 0.5, 0.2)] == [1.0, 1.0, 0.7, 0.7, 0.3]
    assert drawdown_factor(0.0, 5.0) == 1.0 and drawdown_factor(2.5, 5.0) == 0.5 and drawdown_factor(6, 5) == 0.0
    p = SizingPolicy(kind="percent_equity", value=10, scale_by_confidence=True, scale_by_drawdown=True)
    # 1 000 x 0.7 x (1 - 1/4) = 525
    assert size_quote(p, SizingInputs(10_000, 100, confidence=0.6, drawdown_pct=1.0,
                                      max_drawdown_pct=4.0)) == pytest.approx(525)
