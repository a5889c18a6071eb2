"""Kill switches never loosen a state and always finish; Resume all does not re-arm what a rule stopped.
The worker with real Redis, commands through the command stream's handler, candles stepped by hand.

Before: Close all on a HALTED bot answered "NOT closed" and moved it to PAUSED; a failed close was
answered "applied" and nothing showed it afterwards; Resume all set every bot ACTIVE, risk-halted ones
included."""
from __future__ import annotations

import subprocess
import sys

from core.clock import SimClock
from core.types import INTERVAL_MS, Candle, TradingState
from engine.worker import Worker
from market.feed import ReplayFeed
from settings import AppConfig
from state import keys
from state.commands import new_command
from state.reader import StateReader
from support import ROOT

T0 = 1_704_067_200_000
M = INTERVAL_MS["1m"]
OFF = {"max_position_pct": 100, "max_loss_per_trade_pct": None, "daily_loss_pct": None, "max_drawdown_pct": None,
       "max_orders_per_minute": None}
DCA = {"base_order": 100, "safety_order": 100, "deviation_pct": 30, "max_safety_orders": 0, "take_profit_pct": 50,
       "cooldown_s": 86_400}


class Env:
    def __init__(self, r, bots: list[dict]) -> None:  # type: ignore[no-untyped-def, type-arg]
        self.r = r
        self.app = AppConfig(market={"symbols": ["BTCUSDT", "ETHUSDT"], "warmup_candles": 0},
                             paper={"fee_pct": 0.0, "slippage_bps": 0}, bots=bots)
        self.w = Worker(self.app, r, ReplayFeed([]), clock=SimClock(T0))
        self.w.start()
        self.i = 0
        self.n = 0

    def step(self, price: float = 100.0, symbols: tuple[str, ...] = ("BTCUSDT",)) -> None:
        self.w.step([Candle(s, T0 + self.i * M, price, price, price, price, 10.0) for s in symbols])
        self.i += 1

    def send(self, cmd: str, scope: str = "bot", target: str = "") -> object:
        self.n += 1
        return self.w.handle_command(f"{self.n}-0", new_command(cmd, scope, target, user="op").fields())

    def state(self, name: str) -> TradingState:
        return self.w.controls.get("bot", name).state


def dca_bot(name: str, symbol: str = "BTCUSDT", **risk: object) -> dict:  # type: ignore[type-arg]
    return {"name": name, "mode": "paper", "kind": "dca", "symbol": symbol, "dca": DCA, "risk": {**OFF, **risk}}


def test_close_all_on_a_halted_bot_closes_it_and_it_stays_halted(r) -> None:  # type: ignore[no-untyped-def]
    env = Env(r, [dca_bot("d")])
    env.step()
    assert env.w.bots["d"].exposure
    env.send("halt", target="d")
    res = env.send("flatten", target="d")
    assert res.status == "applied", res  # type: ignore[attr-defined]
    assert "closed 1 position(s)" in res.message and "NOT" not in res.message  # type: ignore[attr-defined]
    assert not env.w.bots["d"].exposure
    assert env.state("d") is TradingState.HALTED  # never loosened to PAUSED
    assert r.hget(keys.control("bot", "d"), "state") == b"HALTED"


def test_a_close_that_cannot_happen_is_pending_shown_and_retried_until_it_does(r, redis_server) -> None:  # type: ignore[no-untyped-def]
    env = Env(r, [dca_bot("d")])
    env.step()
    env.send("halt", scope="global")  # nothing may trade: the close cannot go out
    res = env.send("flatten", target="d")
    assert res.status == "pending" and "NOT closed yet" in res.message, res  # type: ignore[attr-defined]
    assert env.state("d") is TradingState.FLATTEN and env.w.bots["d"].exposure
    snap = StateReader(r).snapshots()["d"]
    assert snap.control.state is TradingState.FLATTEN and snap.control.then is TradingState.PAUSED
    control = StateReader(r).bot_controls()["d"]  # what the dashboard's health line reads each second
    assert control.state is TradingState.FLATTEN and control.then is TradingState.PAUSED
    out = subprocess.run([sys.executable, str(ROOT / "bot_manager.py"), "status", "--redis-url", redis_server.url],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "close NOT confirmed yet" in out.stdout, out.stdout + out.stderr
    env.step()  # still halted globally: still pending
    assert env.state("d") is TradingState.FLATTEN
    env.send("resume", scope="global")
    env.step()  # the retry closes it
    assert not env.w.bots["d"].exposure and env.state("d") is TradingState.PAUSED
    audits = StateReader(r).audit()
    assert any(a.command == "flatten" and a.result == "closed" and a.target == "d" for a in audits)


def test_resume_all_lifts_what_operators_set_and_keeps_what_a_rule_stopped(r) -> None:  # type: ignore[no-untyped-def]
    env = Env(r, [dca_bot("loser", daily_loss_value=1.0), dca_bot("paused", symbol="ETHUSDT")])
    env.step(100.0, ("BTCUSDT", "ETHUSDT"))
    env.send("pause", target="paused")
    env.step(95.0, ("BTCUSDT", "ETHUSDT"))  # the loser's deal is 5 USDT down: daily loss over 1
    assert env.state("loser") is TradingState.PAUSED
    assert env.w.controls.get("bot", "loser").set_by == "risk"
    res = env.send("resume_all", scope="global")
    assert res.status == "applied"  # type: ignore[attr-defined]
    assert "still stopped by a rule" in res.message and "loser (PAUSED by risk" in res.message  # type: ignore[attr-defined]
    assert env.state("paused") is TradingState.ACTIVE
    assert env.state("loser") is TradingState.PAUSED
    env.send("resume", target="loser")  # each is resumed on its own
    assert env.state("loser") is TradingState.ACTIVE
