"""The ML signal pipeline: causal features, purged splits, a trained versioned artefact traded by
``ml_classifier`` through the backtester, monitoring, and clear errors for a bad model file."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from backtest.engine import detect_lookahead, run_config
from backtest.fills import FillModel
from backtest.ml.dataset import labels, purged_splits
from backtest.ml.monitor import PSI_WARN, monitor_model, psi
from backtest.ml.train import TrainSpec, train
from bench_support import candles
from optimize_support import LOOSE
from settings import AppConfig
from backtest.ml.artifact import read_model
from strategy.ml_classifier import MlClassifierParams, MlClassifierStrategy, ModelUnavailable
from strategy.ml_features import FEATURES, LOOKBACK, feature_matrix
from strategy.registry import build_strategy

SHARED = Path("/work/shared/data/market/spot/binance_spot_2024-01_2026-03/BTCUSDT_1h.csv")


@pytest.fixture
def models(tmp_path, monkeypatch):
    d = tmp_path / "models"
    monkeypatch.setenv("BOT_MODELS_DIR", str(d))
    return d


def _features(d):
    return np.nan_to_num(feature_matrix(d.opens, d.highs, d.lows, d.closes, d.volumes, d.times), nan=-9e9)


def test_features_have_no_lookahead_and_the_detector_sees_one():
    d = candles(3000, "5m", seed=1)
    cuts = [200, 777, 1500, 2999]
    assert detect_lookahead(_features, d, cuts) == []
    leaky = lambda s: np.roll(_features(s), -1, axis=0)  # noqa: E731 - row i reads candle i + 1
    assert detect_lookahead(leaky, d, cuts) == cuts
    x = feature_matrix(d.opens, d.highs, d.lows, d.closes, d.volumes, d.times)
    assert x.shape == (3000, len(FEATURES))
    assert np.isnan(x[LOOKBACK - 2]).any() and not np.isnan(x[LOOKBACK - 1:]).any()


def test_labels_beyond_fees_and_purged_embargoed_splits():
    c = np.array([100.0, 100.1, 100.5, 100.0, 99.0])
    assert labels(c, 2, 0.1).tolist()[:3] == [1.0, 0.0, 0.0] and np.isnan(labels(c, 2, 0.1)[3:]).all()
    index = np.arange(121, 121 + 5000)
    for sp in purged_splits(index, 4, horizon=12, embargo=5):
        first_test = index[sp.test[0]]
        assert (index[sp.train] + 12 + 5 < first_test).all()  # no training label reaches the test block
        assert len(sp.train) and sp.train.max() < sp.test.min()
    with pytest.raises(ValueError, match="use fewer --folds or more data"):
        purged_splits(np.arange(600), 4, 12, 12)


def _app(**bot: object) -> AppConfig:
    return AppConfig(market={"symbols": ["BTCUSDT"]}, paper={"starting_balance": 10_000, "fee_pct": 0.1},
                     bots=[{"name": "ml", "mode": "paper", "symbol": "BTCUSDT", "strategy": "ml_classifier",
                            "params": {"model": "m", "threshold": 0.55}, "risk": LOOSE,
                            "sizing": {"kind": "percent_equity", "value": 50, "scale_by_confidence": True}, **bot}])


def test_train_saves_versions_and_the_strategy_trades_them(models):
    data = candles(6000, "15m", seed=5)
    app = _app()
    folder, meta = train(TrainSpec("m", horizon=8, threshold=0.55, folds=3), data, app, FillModel())
    assert folder == models / "m" / "v1" and (folder / "model.txt").is_file()
    stored = json.loads((folder / "meta.json").read_text())
    assert stored == json.loads(json.dumps(meta, default=str))
    assert stored["features"] == FEATURES and stored["data"]["bars"] == 6000 and len(stored["data"]["sha256"]) == 64
    for k in ("auc", "accuracy", "precision_at_threshold", "signals_at_threshold", "base_rate"):
        assert k in stored["metrics"]
    bt = stored["backtest"]
    assert bt["bars"] > 0 and bt["warmup_candles"] == LOOKBACK - 1 and bt["start"] < stored["holdout_range"][0]
    # a second run is v2; v1 stays
    folder2, _ = train(TrainSpec("m", horizon=8, threshold=0.55, folds=3), data, app, FillModel())
    assert folder2.name == "v2" and folder.is_dir()
    # evaluate() on closed prefixes == the whole-series form the monitor uses
    strat = build_strategy("ml_classifier", {"model": "m", "threshold": 0.55})
    assert isinstance(strat, MlClassifierStrategy) and strat.model.version == 2 and not strat.unavailable
    sides, conf, p = strat.signals_at(data.opens, data.highs, data.lows, data.closes, data.volumes, data.times)
    cs = data.candles()
    for i in list(range(LOOKBACK - 3, LOOKBACK + 40)) + list(range(3000, 3100)):
        sig = strat.evaluate(tuple(cs[max(0, i + 1 - 200): i + 1]))
        code = {"BUY": 1, "SELL": -1, "NONE": 0}[sig.side.value]
        assert code == sides[i], i
        assert sig.confidence == pytest.approx(conf[i] if code else 0.0)
    # the bot trades its probability through the normal backtester, sized by confidence
    res = run_config(app, {"BTCUSDT": data}, FillModel(), ["ml"])[0]
    assert res.path == "bar" and len(res.trades) > 0
    assert {s[1].value for s in res.signals} <= {"BUY", "SELL"}


def test_monitor_hit_rate_and_drift(models):
    data = candles(5000, "15m", seed=9)
    train(TrainSpec("m", horizon=8, threshold=0.55, folds=3), data, _app(), FillModel())
    same = monitor_model("m", None, data)
    strat = build_strategy("ml_classifier", {"model": "m", "threshold": 0.55})
    _, _, p = strat.signals_at(data.opens, data.highs, data.lows, data.closes, data.volumes, data.times)
    y = labels(data.closes, 8, 0.1)
    at = ~np.isnan(y) & (p >= 0.55)
    assert same.signals == int(at.sum()) and same.hit_rate == pytest.approx(float(y[at].mean()))
    assert max(same.psi.values()) < PSI_WARN
    # a calmer market: the volatility features move out of their training range
    calm = candles(5000, "15m", seed=9)
    calm.closes[:] = 100.0 * np.exp(np.cumsum(np.random.default_rng(2).normal(0, 0.0002, 5000)))
    calm.opens[:] = np.concatenate(([100.0], calm.closes[:-1]))
    calm.highs[:] = np.maximum(calm.opens, calm.closes) * 1.0001
    calm.lows[:] = np.minimum(calm.opens, calm.closes) * 0.9999
    drift = monitor_model("m", None, calm)
    assert drift.psi["vol_30"] > PSI_WARN and any("vol_30 drifted" in w for w in drift.warnings)
    assert psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0


def test_missing_and_corrupt_model_files_name_the_file(models):
    with pytest.raises(ModelUnavailable, match=f"no versions in {models / 'nope'}"):
        read_model("nope")
    data = candles(5000, "15m", seed=4)
    folder, _ = train(TrainSpec("m", horizon=8, threshold=0.55, folds=3), data, _app(), FillModel())
    with pytest.raises(ModelUnavailable, match="missing file .*v7"):
        read_model("m", 7)
    (folder / "model.txt").write_text("tree\nnot a model at all\n")
    with pytest.raises(ModelUnavailable, match=f"corrupt model file {folder / 'model.txt'}"):
        read_model("m", 1)
    # the strategy is built unavailable, never signals, and says why
    strat = MlClassifierStrategy(MlClassifierParams(model="m", version=1), read_model)
    assert str(folder / "model.txt") in strat.unavailable
    sig = strat.evaluate(tuple(data.candles()[:300]))
    assert sig.side.value == "NONE" and sig.reason.startswith("refused: ") and "model.txt" in sig.reason
    (folder / "meta.json").write_text("{not json")
    with pytest.raises(ModelUnavailable, match=f"corrupt metadata file {folder / 'meta.json'}"):
        read_model("m", 1)


def test_without_a_loader_the_strategy_is_refused(models, monkeypatch):
    import strategy.ml_classifier as mlc

    monkeypatch.setattr(mlc, "_loader", None)
    strat = build_strategy("ml_classifier", {"model": "m"})
    assert "no model loader in this process" in strat.unavailable
    assert strat.evaluate(tuple(candles(300).candles())).reason.startswith("refused: ")


@pytest.mark.skipif(not SHARED.exists(), reason=f"shared market data not found at {SHARED}")
def test_train_on_real_btc_candles(models):
    from backtest.data import load_data

    data = load_data([SHARED]).symbols["BTCUSDT"]
    folder, meta = train(TrainSpec("btc", horizon=12, threshold=0.6, folds=4), data, _app(), FillModel())
    m = meta["metrics"]
    assert 0.3 < m["auc"] < 0.8 and 0 < m["base_rate"] < 1 and len(m["folds"]) == 4
    assert meta["data"]["start"] == "2024-01-01T00:00:00Z" and meta["backtest"]["bars"] > 3000
    assert read_model("btc").version == 1


def test_clis_refuse_a_corrupt_model_with_exit_2_writing_nothing(models, tmp_path, monkeypatch, capsys):
    from cli import ml, optimize
    from optimize_support import write_cfg

    store = tmp_path / "store"
    monkeypatch.setenv("BOT_OPTIMIZE_DIR", str(store))
    data = candles(4000, "15m", seed=4)
    folder, _ = train(TrainSpec("m", horizon=8, threshold=0.55, folds=2), data, _app(), FillModel())
    (folder / "model.txt").write_text("garbage")
    cfg = write_cfg(tmp_path / "c.yaml", [{"name": "ml", "mode": "paper", "symbol": "BTCUSDT",
                                           "strategy": "ml_classifier", "params": {"model": "m"}}])
    assert optimize.main(["--config", str(cfg), "--bot", "ml", "--space", "threshold=0.55:0.8", "--bars", "500"]) == 2
    err = capsys.readouterr().err
    assert f"corrupt model file {folder / 'model.txt'}" in err and not store.exists()
    assert ml.main(["monitor", "--config", str(cfg), "--model", "m", "--bars", "500"]) == 2
    assert f"corrupt model file {folder / 'model.txt'}" in capsys.readouterr().err
    before = sorted(p.name for p in (models / "m").iterdir())
    assert ml.main(["train", "--config", str(cfg), "--model", "m", "--bars", "300", "--horizon", "8"]) == 2
    assert "use fewer --folds or more data" in capsys.readouterr().err
    assert ml.main(["train", "--config", str(cfg), "--model", "../x", "--bars", "300"]) == 2
    assert "--model '../x'" in capsys.readouterr().err
    assert sorted(p.name for p in (models / "m").iterdir()) == before
