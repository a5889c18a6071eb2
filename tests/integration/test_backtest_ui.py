"""The Backtest tab renders the stored results (Streamlit AppTest, real Redis) and posts a
``backtest`` command from its form."""
from __future__ import annotations

import pytest

from state import backtest_store as store
from backtest.service import BacktestRequest, run_request
from settings import AppConfig
from state import keys

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest


def _tab(metas_json: str, choices: list[str]) -> None:
    from state.models import BotMeta
    from ui import backtest

    backtest.render([BotMeta.model_validate_json(metas_json)], choices)


def test_tab_shows_result_and_posts(redis_server, monkeypatch):
    monkeypatch.setenv("BOT_REDIS__URL", redis_server.url)
    r = redis_server.client(decode=True)
    r.flushdb()
    app = AppConfig(market={"symbols": ["BTCUSDT"]},
                    bots=[{"name": "sma", "mode": "paper", "symbol": "BTCUSDT", "strategy": "sma_crossover",
                           "params": {"fast": 5, "slow": 20}, "sizing": {"kind": "percent_equity", "value": 90},
                           "risk": {"max_position_pct": 100, "max_loss_per_trade_pct": None}}])
    doc = run_request(app, BacktestRequest(bot="sma", bars=3000))
    doc["id"] = "res1"
    store.set_status(r, "res1", "sma", "running")
    store.save(r, "res1", doc)
    meta = '{"name": "sma", "mode": "paper", "symbol": "BTCUSDT", "strategy": "sma_crossover"}'
    at = AppTest.from_function(_tab, args=(meta, []), default_timeout=30).run()
    assert not at.exception, at.exception
    labels = [m.label for m in at.metric]
    assert "Total return" in labels and "Max drawdown" in labels and "Trades" in labels
    assert len(at.get("plotly_chart")) == 3
    at.button[0].click().run()  # the form's submit button
    assert not at.exception, at.exception
    entries = r.xrange(keys.COMMANDS)
    assert entries and entries[-1][1]["cmd"] == "backtest" and entries[-1][1]["target"] == "sma"
    assert BacktestRequest.model_validate_json(entries[-1][1]["payload"]).bot == "sma"
