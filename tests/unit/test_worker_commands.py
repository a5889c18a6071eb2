"""Worker + commands on fakeredis (bytes replies, as in production), driven synchronously.

Bots: p-btc (paper BTCUSDT), p-eth (paper ETHUSDT), g-btc (ghost BTCUSDT). Paper: balance 10000,
fee 0.1 %, slippage 0. After start() each bot's strategy is swapped for a scripted one, so a BUY
at close 100 with sizing 20 % buys 2000/100 = 20 units (paper fee 2.00; ghost fee 0).
"""
from __future__ import annotations

import json
import os
import threading
from typing import Sequence

import fakeredis
import pytest

from core.clock import SimClock
from core.types import INTERVAL_MS, NO_SIGNAL, Candle, Side, Signal, TradingState
from engine.worker import Worker
from market.feed import ReplayFeed
from settings import AppConfig
from state import keys
from state.reader import StateReader

T0 = 1_704_067_200_000
M = INTERVAL_MS["1m"]
BUY = Signal(Side.BUY, 1.0, "scripted buy")


class Scripted:
    name = "scripted"
    warmup = 1

    def __init__(self, script: dict[int, Signal] | None = None) -> None:
        self.script = dict(script or {})

    def evaluate(self, candles: Sequence[Candle]) -> Signal:
        return self.script.get((candles[-1].open_time - T0) // M, NO_SIGNAL)


def c(symbol: str, i: int, price: float) -> Candle:
    return Candle(symbol, T0 + i * M, price, price, price, price, 1e6, "1m")  # volume: far above the paper fill model's 10 % cap


def series(n: int = 8) -> dict[str, list[Candle]]:
    return {"BTCUSDT": [c("BTCUSDT", i, 100.0) for i in range(n)],
            "ETHUSDT": [c("ETHUSDT", i, 10.0) for i in range(n)]}


def bot_cfg(name: str, mode: str, symbol: str) -> dict[str, object]:
    return {"name": name, "mode": mode, "symbol": symbol, "strategy": "momentum",
            "params": {"window": 2, "threshold_pct": 0.5}, "sizing": {"kind": "percent_equity", "value": 20},
            # The limits these command tests are not about are opened wide; risk has its own tests.
            "risk": {"max_position_pct": 100, "max_loss_per_trade_pct": None, "daily_loss_pct": None, "max_drawdown_pct": None}}


APP = {
    "market": {"symbols": ["BTCUSDT", "ETHUSDT"], "interval": "1m", "warmup_candles": 3},
    "paper": {"starting_balance": 10_000, "fee_pct": 0.1, "slippage_bps": 0},
    "worker": {"history_keep": 100},
    "bots": [bot_cfg("p-btc", "paper", "BTCUSDT"), bot_cfg("p-eth", "paper", "ETHUSDT"),
             bot_cfg("g-btc", "ghost", "BTCUSDT")],
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(os.environ):
        if k.startswith("BOT_"):
            monkeypatch.delenv(k)


class Env:
    def __init__(self, r: fakeredis.FakeRedis | None = None, scripted: bool = True) -> None:
        self.app = AppConfig(**APP)
        self.r = r if r is not None else fakeredis.FakeRedis()
        self.feed = ReplayFeed(series())
        self.clock = SimClock(T0 + 100 * M)
        self.worker = Worker(self.app, self.r, self.feed, clock=self.clock)
        self.worker.start()
        self.reader = StateReader(self.r)
        self.n = 0
        if scripted:
            for b in self.worker.bots.values():
                b.strategy = Scripted()

    def script(self, bot: str, i: int, sig: Signal = BUY) -> None:
        self.worker.bots[bot].strategy.script[i] = sig  # type: ignore[attr-defined]

    def step(self, defer: bool = False) -> list[Candle]:
        batch = self.feed.next_batch(threading.Event())
        assert batch
        self.clock.advance_to(self.clock.now_ms() + 1_000)
        self.worker.step(batch, defer)
        return batch

    def send(self, **fields: str) -> tuple[str, object]:
        self.n += 1
        full = {"scope": "bot", "user": "alice", "ts": str(T0), "nonce": f"nonce-{self.n:04d}", **fields}
        full = {k: v for k, v in full.items() if v is not None}
        entry_id = self.r.xadd(keys.COMMANDS, full).decode()
        self.clock.advance_to(self.clock.now_ms() + 1_000)
        return entry_id, self.worker.handle_command(entry_id, full)

    def control(self, scope: str, target: str = "") -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.r.hgetall(keys.control(scope, target)).items()}

    def snap(self, bot: str):  # type: ignore[no-untyped-def]
        return self.reader.snapshots([bot])[bot]


@pytest.fixture
def env() -> Env:
    return Env()


def test_start_registers_bots_and_writes_snapshots_and_candles(env: Env) -> None:
    assert set(env.reader.bots()) == {"p-btc", "p-eth", "g-btc"}
    assert env.reader.bots()["p-btc"].sizing == "percent_equity 20"
    snaps = env.reader.snapshots()
    assert {n: s.equity for n, s in snaps.items()} == {"g-btc": 10_000.0, "p-btc": 10_000.0, "p-eth": 10_000.0}
    assert snaps["p-btc"].last_candle_time == T0 + 2 * M  # warm-up candles 0..2
    assert [x.t for x in env.reader.candles("BTCUSDT")] == [T0, T0 + M, T0 + 2 * M]
    assert env.reader.control("global").state is TradingState.ACTIVE
    assert env.r.xinfo_groups(keys.COMMANDS)[0]["name"] == keys.COMMAND_GROUP.encode()


def test_registry_strategy_trades_on_hand_made_candles() -> None:
    # momentum window 2, threshold 0.5 %: closes 100,100,100 (warm-up), 100, 102 ->
    # ROC(2) = 100*(102/100 - 1) = 2 % crosses +0.5 % -> BUY at 102
    r = fakeredis.FakeRedis()
    app = AppConfig(**{**APP, "bots": [bot_cfg("p-btc", "paper", "BTCUSDT")]})
    candles = [c("BTCUSDT", i, p) for i, p in enumerate((100.0, 100.0, 100.0, 100.0, 102.0))]
    feed = ReplayFeed({"BTCUSDT": candles})
    w = Worker(app, r, feed, clock=SimClock(T0))
    w.start()
    w.step(feed.next_batch(threading.Event()))  # type: ignore[arg-type]
    assert not w.bots["p-btc"].position.is_open
    w.step(feed.next_batch(threading.Event()))  # type: ignore[arg-type]
    pos = w.bots["p-btc"].position
    # 20 % of 10000 = 2000 -> 2000 / 102 = 19.6078... units
    assert pos.quantity == pytest.approx(2_000 / 102)
    (sig,) = StateReader(r).signals("p-btc")
    assert sig.side == "BUY" and sig.acted and "crossed above +0.5%" in sig.reason


def test_step_writes_trades_and_snapshots(env: Env) -> None:
    env.script("p-btc", 3)
    env.step()
    s = env.snap("p-btc")
    # 20 units @ 100, fee 2.00: quote 7998, equity 9998
    assert s.position is not None and s.position.quantity == pytest.approx(20.0)
    assert s.quote_balance == pytest.approx(7_998.0) and s.equity == pytest.approx(9_998.0)
    assert s.updated_at == env.clock.now_ms()
    (o,) = env.reader.orders("p-btc")
    assert o.purpose == "ENTRY" and o.status == "FILLED"
    assert [x.t for x in env.reader.candles("BTCUSDT")][-1] == T0 + 3 * M


def test_pause_bot_sets_control_with_who_when_why_and_audits(env: Env) -> None:
    entry_id, res = env.send(cmd="pause", target="p-btc", reason="maintenance")
    now = env.clock.now_ms()
    assert res.status == "applied"  # type: ignore[attr-defined]
    assert res.message == "bot p-btc paused: no new entries, exits still run"  # type: ignore[attr-defined]
    assert env.control("bot", "p-btc") == {"state": "PAUSED", "set_by": "alice", "set_at": str(now),
                                           "reason": "maintenance", "then": ""}
    (audit,) = env.reader.audit()
    assert (audit.who, audit.command, audit.target, audit.result, audit.entry_id, audit.nonce, audit.time) == (
        "alice", "pause", "p-btc", "applied", entry_id, "nonce-0001", now)
    stored = env.reader.command_result("nonce-0001")
    assert stored is not None and stored.status == "applied"
    assert env.r.get(keys.applied("nonce-0001")) == entry_id.encode()
    assert 0 < env.r.ttl(keys.applied("nonce-0001")) <= keys.APPLIED_KEEP_S  # kept a week, not forever
    s = env.snap("p-btc")
    assert s.control.state is TradingState.PAUSED and s.effective_state is TradingState.PAUSED
    assert s.control.set_by == "alice" and s.control.reason == "maintenance"
    # the paused bot's entry is denied, the other BTC bot still enters
    env.script("p-btc", 3)
    env.script("g-btc", 3)
    env.step()
    assert not env.worker.bots["p-btc"].position.is_open
    assert env.worker.bots["g-btc"].exposure
    (denial,) = env.reader.denials("p-btc")
    assert denial.rule == "trading_state" and denial.detail == "state PAUSED allows no entries"


def test_pause_without_reason_gets_a_default(env: Env) -> None:
    env.send(cmd="pause", scope="global", target="")
    assert env.control("global")["reason"] == "paused by operator"
    assert all(env.worker.effective_state(b) is TradingState.PAUSED for b in env.worker.bots.values())


def test_pause_mode_only_affects_that_mode(env: Env) -> None:
    _, res = env.send(cmd="pause", scope="mode", target="paper")
    assert res.status == "applied"  # type: ignore[attr-defined]
    assert env.control("mode", "paper")["state"] == "PAUSED"
    for b in ("p-btc", "g-btc"):
        env.script(b, 3)
    env.step()
    assert not env.worker.bots["p-btc"].position.is_open
    assert env.worker.bots["g-btc"].exposure


def test_flatten_bot_with_a_position(env: Env) -> None:
    env.script("p-btc", 3)
    env.step()
    assert env.worker.bots["p-btc"].position.is_open
    _, res = env.send(cmd="flatten", target="p-btc")
    assert res.status == "applied"  # type: ignore[attr-defined]
    assert "closed 1 position(s) (p-btc +20 BTCUSDT)" in res.message  # type: ignore[attr-defined]
    assert not env.worker.bots["p-btc"].position.is_open
    (t,) = env.reader.trades("p-btc")
    # exit 20 @ 100 (last close), fee 2.00: pnl = 0 - 2.00 - 2.00 = -4.00
    assert t.exit_reason == "flatten by alice" and t.pnl == pytest.approx(-4.0)
    orders = env.reader.orders("p-btc")
    assert orders[0].purpose == "FLATTEN" and orders[0].status == "FILLED"
    s = env.snap("p-btc")
    assert s.position is None and s.trade_count == 1
    assert s.equity == pytest.approx(9_996.0) and s.quote_balance == pytest.approx(9_996.0)
    assert s.control.state is TradingState.PAUSED
    assert env.control("bot", "p-btc")["state"] == "PAUSED"
    assert env.control("bot", "p-btc")["reason"] == "flattened by operator"


def test_emergency_stop_pauses_everything_and_flattens_all(env: Env) -> None:
    for b in ("p-btc", "p-eth", "g-btc"):
        env.script(b, 3)
    env.step()
    assert all(b.exposure for b in env.worker.bots.values())
    _, res = env.send(cmd="emergency_stop", scope="global", target="", reason="panic")
    assert res.status == "applied"  # type: ignore[attr-defined]
    assert res.message.startswith("EMERGENCY STOP: closed 3 position(s)")  # type: ignore[attr-defined]
    assert res.message.endswith("all 3 bots paused")  # type: ignore[attr-defined]
    assert env.control("global")["state"] == "PAUSED" and env.control("global")["reason"] == "panic"
    for name in ("p-btc", "p-eth", "g-btc"):
        assert env.control("bot", name)["state"] == "PAUSED"
        assert not env.worker.bots[name].exposure
        s = env.snap(name)
        assert s.position is None and s.effective_state is TradingState.PAUSED
        (t,) = env.reader.trades(name)
        assert t.exit_reason == "emergency_stop by alice"
    # ghost: no fees, flat price -> pnl 0; ETH paper: 200 units @ 10, fees 2.00 + 2.00 -> -4.00
    assert env.reader.trades("g-btc")[0].pnl == pytest.approx(0.0)
    assert env.reader.trades("p-eth")[0].pnl == pytest.approx(-4.0)
    # nothing enters afterwards
    for b in ("p-btc", "p-eth", "g-btc"):
        env.script(b, 4)
    env.step()
    assert not any(b.position.is_open for b in env.worker.bots.values())


def test_resume_all_makes_everything_active(env: Env) -> None:
    env.send(cmd="emergency_stop", scope="global", target="")
    env.send(cmd="pause", scope="mode", target="ghost")
    _, res = env.send(cmd="resume_all", scope="global", target="")
    assert res.status == "applied" and res.message == "all 3 bots resumed"  # type: ignore[attr-defined]
    assert env.control("global")["state"] == "ACTIVE"
    for m in ("ghost", "paper", "live"):
        assert env.control("mode", m)["state"] == "ACTIVE"
    for name in ("p-btc", "p-eth", "g-btc"):
        assert env.control("bot", name)["state"] == "ACTIVE"
        assert env.snap(name).effective_state is TradingState.ACTIVE
    env.script("p-btc", 3)
    env.step()
    assert env.worker.bots["p-btc"].position.is_open


def test_resume_bot_reports_a_wider_state_still_holding_it(env: Env) -> None:
    env.send(cmd="pause", scope="global", target="")
    env.send(cmd="pause", target="p-btc")
    _, res = env.send(cmd="resume", target="p-btc")
    assert res.status == "applied"  # type: ignore[attr-defined]
    assert "still held by a wider state: p-btc" in res.message  # type: ignore[attr-defined]
    assert env.control("bot", "p-btc")["state"] == "ACTIVE"
    assert env.worker.effective_state(env.worker.bots["p-btc"]) is TradingState.PAUSED


def test_same_nonce_twice_is_a_duplicate_without_second_effect(env: Env) -> None:
    env.script("p-btc", 3)
    env.step()
    fields = {"cmd": "flatten", "scope": "bot", "target": "p-btc", "nonce": "same-nonce-1", "user": "alice",
              "ts": str(T0)}
    first = env.worker.handle_command(env.r.xadd(keys.COMMANDS, fields).decode(), fields)
    assert first.status == "applied"
    # resume and re-enter, then the same command arrives again (a dashboard retry)
    env.send(cmd="resume", target="p-btc")
    env.script("p-btc", 4)
    env.step()
    assert env.worker.bots["p-btc"].position.is_open
    second_id = env.r.xadd(keys.COMMANDS, fields).decode()
    second = env.worker.handle_command(second_id, fields)
    assert second.status == "duplicate"
    assert second.message == "already applied; nothing done again"
    assert env.worker.bots["p-btc"].position.is_open  # not flattened again
    assert env.control("bot", "p-btc")["state"] == "ACTIVE"  # not paused again
    assert len(env.reader.trades("p-btc")) == 1
    audit = env.reader.audit()
    assert audit[0].result == "duplicate" and audit[0].nonce == "same-nonce-1" and audit[0].entry_id == second_id
    assert sum(a.nonce == "same-nonce-1" for a in audit) == 2


def test_malformed_command_is_rejected_recorded_and_worker_continues(env: Env) -> None:
    fields = {"cmd": "explode", "scope": "bot", "target": "p-btc", "nonce": "bad-cmd-01", "ts": "1",
              "user": "mallory", "extra": "x"}
    entry_id = env.r.xadd(keys.COMMANDS, fields).decode()
    res = env.worker.handle_command(entry_id, fields)
    assert res.status == "rejected"
    assert "cmd: Input should be" in res.message and "extra: Extra inputs are not permitted" in res.message
    ((_, rej),) = env.r.xrange(keys.REJECTS)
    rej = {k.decode(): v.decode() for k, v in rej.items()}
    assert rej["kind"] == "command" and rej["detail"] == res.message
    assert json.loads(rej["raw"]) == fields
    (audit,) = env.reader.audit()
    assert (audit.result, audit.who, audit.command, audit.target, audit.entry_id, audit.nonce) == (
        "rejected", "mallory", "explode", "p-btc", entry_id, "bad-cmd-01")
    stored = env.reader.command_result("bad-cmd-01")
    assert stored is not None and stored.status == "rejected"
    assert env.r.get(keys.applied("bad-cmd-01")) is None
    assert env.control("bot", "p-btc") == {}  # nothing applied
    # the worker still works
    _, ok = env.send(cmd="pause", target="p-btc")
    assert ok.status == "applied"  # type: ignore[attr-defined]
    assert env.control("bot", "p-btc")["state"] == "PAUSED"


def test_rejected_command_with_unusable_nonce_stores_no_result(env: Env) -> None:
    fields = {"cmd": "pause", "target": "p-btc", "nonce": "no spaces allowed!", "ts": "1"}
    res = env.worker.handle_command(env.r.xadd(keys.COMMANDS, fields).decode(), fields)
    assert res.status == "rejected" and res.nonce == ""
    assert res.message.startswith("nonce: ")
    assert not env.r.keys(keys.command_result("*"))
    assert env.reader.audit()[0].who == "?"


def test_unknown_bot_target_is_rejected_naming_the_bot(env: Env) -> None:
    _, res = env.send(cmd="flatten", target="nobody")
    assert res.status == "rejected"  # type: ignore[attr-defined]
    assert res.message == "target: no bot named 'nobody'; bots: p-btc, p-eth, g-btc"  # type: ignore[attr-defined]
    assert env.reader.audit()[0].result == "rejected" and env.reader.audit()[0].target == "nobody"
    assert env.r.xlen(keys.REJECTS) == 1
    assert env.r.get(keys.applied("nonce-0001")) is None
    assert not env.r.keys(keys.control("bot", "*"))


def test_restart_restores_controls_and_snapshots() -> None:
    env = Env()
    env.script("p-btc", 3)
    env.script("p-eth", 3)
    env.script("g-btc", 3)
    env.step()  # candle 3: all three enter
    env.send(cmd="flatten", target="p-eth")  # p-eth: 1 trade, PAUSED
    env.send(cmd="pause", scope="mode", target="ghost", reason="ghost off")
    env.step()  # candle 4
    before = {n: env.snap(n) for n in ("p-btc", "p-eth", "g-btc")}
    assert before["p-eth"].trade_count == 1 and before["p-btc"].position is not None

    env2 = Env(r=env.r)  # a new worker on the same Redis
    w2 = env2.worker
    assert w2.controls.get("bot", "p-eth").state is TradingState.PAUSED
    assert w2.controls.get("bot", "p-eth").set_by == "alice"
    assert w2.controls.get("mode", "ghost").state is TradingState.PAUSED
    assert w2.controls.get("mode", "ghost").reason == "ghost off"
    assert w2.controls.get("global").state is TradingState.ACTIVE
    assert w2.bots["p-eth"].control.state is TradingState.PAUSED
    for name, s in before.items():
        after = env2.snap(name)
        assert after.equity == pytest.approx(s.equity)
        assert after.quote_balance == pytest.approx(s.quote_balance)
        assert after.trade_count == s.trade_count
        assert after.realized_pnl == pytest.approx(s.realized_pnl)
        assert after.last_candle_time == s.last_candle_time == T0 + 4 * M
        assert after.effective_state is s.effective_state
        assert (after.position is None) == (s.position is None)
    assert env2.snap("p-btc").position.quantity == pytest.approx(20.0)  # type: ignore[union-attr]
    assert env2.snap("p-eth").equity == pytest.approx(9_996.0)  # 10000 - 2.00 - 2.00
    # candles the old worker already traded are ignored by the new one (idempotent replay)
    before_cs = w2.bots["p-btc"].candles_seen
    w2.step([c("BTCUSDT", 4, 50.0)])
    assert w2.bots["p-btc"].candles_seen == before_cs
    assert env2.snap("p-btc").last_price == 100.0
    # the applied nonces survive too
    fields = {"cmd": "flatten", "scope": "bot", "target": "p-eth", "nonce": "nonce-0001", "user": "alice",
              "ts": str(T0)}
    assert w2.handle_command("0-1", fields).status == "duplicate"


def test_one_failing_bot_does_not_stop_the_others(env: Env) -> None:
    class Boom:
        name = "boom"
        warmup = 1

        def evaluate(self, candles: Sequence[Candle]) -> Signal:
            raise RuntimeError("strategy bug")

    env.worker.bots["p-btc"].strategy = Boom()  # type: ignore[assignment]
    env.script("g-btc", 3)
    env.step()
    assert env.worker.bots["g-btc"].exposure
    assert env.snap("g-btc").open_signals
    assert env.snap("p-btc").last_candle_time == T0 + 3 * M


def test_redis_failure_keeps_the_batch_for_the_next_step(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    import redis

    real = env.worker.writer._transaction
    calls = {"n": 0}

    def flaky(build, *rest):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise redis.ConnectionError("down")
        return real(build, *rest)

    monkeypatch.setattr(env.worker.writer, "_transaction", flaky)
    env.script("p-btc", 3)
    env.step()  # write fails: nothing in Redis yet; the writer keeps the batch
    assert env.reader.orders("p-btc") == []
    assert env.worker.writer.kept >= 3 and env.worker._pending == []
    env.step()  # written first, with the next batch
    assert len(env.reader.orders("p-btc")) == 1
    assert [x.t for x in env.reader.candles("BTCUSDT")][-2:] == [T0 + 3 * M, T0 + 4 * M]
    assert env.snap("p-btc").last_candle_time == T0 + 4 * M
    assert env.worker.writer.kept == 0


def test_a_step_sent_ahead_of_its_answer_is_kept_when_the_answer_is_lost(env: Env,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The trading loop steps with defer=True (Worker.run): the step's batch is sent and its answer read
    later (by the next write, or the health loop's settle_writes within a second). A connection lost
    meanwhile is seen then: logged, the batch kept, and written with the next step."""
    import redis

    from state.batch import BatchRunner

    class Gone:  # what the batch was sent on: it did not run, and no answer comes
        def read_response(self) -> None:
            raise redis.ConnectionError("Connection closed by server.")

        def disconnect(self) -> None:
            pass

    real_post = BatchRunner._post
    monkeypatch.setattr(BatchRunner, "_post", lambda self, payload, conn=None: Gone())
    monkeypatch.setattr(env.r.connection_pool, "release", lambda conn: None)
    env.script("p-btc", 3)
    env.step(defer=True)
    assert env.worker.writer._inflight and env.reader.orders("p-btc") == []
    env.worker.settle_writes()  # the health loop's read of the answer
    assert not env.worker.writer._inflight and env.worker.writer.kept >= 3
    assert not env.worker.lease_lost
    monkeypatch.setattr(BatchRunner, "_post", real_post)
    env.step(defer=True)
    env.worker.settle_writes()
    assert len(env.reader.orders("p-btc")) == 1
    assert env.snap("p-btc").last_candle_time == T0 + 4 * M
    assert env.worker.writer.kept == 0


def test_a_command_whose_write_failed_keeps_its_effect(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill switch applied while Redis refused the write: its bookings are not lost with it."""
    import redis

    env.script("p-btc", 3)
    env.step()
    assert env.snap("p-btc").position is not None
    real = env.worker.writer._transaction
    calls = {"n": 0}

    def down_twice(build, *rest):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] <= 2:  # the command's answer, then the rejection it turns into
            raise redis.ConnectionError("down")
        return real(build, *rest)

    monkeypatch.setattr(env.worker.writer, "_transaction", down_twice)
    with pytest.raises(redis.ConnectionError):
        env.send(cmd="flatten", target="p-btc", reason="test")
    assert env.worker.writer.kept > 0
    env.step()
    fills = env.reader.fills("p-btc", 10)
    assert any(f.side == "SELL" for f in fills), "the flatten's fill was lost with the failed write"
    assert env.snap("p-btc").position is None or env.snap("p-btc").position.quantity == 0


def test_empty_fields_entry_is_rejected_not_fatal(env: Env) -> None:
    # read_commands yields {} for an entry deleted while pending
    res = env.worker.handle_command("0-1", {})
    assert res.status == "rejected"
    assert "cmd: Field required" in res.message and "nonce: Field required" in res.message
    assert env.reader.audit()[0].command == "?"
    _, ok = env.send(cmd="pause", scope="global", target="")
    assert ok.status == "applied"  # type: ignore[attr-defined]


def test_the_daily_summary_goes_out_once_when_the_wall_day_turns(env: Env) -> None:
    """Each commit asks whether the UTC day turned; the first one after it publishes each bot's P&L and
    trades of the day before (the bots' marks are gathered only then), once."""
    import json

    from core.clock import DAY_MS, utc_day

    def summaries() -> list[dict[str, object]]:
        out = []
        for _, f in env.r.xrange(keys.EVENTS):
            e = json.loads(f[b"data"])
            if e["kind"] == "daily_summary":
                out.append(e)
        return out

    env.script("p-btc", 0)
    env.step()
    env.step()
    assert summaries() == []
    before = utc_day(env.clock.now_ms())
    env.clock.advance_to((env.clock.now_ms() // DAY_MS + 1) * DAY_MS + 5_000)  # past midnight UTC
    env.step()
    env.step()
    got = summaries()
    assert len(got) == 1, got
    data = got[0]["data"]
    assert data["day"] == before and got[0]["title"].startswith(before)
    assert set(data["bots"]) == {"p-btc", "p-eth", "g-btc"}
    assert data["bots"]["p-btc"]["trades"] == 0 and data["bots"]["p-btc"]["equity"] > 0  # it entered, not closed
