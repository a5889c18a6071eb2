"""The real worker with an ``ml_classifier`` bot: a corrupt model file refuses that bot (it never trades,
the log names the file) while the worker and its other bots keep running; a good model trades."""
from __future__ import annotations

import sys

from support import ROOT, fast_config, heartbeat, snapshots, start_worker, wait_for, write_config

sys.path.insert(0, str(ROOT / "tests" / "unit"))
from bench_support import candles  # noqa: E402
from optimize_support import LOOSE  # noqa: E402

from backtest.fills import FillModel  # noqa: E402
from backtest.ml.train import TrainSpec, train  # noqa: E402
from settings import AppConfig  # noqa: E402


def test_corrupt_model_refuses_the_bot_not_the_worker(tmp_path, redis_server, r, monkeypatch):
    models = tmp_path / "models"
    monkeypatch.setenv("BOT_MODELS_DIR", str(models))
    app = AppConfig(market={"symbols": ["BTCUSDT"]}, bots=[])
    train(TrainSpec("good", horizon=5, threshold=0.51, folds=2), candles(3000, "1m", seed=8), app, FillModel())
    train(TrainSpec("bad", horizon=5, threshold=0.51, folds=2), candles(3000, "1m", seed=8), app, FillModel())
    bad_file = models / "bad" / "v1" / "model.txt"
    bad_file.write_bytes(b"\x00\x01 garbage")
    ml = {"mode": "paper", "symbol": "BTCUSDT", "strategy": "ml_classifier", "risk": LOOSE,
          "sizing": {"kind": "percent_equity", "value": 20}}
    cfg = fast_config(redis_server.url)
    cfg["bots"] += [{"name": "ml-bad", **ml, "params": {"model": "bad", "threshold": 0.51}},
                    {"name": "ml-good", **ml, "params": {"model": "good", "threshold": 0.51}}]
    path = write_config(tmp_path / "config.yaml", cfg)
    log = tmp_path / "worker.log"
    worker = start_worker(path, log, r, env={"BOT_MODELS_DIR": str(models)})
    try:
        wait_for(lambda: sum(s.trade_count for n, s in snapshots(r).items() if n == "ml-good") >= 1
                 and sum(s.trade_count for n, s in snapshots(r).items() if n == "paper-sma-eth") >= 1, 90,
                 "trades by the good model's bot and another bot")
        first = heartbeat(r).time
        wait_for(lambda: heartbeat(r).time > first, 10, "a newer heartbeat")
        assert worker.proc.poll() is None
        snap = snapshots(r)["ml-bad"]
        assert snap.trade_count == 0 and snap.position is None
        text = log.read_text()
        assert f"corrupt model file {bad_file}" in text and "ml_classifier refused" in text
    finally:
        worker.stop()
