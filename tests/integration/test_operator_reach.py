"""Issue 13's whole path at once, every part real: redis-server, the worker, the REST API
(uvicorn) and the notifier (apprise's JSON target posting to a local HTTP sink). A TradingView
alert opens a paper position and its duplicate does not; a risk breach the worker raises reaches the
sink within 2 s; an emergency stop through the API answers with the worker's result and leaves
every bot flat and paused."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from reach_support import ApiProcess, Proc, api_redis_url, start_notifier
from standins import HttpSink
from state import keys
from state.events import Event
from state.notifier_store import read_notifier_status
from support import RedisServer, WorkerProcess, fast_config, snapshots, start_worker, wait_for, write_config

BOT = "tv-btc"
SECRET = "tv-secret-abcdefghij0123"


@dataclass
class World:
    r: redis.Redis
    sink: HttpSink
    api: ApiProcess
    worker: WorkerProcess
    notifier: Proc


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    tmp: Path = tmp_path_factory.mktemp("reach")
    server = RedisServer(tmp / "redis")
    sink = HttpSink()
    started: list[object] = []
    try:
        cfg = fast_config(server.url)
        cfg["bots"].append({"name": BOT, "mode": "paper", "symbol": "BTCUSDT", "strategy": "webhook",
                            "params": {"stop_loss_pct": 1.5, "take_profit_pct": 3.0}})
        path = write_config(tmp / "config.yaml", cfg)
        r = server.client()
        worker = start_worker(path, tmp / "worker.log", r)
        started.append(worker)
        wait_for(lambda: BOT in snapshots(r), 30, "the webhook bot's snapshot")
        notifier = start_notifier(path, tmp / "notify.log", {"BOT_NOTIFY_URLS": sink.url("ops")})
        started.append(notifier)
        # its consumer group starts at the stream's end when it first runs: wait until it reads
        wait_for(lambda: read_notifier_status(r) is not None, 30, "the notifier's status")
        api = ApiProcess(path, tmp / "api.log", env={"BOT_REDIS__URL": api_redis_url(server),
                                                     "BOT_WEBHOOK_SECRETS": f"{BOT}:{SECRET}"})
        started.append(api)
        yield World(r, sink, api, worker, notifier)
    finally:
        for p in reversed(started):
            p.stop()  # type: ignore[attr-defined]
        sink.close()
        server.close()


def held(r: redis.Redis, bot: str) -> float:
    snap = snapshots(r).get(bot)
    return sum(p.quantity for p in snap.open_positions) if snap is not None else 0.0


def alert(alert_id: str) -> dict[str, str]:
    return {"secret": SECRET, "ticker": "BINANCE:BTCUSDT", "action": "buy", "price": "65000",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "id": alert_id}


def test_a_tradingview_alert_opens_a_paper_position_and_its_duplicate_does_not(world: World) -> None:
    status, body = world.api.call("POST", f"/webhook/{BOT}", alert("tv-1"), token=None)
    assert status == 202, body
    qty = wait_for(lambda: held(world.r, BOT), 15, "the position the alert opens")
    status, again = world.api.call("POST", f"/webhook/{BOT}", alert("tv-1"), token=None)
    assert status == 200 and again["status"] == "duplicate"
    time.sleep(1.0)  # a second entry, were one made, lands within a candle or two
    assert held(world.r, BOT) == qty


def test_a_risk_breach_reaches_the_sink_within_two_seconds(world: World) -> None:
    # the webhook bot holds a position: a drawdown limit below any price tick is breached on the next candle
    assert held(world.r, BOT) > 0
    status, body = world.api.call("POST", f"/api/v1/bots/{BOT}/set_limit",
                                  {"limit": "max_drawdown_pct", "value": "0.000001", "reason": "pytest"})
    assert status == 200 and body["status"] == "applied", body

    def breach() -> tuple[str, Event] | None:
        for entry_id, f in world.r.xrange(keys.EVENTS):
            e = Event.model_validate_json(f[b"data"])
            if e.kind == "risk_breach" and e.bot == BOT:
                return entry_id.decode(), e
        return None

    entry_id, event = wait_for(breach, 20, "the worker's risk_breach event")
    written = int(entry_id.split("-")[0]) / 1000  # Redis's clock when the worker wrote it

    def delivered() -> float | None:
        with world.sink.lock:
            for m, at in zip(world.sink.received, world.sink.arrived):
                if event.title in str(m.get("title", "")) + str(m.get("message", "")):
                    return at
        return None

    try:
        arrived = wait_for(delivered, 10, f"the sink to receive {event.title!r}")
    except AssertionError:
        raise AssertionError(f"{world.sink.received}\n{world.notifier.log()}") from None
    assert arrived - written <= 2.0, f"delivered {arrived - written:.2f} s after the worker wrote it"


def test_an_emergency_stop_through_the_api_flattens_every_bot(world: World) -> None:
    wait_for(lambda: any(held(world.r, b) for b in ("paper-mom-btc", "paper-sma-eth", BOT)), 60,
             "some paper position to close")
    status, body = world.api.call("POST", "/api/v1/emergency_stop", {"reason": "pytest"})
    assert status == 200 and body["status"] == "applied", body  # the worker's own answer
    assert "flatten" in body["message"].lower() or "clos" in body["message"].lower(), body["message"]
    snaps = snapshots(world.r)
    assert all(not s.open_positions for s in snaps.values()), {n: s.open_positions for n, s in snaps.items()
                                                              if s.open_positions}
    assert world.r.hget(keys.control("global"), "state") == b"PAUSED"
    time.sleep(1.5)  # and nothing opens again while paused
    assert all(not s.open_positions for s in snapshots(world.r).values())
    assert world.worker.alive() and world.notifier.alive() and world.api.alive()
