"""The go-live protocol in a real worker, on the real local exchange, with real Redis: a live bot under
the protocol (``golive.stages: on``) places nothing while unapproved (refused by its risk engine, rule
``golive_stage``); approving it needs a live-operator's fresh TOTP code (a viewer's or operator's
command, a wrong code, a replayed code are refused and audited; five failures lock the user), the
typed confirmation, the acknowledged maximum loss and the evidence (a backtest, a kill switch tested);
at ``first_trade`` a 40 USDT entry is placed and a second one past the 50 USDT cap is refused with the
stage named. Codes are computed here from the secrets, as an authenticator would."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pyotp
import pytest
import redis

from auth.users import UsersFile
from sim_process import SimProcess
from state import auth_store, golive_store, keys
from state.commands import new_command, post_command
from state.events import read_audit, read_events
from support import result_of, snapshots, start_worker, wait_for, write_config

pytestmark = pytest.mark.timeout(240)
BOT = "live-stage"
PW = "correct horse battery"


@pytest.fixture
def venue(tmp_path: Path):
    sim = SimProcess(tmp_path / "exchange.log", "--source", "synthetic", "--symbols", "BTCUSDT", "--seed", "5",
                     "--speed", "30", "--warmup", "60")
    yield sim
    sim.close()


def users(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    f = UsersFile(tmp_path / "secrets" / "users.json")
    secrets = {}
    for name, role in (("alice", "live-operator"), ("carol", "live-operator"), ("bob", "operator"),
                       ("vera", "viewer")):
        f.add(name, role, PW)
        secrets[name] = pyotp.random_base32(32)
        f.enrol_totp(name, secrets[name])
    return f.path, secrets


def config(tmp_path: Path, redis_url: str, venue_url: str) -> Path:
    return write_config(tmp_path / "config.yaml", {
        "redis": {"url": redis_url, "embedded": False},
        "market": {"source": "exchange", "symbols": ["BTCUSDT"], "warmup_candles": 30, "speed": 30},
        "exchange": {"venue": "local", "local_url": venue_url, "reconcile_every_s": 1},
        "worker": {"heartbeat_ttl_s": 3, "heartbeat_every_s": 0.3},
        "golive": {"stages": "on", "min_ghost_signals": 0, "min_paper_trades": 0},
        "bots": [{"name": BOT, "mode": "live", "market": "spot", "symbol": "BTCUSDT", "strategy": "webhook",
                  "allocation": 1000, "sizing": {"kind": "fixed_quote", "value": 40},
                  "risk": {"blackout_hours_utc": None, "min_entry_interval_s": 0, "max_position_pct": 50,
                           "max_mode_exposure_value": 1000, "max_position_value": 200}}],
    })


def send(r: redis.Redis, cmd: str, user: str, *, value: str = "", payload: str = "", otp: str = "",
         scope: str = "bot", target: str = BOT, reason: str = "", limit: str = ""):
    c = new_command(cmd, scope, target, user=user, value=value, payload=payload, otp=otp, reason=reason,  # type: ignore[arg-type]
                    limit=limit)
    post_command(r, c)
    return wait_for(lambda: result_of(r, c.nonce), 30, f"the worker's answer to {cmd}")


def buy(r: redis.Redis, alert: str):
    price = snapshots(r)[BOT].last_price  # a stop 3 % below: the worst case stays under the loss-per-trade limit
    payload = json.dumps({"side": "BUY", "symbol": "BTCUSDT", "alert_time": int(time.time() * 1000),
                          "alert_id": alert, "stop_loss": round(price * 0.97, 2), "take_profit": round(price * 1.2, 2)})
    return send(r, "signal", "pytest", payload=payload)


def code(secret: str, ahead_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * ahead_steps)


def held(r: redis.Redis) -> float:
    snap = snapshots(r).get(BOT)
    return snap.position.quantity if snap is not None and snap.position is not None else 0.0


def test_a_live_bot_goes_through_the_stages_only_with_evidence_and_fresh_codes(r, venue, redis_server, tmp_path):
    users_file, secret = users(tmp_path)
    w = start_worker(config(tmp_path, redis_server.url, venue.url), tmp_path / "w.log", r,
                     {"BOT_USERS_FILE": str(users_file), "BOT_AUTH_LOCK_S": "600",
                      "BOT_RISK_OVERRIDE": "go-live test: limits above the stage caps, so the stage binds"})
    try:
        wait_for(lambda: (s := snapshots(r).get(BOT)) and s.last_price, 30, "the bot's first price")
        rec = golive_store.load(r, BOT)
        assert rec is not None and rec.stage.value == "unapproved" and rec.enforced

        # unapproved: the risk engine refuses the entry, naming the stage; nothing reaches the venue
        res = buy(r, "a1")
        assert "entry denied: stage unapproved" in res.message, res
        wait_for(lambda: any("golive_stage" in e.title for e in read_events(r, bot=BOT, kinds=["order_refused"])),
                 10, "the refusal event naming the rule")
        assert held(r) == 0.0

        ask = json.dumps({"confirm": BOT, "max_loss": 50})
        # a viewer sends nothing; an operator cannot approve; a wrong code is refused and counted
        res = send(r, "golive", "dashboard:vera", value="first_trade", payload=ask, otp=code(secret["vera"]))
        assert res.status == "rejected" and "viewers send no commands" in res.message, res
        res = send(r, "golive", "dashboard:bob", value="first_trade", payload=ask, otp=code(secret["bob"]))
        assert res.status == "rejected" and "bob is a operator" in res.message, res
        wrong = "000000" if code(secret["alice"]) != "000000" else "111111"
        res = send(r, "golive", "dashboard:alice", value="first_trade", payload=ask, otp=wrong)
        assert res.status == "rejected" and "TOTP refused: wrong code (1 of 5" in res.message, res
        assert auth_store.read(r, "alice").failures == 1
        # a self-declared name that is no user is refused
        res = send(r, "golive", "dashboard:mallory", value="first_trade", payload=ask, otp=code(secret["alice"]))
        assert res.status == "rejected" and "not a dashboard user" in res.message, res

        # a right code, but no evidence yet: refused, naming what is missing; nothing moved
        res = send(r, "golive", "dashboard:alice", value="first_trade", payload=ask, otp=code(secret["alice"]))
        assert res.status == "rejected" and "backtest report" in res.message and "kill switch tested" in res.message
        assert golive_store.load(r, BOT).stage.value == "unapproved"

        # the evidence: a backtest of these exact parameters, and the kill switch pressed on this bot
        bt = send(r, "backtest", "dashboard:bob", payload=json.dumps({"bot": BOT, "bars": 300}))
        assert bt.status == "applied", bt
        wait_for(lambda: any(m.get("bot") == BOT and m.get("status") == "done"
                             for m in golive_store.backtest_store.list_results(r)), 120, "the backtest")
        assert send(r, "flatten", "dashboard:bob").status == "applied"

        # the typed confirmation and the maximum loss must be right
        bad = json.dumps({"confirm": "live", "max_loss": 50})
        res = send(r, "golive", "dashboard:alice", value="first_trade", payload=bad, otp=code(secret["alice"]))
        assert res.status == "rejected" and "payload.confirm" in res.message, res
        bad = json.dumps({"confirm": BOT, "max_loss": 10})
        res = send(r, "golive", "dashboard:alice", value="first_trade", payload=bad, otp=code(secret["alice"]))
        assert res.status == "rejected" and "payload.max_loss" in res.message and "50.00" in res.message, res

        used = code(secret["alice"])
        res = send(r, "golive", "dashboard:alice", value="first_trade", payload=ask, otp=used)
        assert res.status == "applied" and "unapproved -> first_trade" in res.message, res
        rec = golive_store.load(r, BOT)
        assert rec.stage.value == "first_trade" and rec.approved_by == "dashboard:alice" and rec.cap == 50
        assert "backtest" in rec.history[-1].evidence and "kill switch tested" in rec.history[-1].evidence
        assert auth_store.read(r, "alice").failures == 0

        # the flatten left it paused: resuming a live bot is a live action too; a replayed code is refused
        res = send(r, "resume", "dashboard:alice", otp=used)
        assert res.status == "rejected" and "already used" in res.message, res
        res = send(r, "resume", "dashboard:bob")
        assert res.status == "rejected" and "live action" in res.message, res
        res = send(r, "resume", "dashboard:alice", otp=code(secret["alice"], ahead_steps=1))
        assert res.status == "applied", res

        # first_trade: 40 USDT fits under the 50 cap; a second 40 would make 80: refused, the stage named
        res = buy(r, "b1")
        assert "denied" not in res.message, res
        wait_for(lambda: held(r) > 0, 20, "the first live position")
        res = buy(r, "b2")
        assert "denied: stage first_trade" in res.message and "stage cap 50.00" in res.message, res

        # a loss-limit breach drops the bot back one stage (lowering a limit needs no code)
        assert send(r, "set_limit", "dashboard:bob", limit="daily_loss_value", value="0.0001").status == "applied"
        wait_for(lambda: golive_store.load(r, BOT).stage.value == "unapproved", 30, "the drop back a stage")
        back = golive_store.load(r, BOT).history[-1]
        assert back.who == "golive" and back.from_stage == "first_trade" and "daily_loss breached" in back.reason
        assert any(a.who == "golive" and "first_trade -> unapproved" in a.detail for a in read_audit(r, bot=BOT))

        # five failures in a row lock the user: then even a right code is refused
        for i in range(5):
            res = send(r, "golive", "dashboard:carol", value="scaling", otp="12345" + str(i % 10))
            assert res.status == "rejected"
        assert "locked until" in res.message, res
        res = send(r, "golive", "dashboard:carol", value="scaling", otp=code(secret["carol"], ahead_steps=1))
        assert res.status == "rejected" and "locked" in res.message, res

        # every refusal is in the audit, with the real user; no code or secret is anywhere in Redis
        audit = read_audit(r, bot=BOT, limit=200)
        refused = [a for a in audit if a.command == "golive" and a.result == "rejected"]
        assert {a.who for a in refused} >= {"dashboard:vera", "dashboard:bob", "dashboard:alice", "dashboard:carol"}
        # the codes themselves, used or refused, left the command stream with their answer
        assert r.xlen(keys.COMMANDS) > 0 and not [f for _, f in r.xrange(keys.COMMANDS) if b"otp" in f]
        dump = b"".join(r.dump(k) or b"" for k in r.scan_iter(count=1000))
        for s in secret.values():
            assert s.encode() not in dump
        assert PW.encode() not in dump
    finally:
        w.stop()
    assert "Traceback" not in w.log(), w.log()[-3000:]
