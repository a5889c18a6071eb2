"""``bot_manager.py optimize`` end to end in this process: bad input exits 2 writing nothing; a study runs
its trials through the real backtester, prunes what the params model rejects, and walks forward."""
from __future__ import annotations

import json

import optuna
import pytest
from optuna.trial import TrialState

from backtest.data import resolve_data
from backtest.engine import run_config
from backtest.fills import fill_model
from backtest.report import build_report
from backtest.walk_forward import collapsed
from cli import optimize
from optimize_support import sma_bot, write_cfg
from settings import load_config


@pytest.fixture
def store(tmp_path, monkeypatch):
    d = tmp_path / "store"
    monkeypatch.setenv("BOT_OPTIMIZE_DIR", str(d))
    return d


def _run(cfg, *args):
    return optimize.main(["--config", str(cfg), "--bot", "sma", *args])


@pytest.mark.parametrize("args, words", [
    (["--space", "fsat=5:50"], ["unknown parameter"]),
    (["--space", "fast=50:5"], ["fast", "inverted"]),
    (["--space", "fast=1:40"], ["fast must be >= 2"]),
    (["--space", "fast=50:60", "--space", "slow=20:40"], ["rejects every point", "must be greater than fast"]),
    (["--space", "fast=5:20", "--walk-forward", "5"], ["--walk-forward 5", "fold needs at least", "days"]),
    (["--space", "fast=5:20", "--study", "../x"], ["--study"]),
    (["--space", "fast=5:20", "--resume"], ["--resume: no study"]),
    (["--space", "fast=5:20", "--trials", "0"], ["--trials 0"]),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, store, capsys, args, words):
    cfg = write_cfg(tmp_path / "c.yaml")
    assert _run(cfg, "--bars", "3000", "--trials", "3", *args) == 2
    err = capsys.readouterr().err
    for w in words:
        assert w in err, err
    assert not store.exists() or not any(store.iterdir())


def test_unknown_bot_and_dca_bot_refused(tmp_path, store, capsys):
    cfg = write_cfg(tmp_path / "c.yaml")
    assert optimize.main(["--config", str(cfg), "--bot", "nope", "--space", "fast=5:9"]) == 2
    assert "no bot named nope" in capsys.readouterr().err
    assert not store.exists()


def test_study_runs_prunes_infeasible_and_stores_real_backtests(tmp_path, store, capsys):
    cfg = write_cfg(tmp_path / "c.yaml")
    assert _run(cfg, "--bars", "6000", "--trials", "14", "--jobs", "1", "--space", "fast=5:30",
                "--space", "slow=10:40", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["finished"] == 14 and out["new_trials"] == 14 and out["file"] == str(store / "sma-sharpe.db")
    study = optuna.load_study(study_name="sma-sharpe", storage=f"sqlite:///{store / 'sma-sharpe.db'}")
    trials = study.get_trials()
    infeasible = [t for t in trials if "infeasible" in t.user_attrs]
    assert infeasible, "a space with slow <= fast points should have sampled some"
    for t in infeasible:  # pruned, never run
        assert t.state == TrialState.PRUNED and t.params["slow"] <= t.params["fast"] and "metrics" not in t.user_attrs
        assert "must be greater than fast" in t.user_attrs["infeasible"]
    # the stored best equals a direct backtest of its params through the engine
    app = load_config(str(cfg))
    model = fill_model(app, "realistic", "close", "stop_first", None, None, None, 0, 10.0)
    data = resolve_data(app, [], None, None, ["BTCUSDT"], None, 6000).symbols
    res = run_config(app, data, model, ["sma"], params_override=study.best_params)[0]
    assert build_report(res)["sharpe"] == pytest.approx(study.best_value, rel=1e-12)
    assert out["best"]["params"] == study.best_params
    assert set(out["importance"]) <= {"fast", "slow"}


def test_min_trades_prunes_and_existing_study_needs_resume(tmp_path, store, capsys):
    cfg = write_cfg(tmp_path / "c.yaml")
    assert _run(cfg, "--bars", "3000", "--trials", "4", "--jobs", "1", "--space", "fast=5:9",
                "--min-trades", "100000", "--study", "few") == 0
    study = optuna.load_study(study_name="few", storage=f"sqlite:///{store / 'few.db'}")
    assert {t.state for t in study.trials} == {TrialState.PRUNED}
    assert all("too few trades" in t.user_attrs["pruned"] and t.user_attrs["metrics"]["trades"] < 100000
               for t in study.trials)
    before = (store / "few.db").read_bytes()
    capsys.readouterr()
    assert _run(cfg, "--bars", "3000", "--trials", "4", "--space", "fast=5:9", "--study", "few") == 2
    assert "already exists" in capsys.readouterr().err
    assert (store / "few.db").read_bytes() == before
    # resuming with another question is refused too
    assert _run(cfg, "--bars", "3000", "--trials", "6", "--space", "fast=5:10", "--study", "few", "--resume") == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "space: stored ['fast=5:9:1'], now ['fast=5:10:1']" in err


def test_walk_forward_reports_out_of_sample_per_window(tmp_path, store, capsys):
    cfg = write_cfg(tmp_path / "c.yaml", [sma_bot()], interval="1h")
    assert _run(cfg, "--bars", "2400", "--trials", "6", "--jobs", "1", "--space", "fast=3:12",
                "--walk-forward", "2", "--study", "wf", "--json") == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep == json.loads((store / "wf.walkforward.json").read_text())
    assert rep["mode"] == "rolling" and [w["index"] for w in rep["windows"]] == [1, 2]
    w1, w2 = rep["windows"]
    assert w1["test"][0] == w2["train"][0]  # rolling: window 2 trains on window 1's test fold
    assert w1["train"][1] == w1["test"][0]
    # window 1's out-of-sample figures are a backtest of its best params on its test fold alone
    app = load_config(str(cfg))
    model = fill_model(app, "realistic", "close", "stop_first", None, None, None, 0, 10.0)
    data = resolve_data(app, [], None, None, ["BTCUSDT"], None, 2400).symbols
    from backtest.data import parse_time

    d = {"BTCUSDT": data["BTCUSDT"].between(parse_time(w1["test"][0]), parse_time(w1["test"][1]))}
    res = run_config(app, d, model, ["sma"], params_override=w1["params"])[0]
    assert build_report(res)["sharpe"] == pytest.approx(w1["out_of_sample"]["sharpe"])
    assert rep["oos_concatenated"]["trades"] == sum(w["out_of_sample"]["trades"] for w in rep["windows"])
    for w in rep["windows"]:
        assert w["collapsed"] == collapsed(w["in_sample"]["sharpe"], w["out_of_sample"]["sharpe"])


def test_windows_rolling_and_anchored():
    from backtest.walk_forward import windows
    from bench_support import candles

    data = candles(4000, "1h")
    roll = windows(data, 3, "rolling", 100)
    anch = windows(data, 3, "anchored", 100)
    t = data.times
    assert [(w.train, w.test) for w in roll] == [((int(t[0]), int(t[1000])), (int(t[1000]), int(t[2000]))),
                                                  ((int(t[1000]), int(t[2000])), (int(t[2000]), int(t[3000]))),
                                                  ((int(t[2000]), int(t[3000])), (int(t[3000]), int(t[-1]) + 1))]
    assert [w.train for w in anch] == [(int(t[0]), int(t[1000])), (int(t[0]), int(t[2000])), (int(t[0]), int(t[3000]))]
    with pytest.raises(ValueError, match="folds of 1,000 bars; each fold needs at least 1,001"):
        windows(data, 3, "rolling", 1001)


def test_collapse_rule():
    assert collapsed(2.0, 0.9) and collapsed(2.0, -1.0) and collapsed(1.0, None)
    assert not collapsed(2.0, 1.0) and not collapsed(-1.0, -5.0) and not collapsed(0.0, -1.0)
