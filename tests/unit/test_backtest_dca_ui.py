"""The Backtest tab with a DCA result: the deals summary and table are drawn, and DCA bots can
be picked in the form (Streamlit AppTest; no Redis needed for these parts)."""
from __future__ import annotations

import json

import pytest

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest


def _result_json() -> str:
    from backtest.service import BacktestRequest, run_request
    from settings import AppConfig

    app = AppConfig(market={"symbols": ["BTCUSDT"]}, bots=[{
        "name": "dca-ui", "mode": "paper", "kind": "dca", "symbol": "BTCUSDT",
        "dca": {"base_order": 100, "safety_order": 100, "deviation_pct": 0.3, "max_safety_orders": 3,
                "active_safety_orders": 2, "take_profit_pct": 0.4},
        "risk": {"max_position_pct": 100, "max_loss_per_trade_pct": None}}])
    return json.dumps(run_request(app, BacktestRequest(bot="dca-ui", bars=2000)))


def _show(doc_json: str) -> None:
    import json as j

    from ui import backtest

    backtest._show(j.loads(doc_json))


def _form() -> None:
    from state.models import BotMeta
    from ui import backtest

    backtest._form([BotMeta(name="sma", mode="paper", symbol="BTCUSDT", strategy="sma_crossover"),
                    BotMeta(name="dca-ui", mode="paper", symbol="BTCUSDT", strategy="dca", kind="dca")], [])


def test_a_dca_result_shows_its_deals() -> None:
    doc = _result_json()
    assert json.loads(doc)["report"]["deals"]
    at = AppTest.from_function(_show, args=(doc,), default_timeout=30).run()
    assert not at.exception, at.exception
    labels = [m.label for m in at.metric]
    assert "Deals closed" in labels and "Avg safety orders" in labels and "Total return" in labels
    frames = [d.value for d in at.dataframe]
    assert any("safety_orders" in f.columns and "close_reason" in f.columns for f in frames)


def test_the_form_offers_dca_bots() -> None:
    at = AppTest.from_function(_form, default_timeout=30).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="bt_bot").options == ["sma", "dca-ui (DCA)"]
