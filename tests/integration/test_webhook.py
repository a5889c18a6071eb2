"""Inbound webhook signals through the real API process, Redis and worker: a valid alert becomes
one `signal` command (replays do not) that the worker acts on through the bot's risk engine and
executor, a refused one is answered and audited by the worker, and after an emergency stop a signal
opens nothing."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pytest
import redis

from reach_support import ApiProcess, api_redis_url
from state import keys
from state.commands import ALL_COMMANDS, SignalPayload, parse_command
from state.models import AuditRecord
from support import RedisServer, WorkerProcess, fast_config, result_of, snapshots, start_worker, wait_for, write_config

BOT = "wh-btc"
SECRET = "tv-secret-0123456789"
OTHER_SECRET = "paper-secret-0123456789"


@dataclass
class World:
    r: redis.Redis
    api: ApiProcess
    worker: WorkerProcess


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("webhook")
    server = RedisServer(tmp / "redis")
    api = worker = None
    try:
        cfg = fast_config(server.url)
        cfg["bots"].append({"name": BOT, "mode": "paper", "symbol": "BTCUSDT", "strategy": "webhook",
                            "params": {"stop_loss_pct": 1.5, "take_profit_pct": 3.0, "min_confidence": 0.5}})
        path = write_config(tmp / "config.yaml", cfg)
        r = server.client()
        worker = start_worker(path, tmp / "worker.log", r)  # the config with a webhook bot validates and runs
        wait_for(lambda: BOT in snapshots(r), 30, "the webhook bot's snapshot")
        api = ApiProcess(path, tmp / "api.log", env={
            "BOT_REDIS__URL": api_redis_url(server),
            "BOT_WEBHOOK_SECRETS": f"{BOT}:{SECRET},paper-mom-btc:{OTHER_SECRET},not-running:{OTHER_SECRET}"})
        yield World(r, api, worker)
    finally:
        if api is not None:
            api.stop()
        if worker is not None:
            worker.stop()
        server.close()


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def tv_alert(**kw: object) -> dict[str, object]:
    alert: dict[str, object] = {"secret": SECRET, "ticker": "BINANCE:BTCUSDT", "action": "buy", "price": "50000",
                                "sl": "49000", "tp": "52000", "time": now_iso(), "id": "long-1", "interval": "5"}
    alert.update(kw)
    return {k: v for k, v in alert.items() if v is not None}


def post(world: World, body: object, bot: str = BOT, headers: dict[str, str] | None = None,
         raw: bytes | None = None) -> tuple[int, dict[str, object]]:
    return world.api.call("POST", f"/webhook/{bot}", body, token=None, headers=headers, raw=raw)


def audit_of(r: redis.Redis, nonce: str) -> AuditRecord:
    def find() -> AuditRecord | None:
        for _, f in r.xrevrange(keys.AUDIT, count=200):
            a = AuditRecord.model_validate_json(f[b"data"])
            if a.nonce == nonce:
                return a
        return None

    return wait_for(find, 10, f"the audit record of {nonce}")


def test_a_valid_alert_is_one_signal_command(world: World) -> None:
    before = world.r.xlen(keys.COMMANDS)
    status, body = post(world, tv_alert())
    assert status == 202 and body["status"] == "queued" and str(body["nonce"]).startswith("sig-")
    assert world.r.xlen(keys.COMMANDS) == before + 1
    _, fields = world.r.xrevrange(keys.COMMANDS, count=1)[0]
    posted = {k.decode(): v.decode() for k, v in fields.items()}
    assert SECRET not in json.dumps(posted)  # the secret goes nowhere
    cmd = parse_command(posted, handles=ALL_COMMANDS)  # what a worker with the webhook handler reads
    p = SignalPayload.model_validate_json(cmd.payload)
    assert (cmd.cmd, cmd.target, cmd.user, cmd.nonce) == ("signal", BOT, "webhook:tradingview", body["nonce"])
    assert (p.side, p.symbol, p.price, p.stop_loss, p.take_profit, p.alert_id) == ("BUY", "BTCUSDT", 50000, 49000,
                                                                                   52000, "long-1")
    # the same alert again (a TradingView retry): applied once, not posted again
    status, again = post(world, tv_alert(time=now_iso()))
    assert status == 200 and again["status"] == "duplicate" and again["nonce"] == body["nonce"]
    assert world.r.xlen(keys.COMMANDS) == before + 1


def test_copies_of_one_alert_arriving_together_post_one_command(world: World) -> None:
    from concurrent.futures import ThreadPoolExecutor

    before = world.r.xlen(keys.COMMANDS)
    alert = tv_alert(id="burst-1")
    with ThreadPoolExecutor(6) as pool:
        statuses = sorted(s for s, _ in pool.map(lambda _: post(world, alert), range(6)))
    assert statuses == [200] * 5 + [202]
    assert world.r.xlen(keys.COMMANDS) == before + 1


def test_an_alert_without_id_is_deduplicated_by_content_inside_the_window(world: World) -> None:
    t = int(time.time() * 1000)
    plain = {"side": "SELL", "symbol": "BTCUSDT", "price": 51000, "stop_loss": 52000, "time": t}
    before = world.r.xlen(keys.COMMANDS)
    status, first = post(world, plain, headers={"X-Webhook-Secret": SECRET})  # the header works as well
    assert status == 202
    status, second = post(world, {**plain, "time": t + 20_000}, headers={"X-Webhook-Secret": SECRET})
    assert status == 200 and second["status"] == "duplicate"
    status, _ = post(world, {**plain, "price": 51500}, headers={"X-Webhook-Secret": SECRET})
    assert status == 202  # other content: another signal
    assert world.r.xlen(keys.COMMANDS) == before + 2


def test_authentication_and_unknown_bots_post_nothing(world: World) -> None:
    before = world.r.xlen(keys.COMMANDS)
    assert post(world, tv_alert(secret="wrong-secret-0123456789"))[0] == 401
    assert post(world, tv_alert(secret=None))[0] == 401
    assert post(world, tv_alert(), bot="ghost-mom-btc")[0] == 404  # no webhook secret for it
    status, body = post(world, tv_alert(secret=OTHER_SECRET), bot="not-running")
    assert status == 404 and "no bot named 'not-running' is running" in str(body["detail"])
    assert post(world, None, raw=b"x" * 70_000)[0] == 413
    assert world.r.xlen(keys.COMMANDS) == before
    log = world.api.log()
    assert SECRET not in log and "wrong-secret" not in log and "refused an alert" in log


def test_a_refused_alert_is_answered_and_audited_by_the_worker(world: World) -> None:
    stale = int(time.time() * 1000) - 600_000
    before = world.r.xlen(keys.COMMANDS)
    status, body = post(world, tv_alert(id="old-1", time=stale))
    assert status == 422 and body["recorded"] is True
    assert str(body["detail"]).startswith("time: the alert is 600 s old, over the 120 s allowed (stale)")
    assert world.r.xlen(keys.COMMANDS) == before + 1
    _, fields = world.r.xrevrange(keys.COMMANDS, count=1)[0]
    nonce = fields[b"nonce"].decode()
    audit = audit_of(world.r, nonce)
    assert (audit.who, audit.command, audit.target, audit.result) == ("webhook:tradingview", "signal", BOT,
                                                                     "rejected")
    assert "alert refused by the API: time: the alert is 600 s old" in audit.detail
    assert result_of(world.r, nonce).status == "rejected"  # type: ignore[union-attr]
    # the same refused body again is answered but not recorded twice
    status, again = post(world, tv_alert(id="old-1", time=stale))
    assert status == 422 and again["recorded"] is False
    assert world.r.xlen(keys.COMMANDS) == before + 1
    # malformed, wrong symbol, a bot that takes no signals: each refused with its field, and recorded
    for bot, alert, want, text in [
        (BOT, tv_alert(id="bad-1", action="hold"), 422, "action: must be buy or sell"),
        (BOT, tv_alert(id="eth-1", ticker="ETHUSDT"), 422, "symbol: wh-btc trades BTCUSDT, not ETHUSDT"),
        ("paper-mom-btc", tv_alert(secret=OTHER_SECRET), 409, "bot: paper-mom-btc runs strategy 'momentum'"),
    ]:
        status, body = post(world, alert, bot=bot)
        assert status == want and str(body["detail"]).startswith(text) and body["recorded"] is True
    status, body = post(world, None, raw=b"[1, 2]", headers={"X-Webhook-Secret": SECRET})
    assert status == 422 and body["detail"] == "body: must be a JSON object"
    assert world.r.xlen(keys.COMMANDS) == before + 5


def test_a_valid_alert_opens_a_paper_position_once(world: World) -> None:
    """The worker acts on the alert through the bot's own path: a paper position opens at the last
    price with the alert's stop; the same alert again (its id) opens nothing more."""
    status, body = post(world, tv_alert(id="open-1", sl=None, tp=None))  # levels from the bot's params
    assert status == 202
    res = wait_for(lambda: result_of(world.r, str(body["nonce"])), 15, "the worker's answer to the alert")
    assert res.status == "applied" and "entry denied" not in res.message, res
    qty = wait_for(lambda: held(world.r), 15, "the webhook bot's position")
    assert qty > 0
    audit = audit_of(world.r, str(body["nonce"]))
    assert audit.result == "applied" and "BUY signal from" in audit.detail
    # the worker applies a command's nonce once: the same command again (a redelivery; the API derives
    # the nonce from the alert) is answered as a duplicate and opens nothing more
    fields = _fields_of(world.r, str(body["nonce"]))
    world.r.xadd(keys.COMMANDS, fields)
    wait_for(lambda: [a for _, f in world.r.xrevrange(keys.AUDIT, count=50)
                      if (a := AuditRecord.model_validate_json(f[b"data"])).nonce == body["nonce"]
                      and a.result == "duplicate"], 15, "the worker's answer to the redelivered alert")
    time.sleep(1.0)
    assert held(world.r) == qty


def held(r: redis.Redis) -> float:
    snap = snapshots(r).get(BOT)
    return sum(p.quantity for p in snap.open_positions) if snap is not None else 0.0


def _fields_of(r: redis.Redis, nonce: str) -> dict[bytes, bytes]:
    for _, f in r.xrevrange(keys.COMMANDS, count=200):
        if f[b"nonce"].decode() == nonce:
            return dict(f)
    raise AssertionError(f"no command {nonce}")


def test_a_signal_after_an_emergency_stop_opens_nothing(world: World) -> None:
    """A signal while everything is emergency-stopped is read by the worker, but the risk engine refuses
    the entry: everything stays PAUSED and no position changes."""
    from state.commands import new_command, post_command

    stop = new_command("emergency_stop", "global", user="pytest")
    post_command(world.r, stop)
    wait_for(lambda: result_of(world.r, stop.nonce), 10, "the emergency stop")
    before = held(world.r)
    status, body = post(world, tv_alert(id="while-stopped", action="buy"))
    assert status == 202
    audit = audit_of(world.r, str(body["nonce"]))
    assert audit.command == "signal" and audit.result in ("applied", "rejected"), audit
    assert world.r.hget(keys.control("global"), "state") == b"PAUSED"
    assert all(s.effective_state.value == "PAUSED" for s in snapshots(world.r).values())
    assert held(world.r) == before
    assert world.worker.alive()
