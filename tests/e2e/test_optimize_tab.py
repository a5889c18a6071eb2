"""The Backtest tab shows a stored hyperopt study (best trials, importance, history) and the ML models
panel, in real Chromium against the real dashboard, worker and Redis; no exception anywhere."""
from __future__ import annotations

import sys

import optuna
import pytest
from playwright.sync_api import Page, expect

from conftest import worker_line
from ops.redis_server import stop
from support import ROOT, RedisServer, fast_config, start_dashboard, start_worker, write_config

sys.path.insert(0, str(ROOT / "tests" / "unit"))
from optimize_support import write_cfg  # noqa: E402


@pytest.fixture
def research_stack(tmp_path, monkeypatch):
    store, models = tmp_path / "store", tmp_path / "models"
    monkeypatch.setenv("BOT_OPTIMIZE_DIR", str(store))
    monkeypatch.setenv("BOT_MODELS_DIR", str(models))
    from cli import optimize

    assert optimize.main(["--config", str(write_cfg(tmp_path / "opt.yaml")), "--bot", "sma", "--bars", "4000",
                          "--space", "fast=3:20", "--space", "slow=10:40", "--trials", "12", "--jobs", "1",
                          "--study", "e2e-study"]) == 0
    (models / "broken" / "v1").mkdir(parents=True)
    (models / "broken" / "v1" / "meta.json").write_text("{oops")
    redis_server = RedisServer(tmp_path / "redis")
    worker = dash = None
    try:
        r = redis_server.client()
        # a slow market: this test needs the worker up, not trading, and the box may be shared
        cfg = write_config(tmp_path / "config.yaml", fast_config(redis_server.url, market={
            "symbols": ["BTCUSDT", "ETHUSDT"], "seed": 11, "speed": 60, "warmup_candles": 60}))
        worker = start_worker(cfg, tmp_path / "worker.log", r)
        dash, url = start_dashboard(cfg, redis_server.url, tmp_path / "dashboard.log", timeout=60)
        yield url, store / "e2e-study.db"
    finally:
        if dash is not None:
            stop(dash)
        if worker is not None:
            worker.stop()
        redis_server.close()


def test_backtest_tab_shows_the_study(page: Page, research_stack):
    url, db = research_stack
    study = optuna.load_study(study_name="e2e-study", storage=f"sqlite:///{db}")
    # open_dashboard also waits for the script to be idle, which a shared 2-core box under load may
    # never show with 0.5 s refreshes; this test needs the page up, so it waits for what it reads
    wait = {"timeout": 60_000}  # nothing here is a speed check
    page.set_viewport_size({"width": 1500, "height": 3000})
    page.goto(url)
    worker_line(page, "Worker up").wait_for(**wait)
    app = page
    app.get_by_role("tab", name="Backtest").click(**wait)
    panel = app.get_by_role("tabpanel", name="Backtest")
    expect(panel.get_by_text("Optimisation studies")).to_be_visible(**wait)
    table = panel.locator(".st-key-opt_best_trials")
    expect(table).to_contain_text("Best trials", **wait)
    best = study.best_trial
    row = table.locator("tbody tr").first
    expect(row).to_contain_text(f"{best.value:.4f}", **wait)
    expect(row.locator("th")).to_have_text(str(best.number), **wait)
    expect(row).to_contain_text(str(best.params["fast"]), **wait)
    expect(panel.locator(".st-key-opt_best_trials tbody tr")).to_have_count(10, **wait)
    expect(panel.get_by_text("Parameter importance")).to_be_visible(**wait)
    expect(panel.get_by_text("Objective history")).to_be_visible(**wait)
    expect(panel.locator(".stPlotlyChart, [data-testid='stPlotlyChart']")).to_have_count(2, **wait)
    # the ML panel lists the broken model with its error instead of failing
    expect(panel.get_by_text("ML models")).to_be_visible(**wait)
    expect(app.get_by_test_id("stException")).to_have_count(0, **wait)
    app.screenshot(path=str(db.parent / "backtest-tab.png"), full_page=True)
