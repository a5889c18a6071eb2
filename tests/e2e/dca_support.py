"""Fixtures for the DCA tab's browser tests: their own redis-server, worker and dashboard, with a
paper DCA bot on the synthetic market (tests/e2e/conftest.py's `stack` has signal bots only)."""
from __future__ import annotations


import pytest
from playwright.sync_api import Locator, Page

from conftest import Stack, expand, open_dashboard, wait_for_app_run
from ops.redis_server import stop
from support import LOOSE_RISK, RedisServer, fast_config, start_dashboard, start_worker, write_config

DCA_BOT = "paper-dca-btc"
# The take profit is far away, so the first deal stays open (with its ladder on the chart).
DCA_SETTINGS = {"base_order": 100, "safety_order": 200, "deviation_pct": 0.5, "step_scale": 1.2,
                "volume_scale": 1.2, "max_safety_orders": 4, "active_safety_orders": 2, "take_profit_pct": 50,
                "cooldown_s": 10_000_000}


@pytest.fixture(scope="module")
def dca_stack(tmp_path_factory):
    """redis-server + worker (one paper DCA bot and one paper signal bot) + dashboard, for one module;
    yields Stack((dashboard url, redis client), worker)."""
    tmp = tmp_path_factory.mktemp("e2e-dca")
    redis_server = RedisServer(tmp / "redis")
    r = redis_server.client()
    worker = dash = None
    bots = [
        {"name": DCA_BOT, "mode": "paper", "kind": "dca", "symbol": "BTCUSDT", "dca": DCA_SETTINGS,
         "risk": LOOSE_RISK},
        {"name": "paper-mom-eth", "mode": "paper", "symbol": "ETHUSDT", "strategy": "momentum",
         "params": {"window": 5, "threshold_pct": 0.05}, "sizing": {"kind": "percent_equity", "value": 20},
         "risk": LOOSE_RISK},
    ]
    cfg = write_config(tmp / "config.yaml", fast_config(redis_server.url, bots=bots, market={
        "symbols": ["BTCUSDT", "ETHUSDT"], "seed": 11, "speed": 600, "warmup_candles": 60}))
    try:
        worker = start_worker(cfg, tmp / "worker.log", r)
        dash, url = start_dashboard(cfg, redis_server.url, tmp / "dashboard.log")
        yield Stack(url, r, worker)
    finally:
        if dash is not None:
            stop(dash)
        if worker is not None:
            worker.stop()
        redis_server.close()


@pytest.fixture
def dca_app(page: Page, dca_stack) -> Page:
    """The dashboard loaded, with the DCA tab open."""
    url, _ = dca_stack
    open_dashboard(page, url, height=2000)
    page.get_by_role("tab", name="DCA").click()
    dca_panel(page).wait_for(timeout=10_000)
    return page


def dca_panel(page: Page) -> Locator:
    return page.get_by_role("tabpanel", name="DCA")


def key(name: str) -> str:
    """The CSS class Streamlit gives an element with key=name (see st-key-… in the frontend)."""
    import re

    return ".st-key-" + re.sub(r"[^a-zA-Z0-9_-]", "-", name.strip())


def open_editor(page: Page) -> Locator:
    """Expand 'Create or edit a DCA bot' (collapsed when DCA bots exist); returns the expander."""
    exp = dca_panel(page).get_by_test_id("stExpander").filter(has_text="Create or edit a DCA bot")
    expand(exp, exp.locator(key("dca_name")))
    return exp


def set_number(page: Page, widget_key: str, value: float | int) -> None:
    """Type into a st.number_input and commit it (Enter), then wait for the rerun to finish."""
    box = page.locator(f"{key(widget_key)} input")
    box.fill(str(value))
    box.press("Enter")
    wait_for_app_run(page)


def set_text(page: Page, widget_key: str, value: str) -> None:
    box = page.locator(f"{key(widget_key)} input")
    box.fill(value)
    box.press("Enter")
    wait_for_app_run(page)
