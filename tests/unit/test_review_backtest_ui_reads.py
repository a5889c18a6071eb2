"""Dashboard reads per refresh: a finished backtest result is read from Redis once (the results
fragment redraws every second while another backtest runs), the risk panel reads a bot's denials
once per refresh, and the Backtest tab offers signal bots and config DCA bots from the metas it
is handed."""
from __future__ import annotations

import json
import uuid

from streamlit.testing.v1 import AppTest

from state.models import BotMeta


class CountingRedis:
    def __init__(self, doc: dict[str, object]) -> None:
        self.doc, self.gets = doc, 0

    def get(self, _key: str) -> str:
        self.gets += 1
        return json.dumps(self.doc)


def test_a_finished_result_is_loaded_once() -> None:
    from ui.backtest import _finished

    rid = uuid.uuid4().hex
    r = CountingRedis({"id": rid, "report": {"trades": 3}})
    assert _finished(r, rid) == _finished(r, rid) == {"id": rid, "report": {"trades": 3}}
    assert r.gets == 1
    other = uuid.uuid4().hex
    _finished(r, other)
    assert r.gets == 2  # keyed by the id, not the client


def _panel() -> None:
    import streamlit as st

    from state.models import BotSnapshot, RiskDecisionRecord
    from ui import risk

    class Reader:
        def denials(self, bot: str, n: int = 20) -> list[RiskDecisionRecord]:
            st.session_state["reads"] = st.session_state.get("reads", 0) + 1
            return [RiskDecisionRecord(time=1_704_067_200_000 + i, allowed=False, rule=f"rule{i}", detail="no")
                    for i in range(min(n, 8))]

    snap = BotSnapshot(name="p1", mode="paper", symbol="BTCUSDT", strategy="momentum", updated_at=0)
    risk.panel([snap], Reader(), "t")  # type: ignore[arg-type]


def test_the_risk_panel_reads_denials_once_per_bot() -> None:
    at = AppTest.from_function(_panel, default_timeout=30).run()
    assert not at.exception, at.exception
    assert at.session_state["reads"] == 1
    (caption,) = [c.value for c in at.caption if c.value.startswith("Last denials")]
    assert caption.count("rule") == 5  # the last five shown; the report gets all it read


def test_the_tab_offers_signal_bots_and_config_dca_bots(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from ui import backtest

    class Reader:
        def dynamic_bot(self, name: str) -> dict[str, object] | None:
            return {} if name == "dyn" else None

        def bots(self) -> dict[str, BotMeta]:
            raise AssertionError("the tab must use the metas it is handed")

    monkeypatch.setattr(backtest, "reader", Reader)
    metas = [BotMeta(name="sma", mode="paper", symbol="BTCUSDT", strategy="sma_crossover"),
             BotMeta(name="zdca", mode="paper", symbol="BTCUSDT", strategy="dca", kind="dca"),
             BotMeta(name="dyn", mode="paper", symbol="BTCUSDT", strategy="dca", kind="dca"),
             BotMeta(name="adca", mode="live", symbol="BTCUSDT", strategy="dca", kind="dca")]
    assert [m.name for m in backtest._offered(metas)] == ["sma", "adca", "zdca"]
