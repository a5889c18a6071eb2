"""Live ceilings can be lowered, never raised without the audited override; mode defaults."""
from __future__ import annotations

import pytest

from core.types import Mode
from risk.limits import LIVE_CEILINGS, PAPER_DEFAULTS, CeilingViolation, resolve, tighten


def test_mode_defaults_follow_the_issue() -> None:
    live = resolve(Mode.LIVE)
    assert (live.max_position_value, live.max_loss_per_trade_value, live.daily_loss_value,
            live.weekly_loss_value) == (50.0, 5.0, 25.0, 100.0)
    assert live.max_leverage == 1.0 and live.max_concurrent_positions == 2 and live.min_entry_interval_s == 60
    assert live.symbol_whitelist == ("BTCUSDT", "ETHUSDT") and live.blackout_hours_utc == (22, 2)
    paper = resolve(Mode.PAPER)
    assert (paper.max_position_pct, paper.daily_loss_pct, paper.max_drawdown_pct,
            paper.max_loss_per_trade_pct) == (2.0, 3.0, 5.0, 1.0)
    assert resolve(Mode.GHOST) == PAPER_DEFAULTS


def test_live_config_may_lower_a_ceiling() -> None:
    lim = resolve(Mode.LIVE, {"max_position_value": 20.0, "symbol_whitelist": ["BTCUSDT"],
                              "blackout_hours_utc": [21, 3], "min_entry_interval_s": 120})
    assert lim.max_position_value == 20.0 and lim.symbol_whitelist == ("BTCUSDT",)
    assert lim.blackout_hours_utc == (21, 3)


@pytest.mark.parametrize("key,value", [
    ("max_position_value", 51.0), ("daily_loss_value", 26.0), ("max_leverage", 2.0),
    ("max_position_value", None), ("symbol_whitelist", ["BTCUSDT", "SOLUSDT"]), ("blackout_hours_utc", [23, 1]),
    ("min_entry_interval_s", 30.0), ("max_concurrent_positions", 3), ("require_market_stream", False),
])
def test_live_config_cannot_raise_a_ceiling(key: str, value: object) -> None:
    with pytest.raises(CeilingViolation, match=key):
        resolve(Mode.LIVE, {key: value})


def test_the_audited_override_allows_raising() -> None:
    assert resolve(Mode.LIVE, {"max_position_value": 500.0}, allow_raise=True).max_position_value == 500.0


def test_paper_may_loosen_or_switch_off() -> None:
    lim = resolve(Mode.PAPER, {"max_position_pct": 60.0, "max_drawdown_pct": None})
    assert lim.max_position_pct == 60.0 and lim.max_drawdown_pct is None


def test_unknown_limit_is_named() -> None:
    with pytest.raises(ValueError, match="max_pos"):
        resolve(Mode.PAPER, {"max_pos": 1})


def test_dashboard_changes_only_tighten_at_once() -> None:
    assert tighten(LIVE_CEILINGS, {"daily_loss_value": 10.0}).daily_loss_value == 10.0
    with pytest.raises(CeilingViolation, match="restart"):
        tighten(LIVE_CEILINGS, {"daily_loss_value": 30.0})


def test_settings_reject_a_raised_live_ceiling_naming_the_key(tmp_path, monkeypatch) -> None:
    from settings import ConfigError, load_config

    monkeypatch.delenv("BOT_RISK_OVERRIDE", raising=False)
    path = tmp_path / "c.yaml"
    path.write_text("bots:\n  - {name: l, mode: live, symbol: BTCUSDT, strategy: momentum,"
                    " params: {window: 5, threshold_pct: 0.1}, risk: {max_position_value: 500}}\n")
    with pytest.raises(ConfigError, match=r"bots\.0.*max_position_value=500"):
        load_config(path)
    monkeypatch.setenv("BOT_RISK_OVERRIDE", "testing a larger cap, approved by me")
    assert load_config(path).bots[0].limits(allow_raise=True).max_position_value == 500
