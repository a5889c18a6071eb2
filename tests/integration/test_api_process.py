"""The REST API as a real uvicorn process over a real redis-server, with the real worker applying
its commands. The API connects as a Redis user that may write nothing but XADDs to the command
stream, so any other write would fail here."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from reach_support import READ_TOKEN, ApiProcess, api_redis_url
from state import keys
from state.commands import parse_command
from state.events import publish_event, risk_breach, stale_data
from support import RedisServer, WorkerProcess, fast_config, snapshots, start_worker, wait_for, write_config

BOT = "paper-mom-btc"


@dataclass
class World:
    r: redis.Redis
    api: ApiProcess
    config: Path
    tmp: Path
    worker: WorkerProcess | None = None

    def ensure_worker(self) -> None:
        if self.worker is None:
            self.worker = start_worker(self.config, self.tmp / "worker.log", self.r)
            wait_for(lambda: BOT in snapshots(self.r), 30, "the bots' first snapshots")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("api")
    server = RedisServer(tmp / "redis")
    api = w = None
    try:
        cfg = write_config(tmp / "config.yaml", fast_config(server.url))
        api = ApiProcess(cfg, tmp / "api.log", env={"BOT_REDIS__URL": api_redis_url(server),
                                                    "BOT_API_COMMAND_TIMEOUT_S": "3"})
        w = World(server.client(), api, cfg, tmp)
        yield w
    finally:
        if w is not None and w.worker is not None:
            w.worker.stop()
        if api is not None:
            api.stop()
        server.close()


def commands(r: redis.Redis) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in f.items()} for _, f in r.xrange(keys.COMMANDS)]


def test_a_command_without_a_worker_answers_504_and_stays_queued(world: World) -> None:
    status, body = world.api.call("POST", "/api/v1/global/pause", {"reason": "maintenance"})
    assert status == 504 and body["status"] == "queued"
    assert "still queued" in body["message"]
    (posted,) = commands(world.r)
    cmd = parse_command(posted)
    assert (cmd.cmd, cmd.scope, cmd.user, cmd.reason, cmd.nonce) == ("pause", "global", "api:ops", "maintenance",
                                                                      body["nonce"])
    assert world.api.call("GET", f"/api/v1/commands/{body['nonce']}")[0] == 404
    assert world.api.call("GET", "/api/v1/health")[1] == {"worker": "down", "heartbeat_age_s": None}
    world.ensure_worker()  # the queued command is applied when the worker comes
    status, result = wait_for(lambda: (a := world.api.call("GET", f"/api/v1/commands/{body['nonce']}"))[0] == 200
                              and a, 15, "the queued command's result")
    assert result["status"] == "applied"
    assert world.r.hget(keys.control("global"), "state") == b"PAUSED"
    status, body = world.api.call("POST", "/api/v1/global/resume")
    assert status == 200 and body["status"] == "applied"


def test_refused_requests_post_nothing(world: World) -> None:
    world.ensure_worker()
    before = world.r.xlen(keys.COMMANDS)
    cases = [
        ("POST", f"/api/v1/bots/{BOT}/pause", {}, None, None, 401, "missing or malformed Authorization header"),
        ("POST", f"/api/v1/bots/{BOT}/pause", {}, "x" * 30, None, 401, "unknown token"),
        ("POST", f"/api/v1/bots/{BOT}/pause", {}, READ_TOKEN, None, 403, "token 'viewer' has scope 'read'"),
        ("POST", "/api/v1/emergency_stop", {}, READ_TOKEN, None, 403, "this needs 'operator'"),
        ("POST", f"/api/v1/bots/{BOT}/set_limit", {"limit": "max_position_pct"}, None, None, 422,
         "value: Field required"),
        ("POST", f"/api/v1/bots/{BOT}/set_limit", {"limit": "max_fun", "value": "1"}, None, None, 422,
         "limit: unknown limit 'max_fun'"),
        ("POST", f"/api/v1/bots/{BOT}/pause", {"reasons": "typo"}, None, None, 422,
         "reasons: Extra inputs are not permitted"),
        ("POST", f"/api/v1/bots/{BOT}/pause", None, None, b"{not json", 422, "JSON decode error"),
        ("POST", "/api/v1/bots/no-such-bot/flatten", {}, None, None, 404, "no bot named 'no-such-bot'; bots: "),
        ("POST", "/api/v1/modes/demo/pause", {}, None, None, 404, "no mode 'demo'"),
        ("POST", f"/api/v1/bots/{BOT}/pause", None, None, b'{"reason": "' + b"x" * 70_000 + b'"}', 413,
         "request body over 65536 bytes"),
    ]
    for method, path, body, token, raw, want, text in cases:
        kw = {"token": token} if token else {}
        if token is None and want == 401 and "missing" in text:
            kw = {"token": None}
        status, answer = world.api.call(method, path, body, raw=raw, **kw)
        assert status == want, (path, status, answer)
        assert text in answer["detail"], (path, answer)
        if want == 422:
            assert answer["errors"][0]["field"] != "body" or "JSON" in text
    assert world.r.xlen(keys.COMMANDS) == before  # not one of them was posted


def test_commands_round_trip_through_the_worker(world: World) -> None:
    world.ensure_worker()
    status, body = world.api.call("POST", f"/api/v1/bots/{BOT}/pause", {"reason": "api test"})
    assert status == 200 and body["status"] == "applied" and "paused" in body["message"]
    wait_for(lambda: snapshots(world.r)[BOT].effective_state.value == "PAUSED", 5, "the bot paused in its snapshot")
    audit = world.api.call("GET", f"/api/v1/audit?bot={BOT}&who=api:&limit=1")[1][0]
    assert (audit["who"], audit["command"], audit["result"], audit["nonce"]) == ("api:ops", "pause", "applied",
                                                                                   body["nonce"])
    # lowering a limit is applied; raising it is rejected by the worker: 409 with its reason
    status, body = world.api.call("POST", f"/api/v1/bots/{BOT}/set_limit", {"limit": "max_position_pct", "value": 90})
    assert status == 200 and "lowered to 90.0" in body["message"]
    status, body = world.api.call("POST", f"/api/v1/bots/{BOT}/set_limit", {"limit": "max_position_pct", "value": 95})
    assert status == 409 and body["status"] == "rejected" and "raising limits needs a restart" in body["message"]
    status, body = world.api.call("POST", "/api/v1/emergency_stop", {"reason": "drill"})
    assert status == 200 and body["message"].startswith("EMERGENCY STOP")
    assert world.r.hget(keys.control("global"), "state") == b"PAUSED"
    status, body = world.api.call("POST", "/api/v1/resume_all")
    assert status == 200 and body["status"] == "applied"
    wait_for(lambda: all(s.effective_state.value == "ACTIVE" for s in snapshots(world.r).values()), 5, "all ACTIVE")


def test_an_idempotency_key_applies_a_retry_once(world: World) -> None:
    world.ensure_worker()
    before = world.r.xlen(keys.COMMANDS)
    headers = {"Idempotency-Key": "retry-me-1"}
    first = world.api.call("POST", f"/api/v1/bots/{BOT}/halt", {}, headers=headers)
    second = world.api.call("POST", f"/api/v1/bots/{BOT}/halt", {}, headers=headers)
    assert first[0] == second[0] == 200 and first[1]["nonce"] == second[1]["nonce"]
    assert world.r.xlen(keys.COMMANDS) == before + 1
    assert world.api.call("POST", f"/api/v1/bots/{BOT}/resume")[0] == 200


def test_reads(world: World) -> None:
    world.ensure_worker()
    wait_for(lambda: snapshots(world.r)[BOT].trade_count >= 2, 60, "a few paper trades")
    status, st = world.api.call("GET", "/api/v1/status", token=READ_TOKEN)
    assert status == 200 and st["worker"] == "up" and st["bots"] == 3
    assert st["heartbeat"]["pid"] == world.worker.proc.pid  # type: ignore[union-attr]
    bots = {b["name"]: b for b in world.api.call("GET", "/api/v1/bots", token=READ_TOKEN)[1]}
    snap = snapshots(world.r)[BOT]
    assert set(bots) == {"ghost-mom-btc", "paper-mom-btc", "paper-sma-eth"}
    assert bots[BOT]["starting_balance"] == snap.starting_balance and bots[BOT]["trade_count"] >= 2
    detail = world.api.call("GET", f"/api/v1/bots/{BOT}", token=READ_TOKEN)[1]
    assert detail["risk"]["limits"]["max_position_pct"] == 90.0  # lowered at run time above
    trades = world.api.call("GET", f"/api/v1/bots/{BOT}/trades?limit=5", token=READ_TOKEN)[1]
    assert 2 <= len(trades) <= 5 and trades[0]["exit_time"] >= trades[-1]["exit_time"]
    equity = world.api.call("GET", f"/api/v1/bots/{BOT}/equity?limit=10", token=READ_TOKEN)[1]
    assert len(equity) == 10 and all(e["equity"] > 0 for e in equity)
    assert world.api.call("GET", f"/api/v1/bots/{BOT}/risk", token=READ_TOKEN)[1]["risk"]["limits"]
    assert isinstance(world.api.call("GET", f"/api/v1/bots/{BOT}/denials", token=READ_TOKEN)[1], list)
    assert isinstance(world.api.call("GET", "/api/v1/positions", token=READ_TOKEN)[1], list)
    publish_event(world.r, risk_breach(BOT, "daily_loss", "PAUSED", "daily loss 31 > 30"))
    publish_event(world.r, stale_data("ETHUSDT", 42))
    evs = world.api.call("GET", f"/api/v1/events?bot={BOT}&severity=critical", token=READ_TOKEN)[1]
    # the worker's own events for this bot (its state changes) are critical too: filter, then
    # check the published breach is there and nothing of another bot or severity leaked in
    assert "risk_breach" in [e["kind"] for e in evs] and "stale_data" not in [e["kind"] for e in evs]
    assert all(e["bot"] == BOT and e["severity"] == "critical" for e in evs)
    assert world.api.call("GET", "/api/v1/events?kind=nope", token=READ_TOKEN)[0] == 422
    assert world.api.call("GET", f"/api/v1/bots/{BOT}/trades", token=None)[0] == 401
    assert world.api.call("GET", "/api/v1/bots/nope/trades", token=READ_TOKEN)[0] == 404
    status, hb = world.api.call("GET", "/api/v1/health", token=None)
    assert status == 200 and hb["worker"] == "up" and hb["heartbeat_age_s"] < 5
    assert world.api.call("GET", "/docs", token=None)[0] == 200
    paths = world.api.call("GET", "/openapi.json", token=None)[1]["paths"]
    assert {"/api/v1/bots/{bot}/validate-trade", "/webhook/{bot}", "/api/v1/emergency_stop"} <= set(paths)


def test_validate_trade_is_the_risk_engine_on_the_bots_current_state(world: World) -> None:
    world.ensure_worker()
    path = f"/api/v1/bots/{BOT}/validate-trade"
    status, ok = world.api.call("POST", path, {"side": "BUY", "quote": 50}, token=READ_TOKEN)
    assert status == 200 and ok["allowed"] and ok["rule"] == "ok" and ok["dry_run"]
    equity = snapshots(world.r)[BOT].equity
    status, big = world.api.call("POST", path, {"side": "BUY", "quote": 2 * equity}, token=READ_TOKEN)
    assert not big["allowed"] and big["rule"] == "max_position_pct"
    assert "> 90% of equity" in big["detail"] and big["limits"] == {"max_position_pct": 90.0}
    assert world.api.call("POST", path, {"side": "BUY"}, token=READ_TOKEN)[1]["detail"] == (
        "quantity: give exactly one of quantity and quote")
    # a limit lowered at run time and the effective state are the worker's, as of now
    world.api.call("POST", f"/api/v1/bots/{BOT}/set_limit", {"limit": "min_notional", "value": 500})
    wait_for(lambda: snapshots(world.r)[BOT].risk.limits["min_notional"] == 500, 5, "the new limit in the snapshot")
    small = world.api.call("POST", path, {"side": "BUY", "quote": 100}, token=READ_TOKEN)[1]
    assert small["rule"] == "min_notional" and small["detail"] == "notional 100.00 < 500.00"
    world.api.call("POST", f"/api/v1/bots/{BOT}/pause")
    wait_for(lambda: snapshots(world.r)[BOT].effective_state.value == "PAUSED", 5, "PAUSED in the snapshot")
    paused = world.api.call("POST", path, {"side": "BUY", "quote": 600}, token=READ_TOKEN)[1]
    assert (paused["rule"], paused["detail"]) == ("trading_state", "state PAUSED allows no entries")
    world.api.call("POST", f"/api/v1/bots/{BOT}/resume")
    time.sleep(0.1)
    assert world.api.call("POST", path, {"side": "BUY", "quote": 50}, token=None)[0] == 401
