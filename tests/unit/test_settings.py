"""load_config: the default file is valid; each bad input names its key path and rule."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from settings import DEFAULT_CONFIG, AppConfig, ConfigError, Secrets, load_config

BOT = "{name: a, mode: paper, symbol: BTCUSDT, strategy: momentum}"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(os.environ):
        if k.startswith("BOT_"):
            monkeypatch.delenv(k)


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(text)
    return p


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as ei:
        load_config(write(tmp_path, text))
    msg = str(ei.value)
    assert msg.startswith("invalid configuration in ")
    return msg


def test_default_config_is_valid() -> None:
    cfg = load_config(DEFAULT_CONFIG)
    assert isinstance(cfg, AppConfig)
    assert cfg.market.symbols == ["BTCUSDT", "ETHUSDT"] and cfg.market.interval == "1m"
    assert cfg.market.speed == 60.0
    assert cfg.paper.fee_pct == 0.1
    assert [b.name for b in cfg.bots] == ["live-sma-btc", "live-dca-eth", "ghost-momentum-btc", "paper-sma-btc",
                                          "paper-rsi-eth", "paper-dca-eth"]
    assert cfg.bots[0].mode == "live" and cfg.exchange.venue == "local" and cfg.market.source == "exchange"
    assert cfg.bots[3].sizing.kind == "risk" and cfg.bots[3].sizing.risk_pct == 0.5
    lim = cfg.bots[3].limits()
    assert lim.max_position_pct == 50 and lim.daily_loss_pct == 3.0 and lim.max_drawdown_pct == 5.0
    assert cfg.live.enabled is False


def test_default_path_is_used_without_argument() -> None:
    assert load_config().model_dump() == load_config(DEFAULT_CONFIG).model_dump()


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ""))
    assert cfg.bots == [] and cfg.market.symbols == ["BTCUSDT", "ETHUSDT"]


def test_unknown_top_level_key(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "markets: {}\n")
    assert "markets: Extra inputs are not permitted" in msg


def test_unknown_nested_key(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "paper: {fees: 0.1}\n")
    assert "paper.fees: Extra inputs are not permitted" in msg


def test_bad_market_interval(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "market: {interval: 7m}\n")
    assert "market.interval: must be one of 1m, 3m, 5m" in msg


def test_fast_not_below_slow(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "bots: [{name: a, mode: paper, symbol: BTCUSDT, strategy: sma_crossover, "
                             "params: {fast: 30, slow: 20}}]\n")
    assert "bots.0" in msg and "params.slow" in msg
    assert "slow (20) must be greater than fast (30)" in msg
    msg = error_of(tmp_path, "bots: [{name: a, mode: paper, symbol: BTCUSDT, strategy: sma_crossover, "
                             "params: {fast: 20, slow: 20}}]\n")
    assert "slow (20) must be greater than fast (20)" in msg


def test_params_error_has_no_pydantic_prefix(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "bots: [{name: a, mode: paper, symbol: BTCUSDT, strategy: sma_crossover, "
                             "params: {fast: 30, slow: 20}}]\n")
    assert "Value error" not in msg


def test_unknown_param_key(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "bots: [{name: a, mode: paper, symbol: BTCUSDT, strategy: momentum, "
                             "params: {windw: 5}}]\n")
    assert "bots.0" in msg and "params.windw" in msg and "Extra inputs are not permitted" in msg


def test_unknown_strategy_lists_known_ones(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "bots: [{name: a, mode: paper, symbol: BTCUSDT, strategy: macd}]\n")
    assert "bots.0: unknown strategy 'macd'" in msg
    assert ("known: ema_crossover, ml_classifier, momentum, momentum_atr, regime_switch, rsi_reversion, "
            "sma_crossover") in msg


def test_duplicate_bot_names(tmp_path: Path) -> None:
    msg = error_of(tmp_path, f"bots: [{BOT}, {BOT}]\n")
    assert "bot names must be unique; repeated: ['a']" in msg


def test_bot_symbol_not_in_market_symbols(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "market: {symbols: [BTCUSDT]}\n"
                             "bots: [{name: a, mode: paper, symbol: ETHUSDT, strategy: momentum}]\n")
    assert "bots.0.symbol: 'ETHUSDT' is not in market.symbols ['BTCUSDT']" in msg


def test_negative_fee(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "paper: {fee_pct: -0.1}\n")
    assert "paper.fee_pct: Input should be greater than or equal to 0" in msg


def test_every_problem_is_listed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as ei:
        load_config(write(tmp_path, "market: {interval: 7m}\npaper: {fee_pct: -1}\n"))
    keys = [p.split(":")[0] for p in ei.value.problems]
    assert keys == ["market.interval", "paper.fee_pct"]


def test_bad_bot_name_and_mode(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "bots: [{name: 'a b', mode: real, symbol: BTCUSDT, strategy: momentum}]\n")
    assert "bots.0.name: bot names may hold only letters, digits, '-' and '_'" in msg
    assert "bots.0.mode: Input should be 'ghost', 'paper' or 'live'" in msg


@pytest.mark.parametrize("yaml_text, key", [
    ("exchange: {api_key: abc}\n", "exchange.api_key"),
    ("binance_api_secret: abc\n", "binance_api_secret"),
    ("dashboard: {password: hunter2}\n", "dashboard.password"),
    ("bots: [{name: a, mode: paper, symbol: BTCUSDT, strategy: momentum, params: {token: x}}]\n",
     "bots.0.params.token"),
])
def test_secret_looking_keys_are_refused(tmp_path: Path, yaml_text: str, key: str) -> None:
    msg = error_of(tmp_path, yaml_text)
    assert f"{key}: secrets are read only from the environment" in msg
    assert "BOT_BINANCE_API_KEY" in msg
    # the secret's value is never echoed
    assert "abc" not in msg and "hunter2" not in msg


def test_invalid_yaml(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "market: [a: b\n")
    assert "not valid YAML" in msg


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "- a\n- b\n")
    assert "(top level): must be a mapping of sections" in msg


def test_env_override_wins_over_file_and_merges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path, "market: {symbols: [BTCUSDT], seed: 3, speed: 30}\n")
    assert load_config(p).market.speed == 30.0
    monkeypatch.setenv("BOT_MARKET__SPEED", "120")
    cfg = load_config(p)
    assert cfg.market.speed == 120.0
    # the rest of the file's market section survives
    assert cfg.market.symbols == ["BTCUSDT"] and cfg.market.seed == 3


def test_env_override_is_validated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_MARKET__SPEED", "-5")
    msg = error_of(tmp_path, "market: {symbols: [BTCUSDT]}\n")
    assert "market.speed: Input should be greater than 0" in msg


def test_config_path_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path, "market: {seed: 99}\n")
    monkeypatch.setenv("BOT_CONFIG", str(p))
    assert load_config().market.seed == 99


def test_secret_env_vars_do_not_break_the_app_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_BINANCE_API_KEY", "k")
    monkeypatch.setenv("BOT_LIVE_TRADING", "1")
    monkeypatch.setenv("BOT_DASHBOARD_PASSWORD", "p")
    assert load_config(write(tmp_path, "")).market.seed == 7


def test_secrets_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Secrets()
    assert s.binance_api_key is None and s.live_trading is False
    monkeypatch.setenv("BOT_BINANCE_API_KEY", "key-123")
    monkeypatch.setenv("BOT_BINANCE_API_SECRET", "sec-456")
    monkeypatch.setenv("BOT_LIVE_TRADING", "1")
    s = Secrets()
    assert s.binance_api_key is not None and s.binance_api_key.get_secret_value() == "key-123"
    assert s.binance_api_secret is not None and s.binance_api_secret.get_secret_value() == "sec-456"
    assert s.live_trading is True
    # never printed
    assert "key-123" not in repr(s) and "sec-456" not in str(s)


def test_secrets_are_not_read_from_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # even a file pointed to by BOT_CONFIG cannot carry a key, and Secrets ignores it
    p = write(tmp_path, "binance_api_key: from-file\n")
    monkeypatch.setenv("BOT_CONFIG", str(p))
    monkeypatch.chdir(tmp_path)
    assert Secrets().binance_api_key is None
    with pytest.raises(ConfigError, match="secrets are read only from the environment"):
        load_config()
