"""E2E fixtures: real redis-server, the worker and the Streamlit dashboard as subprocesses, driven
by Playwright in Debian's Chromium (launched through executable_path; no browser download)."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from ops.redis_server import stop
from support import RedisServer, WorkerProcess, fast_config, start_dashboard, start_worker, write_config

# A dialog or a rerun can take seconds on a loaded 2-core machine (CI runs the whole suite there): the
# default wait for a page expectation is 10 s, not Playwright's 5. Checks with their own bound keep it.
expect.set_options(timeout=10_000)


def chromium_path() -> str | None:
    for cand in (os.environ.get("BOT_CHROMIUM"), "/usr/lib/chromium/chromium", shutil.which("chromium"),
                 shutil.which("chromium-browser")):
        if cand and Path(cand).exists():
            return cand
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if chromium_path() is None:
        skip = pytest.mark.skip(reason="no Chromium found (apt-get install chromium, or set BOT_CHROMIUM)")
        for item in items:
            if "e2e" in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": chromium_path(),
            "args": ["--no-sandbox", "--disable-gpu", "--disable-sync", "--disable-dev-shm-usage"]}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Its own redis-server, worker and dashboard on a fast market, for this module only (so no
    worker outlives it and writes into other tests' Redis); yields (dashboard url, redis client)."""
    tmp = tmp_path_factory.mktemp("e2e")
    redis_server = RedisServer(tmp / "redis")
    worker = dash = None
    try:
        r = redis_server.client()
        cfg = write_config(tmp / "config.yaml", fast_config(redis_server.url, market={
            "symbols": ["BTCUSDT", "ETHUSDT"], "seed": 11, "speed": 600, "warmup_candles": 60}))
        worker = start_worker(cfg, tmp / "worker.log", r)
        dash, url = start_dashboard(cfg, redis_server.url, tmp / "dashboard.log", timeout=60)
        yield Stack(url, r, worker)
    finally:
        if dash is not None:
            stop(dash)
        if worker is not None:
            worker.stop()
        redis_server.close()


class Stack(tuple):
    """(url, redis client) plus the worker process, for the test that kills it."""

    def __new__(cls, url: str, r, worker: WorkerProcess):  # noqa: ANN001, ANN204
        obj = super().__new__(cls, (url, r))
        obj.worker = worker
        return obj


def wait_for_app_run(page: Page) -> None:
    page.wait_for_timeout(250)
    page.locator("[data-testid='stApp'][data-test-connection-state='CONNECTED']").wait_for(state="attached",
                                                                                            timeout=30_000)
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(state="attached",
                                                                                         timeout=30_000)


def expand(expander: Locator, content: Locator, tries: int = 5) -> None:
    """Open the st.expander ``expander`` until ``content`` in it shows. A click that lands while the page
    redraws (its panels refresh every second or few) is lost, and a collapsed expander's content is inert
    (no role locator finds it): the summary is clicked again while the expander is still closed."""
    details = expander.locator("details")
    for attempt in range(tries):
        if details.get_attribute("open") is None:
            expander.locator("summary").click()
        try:
            content.wait_for(state="visible", timeout=5_000)
            return
        except PlaywrightTimeoutError:
            if attempt == tries - 1:
                raise


def open_dashboard(page: Page, url: str, height: int = 1800) -> Page:
    """Load the dashboard at ``url`` and wait until its first run is done and it sees the worker."""
    page.set_viewport_size({"width": 1500, "height": height})
    page.goto(url)
    page.wait_for_selector("[data-testid='stAppViewContainer']", state="attached", timeout=30_000)
    wait_for_app_run(page)
    worker_line(page, "Worker up").wait_for(timeout=30_000)
    return page


def worker_line(page: Page, text: str) -> Locator:
    """``text`` in the worker's health line at the top of the page (not, say, the Audit tab's notifier
    line, which says "worker up" too)."""
    return page.locator(".st-key-health").get_by_text(text)


@pytest.fixture
def app(page: Page, stack) -> Page:
    url, _ = stack
    return open_dashboard(page, url)


def button(scope: Page | Locator, label: str) -> Locator:
    return scope.get_by_test_id("stButton").filter(has_text=label).locator("button")


def metric_value(scope: Page | Locator, label: str) -> Locator:
    return scope.get_by_test_id("stMetric").filter(has_text=label).get_by_test_id("stMetricValue")


def wait_until(cond, timeout: float = 30.0):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("condition not met")
