"""Going live in a real browser, with a users file (the other e2e modules run the dashboard in its
no-users 127.0.0.1 mode): a wrong password is refused and audited, a tampered session cookie is
refused and audited, a viewer sees no kill switches, a live-operator enrols TOTP from the QR page's
secret, approves a live bot through the three steps (a wrong code refused first), resumes it with a
code, and the bot's second entry past the 50 USDT first_trade cap is refused by risk with the stage
named; after three winning live round trips she approves scaling on the page with a fresh code, and the
100 USDT cap then lets a second entry in and refuses a third. (``full`` needs a week of market time in
scaling: tests/unit/test_golive_stages.py and test_golive_attach.py.) Real worker, local exchange, Redis
and dashboard; codes computed here as an authenticator would."""
from __future__ import annotations

import json
import os
import re
import sys
import time

import pyotp
import pytest
from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from auth.totp import step_of
from auth.users import UsersFile
from conftest import button, wait_for_app_run
from ops.redis_server import stop
from state import auth_store, golive_store
from state.commands import new_command, post_command
from state.events import read_audit
from support import ROOT, RedisServer, result_of, snapshots, start_dashboard, start_worker, wait_for, write_config

sys.path.insert(0, str(ROOT / "tests" / "integration"))
from sim_process import SimProcess  # noqa: E402

BOT = "live-gl"
PW = "correct horse battery"
pytestmark = pytest.mark.timeout(420)


@pytest.fixture
def stack(tmp_path):
    redis_server = RedisServer(tmp_path / "redis")
    sim = SimProcess(tmp_path / "exchange.log", "--source", "synthetic", "--symbols", "BTCUSDT", "--seed", "5",
                     "--speed", "30", "--warmup", "60")
    users = UsersFile(tmp_path / "secrets" / "users.json")
    users.add("alice", "live-operator", PW)
    users.add("bob", "operator", PW)
    users.add("vera", "viewer", PW)
    bob_secret = pyotp.random_base32(32)
    users.enrol_totp("bob", bob_secret)
    cfg = write_config(tmp_path / "config.yaml", {
        "redis": {"url": redis_server.url, "embedded": False},
        "market": {"source": "exchange", "symbols": ["BTCUSDT"], "warmup_candles": 30, "speed": 30},
        "exchange": {"venue": "local", "local_url": sim.url, "reconcile_every_s": 2},
        "worker": {"heartbeat_ttl_s": 3, "heartbeat_every_s": 0.3},
        "golive": {"stages": "on", "min_ghost_signals": 0, "min_paper_trades": 0},
        "bots": [{"name": BOT, "mode": "live", "market": "spot", "symbol": "BTCUSDT", "strategy": "webhook",
                  "allocation": 1000, "sizing": {"kind": "fixed_quote", "value": 40},
                  "risk": {"blackout_hours_utc": None, "min_entry_interval_s": 0, "max_position_pct": 50,
                           "max_mode_exposure_value": 1000, "max_position_value": 200}}],
    })
    r = redis_server.client()
    env = {"BOT_USERS_FILE": str(users.path), "BOT_RISK_OVERRIDE": "e2e: limits above the stage caps"}
    worker = dash = None
    old = os.environ.get("BOT_USERS_FILE")
    try:
        worker = start_worker(cfg, tmp_path / "worker.log", r, env)
        os.environ["BOT_USERS_FILE"] = str(users.path)  # start_dashboard passes this process's environment on
        dash, url = start_dashboard(cfg, redis_server.url, tmp_path / "dashboard.log")
        yield url, r, users, sim
    finally:
        if old is None:
            os.environ.pop("BOT_USERS_FILE", None)
        else:
            os.environ["BOT_USERS_FILE"] = old
        if dash is not None:
            stop(dash)
        if worker is not None:
            worker.stop()
        sim.close()
        redis_server.close()


def sign_in(page: Page, url: str, name: str, password: str = PW) -> None:
    page.goto(url)
    wait_for_app_run(page)
    page.get_by_role("textbox", name="User").fill(name)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    wait_for_app_run(page)


def sign_out(page: Page) -> None:
    button(page, "Sign out").click()
    wait_for_app_run(page)


def post(r, cmd: str, user: str, **kw):  # noqa: ANN001, ANN201
    c = new_command(cmd, "bot", BOT, user=user, **kw)
    post_command(r, c)
    return wait_for(lambda: result_of(r, c.nonce), 30, f"the answer to {cmd}")


def buy(r, alert: str):  # noqa: ANN001, ANN201
    price = snapshots(r)[BOT].last_price
    payload = json.dumps({"side": "BUY", "symbol": "BTCUSDT", "alert_time": int(time.time() * 1000),
                          "alert_id": alert, "stop_loss": round(price * 0.97, 2), "take_profit": round(price * 1.2, 2)})
    return post(r, "signal", "pytest", payload=payload)


def sell(r, alert: str):  # noqa: ANN001, ANN201
    payload = json.dumps({"side": "SELL", "symbol": "BTCUSDT", "alert_time": int(time.time() * 1000),
                          "alert_id": alert})
    return post(r, "signal", "pytest", payload=payload)


def held(r) -> float:  # noqa: ANN001
    snap = snapshots(r).get(BOT)
    return snap.position.quantity if snap is not None and snap.position is not None else 0.0


def fresh_code(secret: str, r) -> str:  # noqa: ANN001
    """A code of a step after the last one the worker accepted from alice (a code is accepted once)."""
    last = auth_store.read(r, "alice").last_step or 0
    wait_for(lambda: step_of(time.time()) + 1 > last, 40, "a TOTP step not used yet")
    return pyotp.TOTP(secret).at(time.time() + 30)


def test_sign_in_enrol_and_approve_a_live_bot_through_the_stages(page: Page, stack) -> None:
    url, r, users, sim = stack
    page.set_viewport_size({"width": 1500, "height": 2400})
    wait_for(lambda: (s := snapshots(r).get(BOT)) and s.last_price, 60, "the bot's first price")

    # a wrong password: refused on the page and recorded by the worker
    sign_in(page, url, "alice", PW + "x")
    expect(page.get_by_text("Wrong user name or password.")).to_be_visible()
    wait_for(lambda: any(a.command == "auth" and a.result == "rejected" and "alice" in a.detail
                         for a in read_audit(r, limit=50)), 10, "the failed sign-in in the audit")

    # a tampered session cookie: refused and recorded
    page.context.add_cookies([{"name": "bot_session", "value": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.forged",
                               "url": url}])
    page.goto(url)
    wait_for_app_run(page)
    expect(page.get_by_text("Your session cookie was refused")).to_be_visible()
    wait_for(lambda: any(a.command == "auth" and "session cookie" in a.detail for a in read_audit(r, limit=50)),
             10, "the refused cookie in the audit")
    page.context.clear_cookies()

    # a viewer: the dashboard, but no kill switches anywhere
    sign_in(page, url, "vera")
    expect(page.get_by_text("Signed in as vera (viewer)")).to_be_visible()
    page.get_by_text("Worker up").wait_for(timeout=30_000)
    expect(button(page, "Emergency stop")).to_have_count(0)
    page.get_by_role("tab", name="Live").click()
    expect(page.get_by_text("Go-live stages")).to_be_visible()
    expect(button(page, "Close all positions")).to_have_count(0)
    expect(button(page, "Pause entries")).to_have_count(0)
    sign_out(page)

    # the session survives a reload (the signed cookie), then alice enrols TOTP from the page's secret
    sign_in(page, url, "alice")
    expect(page.get_by_text("Signed in as alice (live-operator)")).to_be_visible()
    wait_for(lambda: any(a.command == "auth" and a.who == "dashboard:alice" and a.result == "applied"
                         for a in read_audit(r, limit=50)), 10, "alice's sign-in in the audit, in her name")
    page.reload()
    wait_for_app_run(page)
    expect(page.get_by_text("Signed in as alice (live-operator)")).to_be_visible()
    button(page, "Show a new QR code").click()
    wait_for_app_run(page)
    text = page.get_by_text("Or type this secret").inner_text()
    secret = re.search(r"([A-Z2-7]{32})", text).group(1)
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    button(page, "Confirm").click()
    wait_for_app_run(page)
    expect(page.get_by_text("Two-factor enrolled")).to_be_visible()
    assert users.get("alice").totp_secret == secret
    expect(page.get_by_text(secret)).to_have_count(0)  # the secret is gone from the page

    # the evidence: a backtest of the bot and the kill switch pressed on it (by bob)
    assert post(r, "backtest", "dashboard:bob", payload=json.dumps({"bot": BOT, "bars": 300})).status == "applied"
    wait_for(lambda: any(m.get("bot") == BOT and m.get("status") == "done"
                         for m in golive_store.backtest_store.list_results(r)), 120, "the backtest")
    assert post(r, "flatten", "dashboard:bob").status == "applied"

    page.get_by_role("tab", name="Live").click()
    panel = page.locator(f".st-key-golive_{BOT}")
    expect(panel).to_contain_text("stage unapproved")

    def step(click: Locator, then: Locator) -> None:
        """Click until ``then`` shows: the panel is a fragment redrawn every few seconds, and a click that
        lands while it is redrawn is lost (a person clicks again; so does this)."""
        for _ in range(4):
            if then.count():
                return
            if click.count():
                click.first.click()
            wait_for_app_run(page)
            try:
                then.first.wait_for(timeout=5_000)
                return
            except PlaywrightTimeout:
                continue
        expect(then.first).to_be_visible()

    def approve(code: str, stage: str = "first_trade", cap: str = "50.00") -> None:
        reviewed = button(panel, "Parameters and limits reviewed")
        ack = panel.get_by_text(f"I accept losing up to {cap}")
        step(button(panel, f"Approve {stage}…"), reviewed)
        step(reviewed, ack)
        ack.click()
        expect(panel.get_by_role("checkbox", name=f"I accept losing up to {cap}")).to_be_checked()
        panel.get_by_label(f"Type the bot's name ({BOT}) to confirm").fill(BOT)
        panel.get_by_label("Step 3 of 3 — TOTP code").fill(code)
        panel.get_by_label("Step 3 of 3 — TOTP code").press("Tab")
        final = button(panel, f"Approve {stage}").last
        expect(final).to_be_enabled()
        final.click()
        wait_for_app_run(page)

    now_code = pyotp.TOTP(secret).now()
    approve("000000" if now_code != "000000" else "111111")
    expect(page.get_by_text(re.compile("rejected: .*TOTP refused: wrong code"))).to_be_visible(timeout=15_000)
    assert golive_store.load(r, BOT).stage.value == "unapproved"
    approve(pyotp.TOTP(secret).now())
    expect(page.get_by_text(re.compile("applied: .*unapproved . first_trade"))).to_be_visible(timeout=15_000)
    expect(panel).to_contain_text("stage first_trade", timeout=10_000)
    assert golive_store.load(r, BOT).approved_by == "dashboard:alice"

    # resuming the live bot is a live action: the confirmation asks for the risk acknowledged and a code
    page.locator(f".st-key-live_resume_{BOT} button").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("This is a live action")).to_be_visible()
    expect(button(dialog, "Yes, resume")).to_be_disabled()
    dialog.get_by_text("I have reviewed the bot's parameters").click()
    dialog.get_by_label("Step 3 — TOTP code from your authenticator").fill(pyotp.TOTP(secret).at(time.time() + 30))
    dialog.get_by_label("Step 3 — TOTP code from your authenticator").press("Tab")
    button(dialog, "Yes, resume").click()
    expect(page.get_by_text(re.compile("Resume live-gl.* applied"))).to_be_visible(timeout=15_000)

    # first_trade: 40 fits the 50 cap; a second 40 is refused by risk, the stage named on the Live tab
    assert "denied" not in buy(r, "b1").message
    res = buy(r, "b2")
    assert "stage first_trade" in res.message and "stage cap 50.00" in res.message, res
    expect(page.get_by_text(re.compile("golive_stage: stage first_trade"))).to_be_visible(timeout=15_000)

    # three winning live round trips (the venue's price moved up before each exit) open scaling, which
    # alice approves on the page with a fresh code; its 100 cap then lets the second 40 in
    for i in range(3):
        if held(r) == 0:
            assert "denied" not in buy(r, f"rt{i}").message
        wait_for(lambda: held(r) > 0, 20, f"round trip {i}: the entry")
        sim.set_price("BTCUSDT", f"{snapshots(r)[BOT].position.avg_entry * 1.03:.2f}")  # 3 % over the entry
        assert sell(r, f"rt{i}-exit").status == "applied"
        wait_for(lambda: held(r) == 0, 20, f"round trip {i}: the exit")
    wait_for(lambda: snapshots(r)[BOT].wins >= 3, 20, "three winning round trips booked")
    expect(panel).to_contain_text("3 winning of 3", timeout=15_000)
    approve(fresh_code(secret, r), "scaling", "100.00")
    expect(page.get_by_text(re.compile("applied: .*first_trade . scaling"))).to_be_visible(timeout=15_000)
    expect(panel).to_contain_text("stage scaling", timeout=10_000)
    assert golive_store.load(r, BOT).cap == 100
    assert "denied" not in buy(r, "c1").message
    wait_for(lambda: held(r) > 0, 20, "the first entry at scaling")
    assert "denied" not in buy(r, "c2").message  # 80 of 100: fits now
    res = buy(r, "c3")  # 120: past the scaling cap, refused with the stage named
    assert "stage scaling" in res.message and "stage cap 100.00" in res.message, res
