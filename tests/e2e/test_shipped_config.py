"""`make run` with the shipped config.yaml, in a real browser: every tab renders without an exception
(watched across refreshes), every configured bot has its kill switches, and when the worker dies the
launcher keeps Redis, the exchange and the dashboard up, the page says "Worker down since …" within
the heartbeat TTL, and the worker comes back by itself.

Only the ports and the data directory differ from a user's `make run` (so the test cannot collide
with one): the launcher reads them from the environment, as the README says."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from playwright.sync_api import Page, expect

from conftest import wait_for_app_run, worker_line
from ops.redis_acl import url_for
from ops.redis_server import free_port, stop
from support import ROOT, heartbeat, wait_for
from state.connection import connect

TABS = ["Paper", "Ghost", "Live", "DCA", "Backtest", "Reports", "Audit"]


def shipped_bots() -> list[str]:
    return [b["name"] for b in yaml.safe_load((ROOT / "config.yaml").read_text())["bots"] if b.get("enabled", True)]


@pytest.fixture(scope="module")
def launched(tmp_path_factory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("shipped")
    redis_port, exchange_port, dash_port = free_port(), free_port(), free_port()
    env = {**os.environ, "BOT_VAR": str(tmp / "var"), "BOT_REDIS__URL": f"redis://127.0.0.1:{redis_port}/0",
           "BOT_REDIS__DATA_DIR": str(tmp / "var" / "redis"), "BOT_EXCHANGE__LOCAL_PORT": str(exchange_port),
           "BOT_DASHBOARD__PORT": str(dash_port), "PYTHONUNBUFFERED": "1",
           # make run's secrets (its Redis users' passwords) in the test's folder; no users file: no login
           "BOT_SECRETS_DIR": str(tmp / "secrets")}
    env.pop("BOT_CONFIG", None)  # the shipped config.yaml
    env.pop("BOT_USERS_FILE", None)
    proc = subprocess.Popen([sys.executable, "-m", "ops.launcher"], cwd=ROOT, env=env,
                            stdout=open(tmp / "launcher.out", "ab"), stderr=subprocess.STDOUT)
    # Redis is locked down (ops.redis_acl): read it as the dashboard does, with its user
    wait_for(lambda: (tmp / "secrets" / "redis-users.json").exists(), 60, "make run's Redis passwords")
    pw = json.loads((tmp / "secrets" / "redis-users.json").read_text())["dashboard"]
    r = connect(url_for(env["BOT_REDIS__URL"], "dashboard", pw))
    try:
        wait_for(lambda: _up(r), 120, "the launched worker's heartbeat", every=0.5)
        yield f"http://127.0.0.1:{dash_port}", r, tmp / "var"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            stop(proc)


def _up(r) -> bool:  # type: ignore[no-untyped-def]
    try:
        return heartbeat(r) is not None
    except Exception:  # noqa: BLE001 - Redis not up yet
        return False


def no_exception(page: Page) -> None:
    errors = page.locator("[data-testid='stException']")
    assert errors.count() == 0, errors.first.inner_text()[:2000]


def test_every_tab_renders_without_an_exception_and_every_bot_has_its_kill_switches(page: Page, launched) -> None:
    url, r, _ = launched
    page.set_viewport_size({"width": 1440, "height": 2400})
    page.goto(url)
    wait_for_app_run(page)
    worker_line(page, "Worker up").wait_for(timeout=60_000)
    with_switches: set[str] = set()
    for _ in range(2):  # twice round the tabs: the panels refresh in between
        for tab in TABS:
            page.get_by_role("tab", name=tab).click()
            wait_for_app_run(page)
            page.wait_for_timeout(2_500)  # at least one refresh of the tab's panels
            no_exception(page)
            if tab == "Backtest":  # only the open tab runs
                expect(page.get_by_role("button", name="Run backtest")).to_have_count(1)
            for bot in shipped_bots():
                box = page.locator(f"[class*='st-key-'][class*='_controls_{bot}']").filter(
                    has=page.get_by_role("button", name="Close all positions"))
                if box.count() and box.first.is_visible():
                    for label in ("Pause entries", "Close all positions", "Resume"):
                        expect(box.first.get_by_role("button", name=label)).to_be_visible()
                    with_switches.add(bot)
    assert with_switches == set(shipped_bots()), f"no kill switches for {set(shipped_bots()) - with_switches}"


def test_a_dead_worker_is_shown_and_restarted_while_the_rest_stays_up(page: Page, launched) -> None:
    url, r, var = launched
    page.set_viewport_size({"width": 1440, "height": 1200})
    page.goto(url)
    worker_line(page, "Worker up").wait_for(timeout=60_000)
    hb = heartbeat(r)
    assert hb is not None
    # A hung worker first (alive, silent): only the heartbeat tells; the launcher cannot see it.
    os.kill(hb.pid, signal.SIGSTOP)
    stopped = time.monotonic()
    expect(worker_line(page, "Worker down since")).to_be_visible(timeout=15_000)
    # the heartbeat TTL (5 s in the shipped config) plus a refresh of the health panel: ~6 s on an idle
    # machine; the slack is for a loaded one (the page itself says since when, from the last heartbeat)
    assert time.monotonic() - stopped < 5 + 10
    no_exception(page)
    # Then dead: the launcher restarts it; Redis, the exchange and the dashboard stayed up throughout.
    os.kill(hb.pid, signal.SIGKILL)
    wait_for(lambda: (h := heartbeat(r)) is not None and h.pid != hb.pid, 60, "a restarted worker")
    expect(worker_line(page, "Worker up")).to_be_visible(timeout=15_000)
    expect(page.get_by_text("restarted")).to_be_visible(timeout=15_000)
    no_exception(page)
    log = (var / "log" / "launcher.log").read_text()
    assert "worker exited" in log and "restarting worker" in log, log
