"""The research panel (ui/optimize.py) with Streamlit's AppTest on real Redis: a walk-forward study's
windows and warning, a model's metrics, its live hit rate and drift on the worker's candles in Redis,
and a broken study file shown as an error, never an exception."""
from __future__ import annotations

import sys

import pytest

from support import ROOT

sys.path.insert(0, str(ROOT / "tests" / "unit"))
from bench_support import candles  # noqa: E402
from optimize_support import sma_bot, write_cfg  # noqa: E402

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest


def _panel() -> None:
    from ui.optimize import render

    render()


def test_panel_shows_walk_forward_models_and_monitoring(tmp_path, redis_server, monkeypatch):
    from backtest.fills import FillModel
    from backtest.ml.train import TrainSpec, train
    from cli import optimize
    from settings import AppConfig
    from state.writer import StateWriter

    store, models = tmp_path / "store", tmp_path / "models"
    for k, v in {"BOT_OPTIMIZE_DIR": store, "BOT_MODELS_DIR": models, "BOT_REDIS__URL": redis_server.url}.items():
        monkeypatch.setenv(k, str(v))
    cfg = write_cfg(tmp_path / "c.yaml", [sma_bot()], interval="1h")
    assert optimize.main(["--config", str(cfg), "--bot", "sma", "--bars", "2400", "--trials", "5", "--jobs", "1",
                          "--space", "fast=3:12", "--walk-forward", "2", "--study", "wf"]) == 0
    (store / "junk.db").write_bytes(b"not a database")
    data = candles(4000, "1m", seed=3)
    train(TrainSpec("m", horizon=5, threshold=0.52, folds=2), data, AppConfig(market={"symbols": ["BTCUSDT"]}),
          FillModel())
    r = redis_server.client()
    r.flushdb()
    StateWriter(r).commit([], data.candles()[-600:])

    at = AppTest.from_function(_panel, default_timeout=60).run()
    assert not at.exception, at.exception
    text = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "Walk-forward" in text and "Out of sample, concatenated" in text
    assert "Best trials" in text
    labels = [m.label for m in at.metric]
    assert {"Live hit rate", "Training precision", "Worst drift (PSI)"} <= set(labels)
    # the broken file, picked, is an error line
    box = at.selectbox(key="opt_study")
    junk = [i for i, o in enumerate(box.options) if "junk" in o]
    assert not junk  # not a study file: not offered at all
    (store / "wf.db").write_bytes(b"\x00" * 100)  # the study's own file corrupted under the dashboard
    at = AppTest.from_function(_panel, default_timeout=60).run()
    assert not at.exception, at.exception
