"""Venue modes: paper bots on the testnet endpoints (here the local exchange stands in for the
testnet) trade through the live executor; real money is refused without both switches."""
from __future__ import annotations

from pathlib import Path

import fakeredis
import pytest

from engine.live import LiveRefused, LiveVenue
from settings import AppConfig, ConfigError, Secrets, load_config
from sim_process import SimProcess
from state.intents import RedisIntentStore
from support import snapshots, start_worker, wait_for, write_config


@pytest.fixture
def sim(tmp_path: Path):
    p = SimProcess(tmp_path / "exchange.log", "--source", "synthetic", "--symbols", "BTCUSDT", "--seed", "4",
                   "--speed", "600", "--warmup", "60")
    yield p
    p.close()


def test_paper_on_the_testnet_trades_through_the_live_executor(r, redis_server, sim, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.yaml", {
        "redis": {"url": redis_server.url, "embedded": False},
        "market": {"source": "exchange", "symbols": ["BTCUSDT"], "warmup_candles": 30, "speed": 600},
        "paper": {"venue": "testnet"},
        # the testnet's own URLs are unreachable here: the local exchange answers in its place
        "exchange": {"venue": "local", "local_url": sim.url},
        "bots": [{"name": "paper-net", "mode": "paper", "symbol": "BTCUSDT", "strategy": "momentum",
                  "params": {"window": 2, "threshold_pct": 0.01, "stop_loss_pct": 2},
                  "sizing": {"kind": "fixed_quote", "value": 30},
                  "risk": {"max_position_pct": 100, "max_loss_per_trade_pct": None}}],
    })
    w = start_worker(cfg, tmp_path / "worker.log", r)
    try:
        intent = wait_for(lambda: next((i for i in RedisIntentStore(r).all("paper-net") if i.status == "FILLED"),
                                       None), 60, "a paper order filled on the venue")
        assert intent.venue == "local" and intent.market == "spot"
        assert snapshots(r)["paper-net"].mode == "paper"
    finally:
        w.stop()


def _live_app(venue: str, enabled: bool) -> AppConfig:
    return AppConfig(exchange={"venue": venue}, live={"enabled": enabled},
                     bots=[{"name": "l", "mode": "live", "symbol": "BTCUSDT", "strategy": "momentum",
                            "params": {"window": 5, "threshold_pct": 0.1}}])


def test_real_money_needs_the_config_switch(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("exchange: {venue: mainnet}\nbots:\n  - {name: l, mode: live, symbol: BTCUSDT, "
                    "strategy: momentum, params: {window: 5, threshold_pct: 0.1}}\n")
    with pytest.raises(ConfigError, match="live.enabled"):
        load_config(path)


@pytest.mark.parametrize("env_switch,keys,refused", [
    (False, True, "BOT_LIVE_TRADING=1"),
    (True, False, "no API keys"),
    (True, True, None),
])
def test_real_money_needs_the_environment_switch_and_keys(env_switch: bool, keys: bool, refused: str | None,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("BOT_LIVE_TRADING", "BOT_BINANCE_API_KEY", "BOT_BINANCE_API_SECRET"):
        monkeypatch.delenv(k, raising=False)
    if env_switch:
        monkeypatch.setenv("BOT_LIVE_TRADING", "1")
    if keys:
        monkeypatch.setenv("BOT_BINANCE_API_KEY", "k" * 16)
        monkeypatch.setenv("BOT_BINANCE_API_SECRET", "s" * 16)
    app = _live_app("mainnet", True)
    venue = LiveVenue(app, fakeredis.FakeRedis(), Secrets())
    assert venue.real_money
    if refused:
        with pytest.raises(LiveRefused, match=refused):
            venue.check_switch(app.bots[0])
    else:
        venue.check_switch(app.bots[0])  # both switches and keys: allowed to go on to pre-flight


def test_the_local_venue_needs_no_switch(monkeypatch: pytest.MonkeyPatch, sim: SimProcess) -> None:
    monkeypatch.delenv("BOT_LIVE_TRADING", raising=False)
    app = _live_app("local", False).model_copy(update={"exchange": _live_app("local", False).exchange.model_copy(
        update={"local_url": sim.url})})
    venue = LiveVenue(app, fakeredis.FakeRedis(), Secrets())
    assert not venue.real_money
    venue.check_switch(app.bots[0])  # the local exchange's public default keys, no switch


def test_a_local_venue_that_does_not_answer_as_the_local_exchange_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOT_LIVE_TRADING", raising=False)
    app = _live_app("local", False)  # nothing listens on the default port here
    with pytest.raises(LiveRefused, match="does not prove to be the local exchange"):
        LiveVenue(app, fakeredis.FakeRedis(), Secrets()).check_switch(app.bots[0])
