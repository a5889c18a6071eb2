"""A study killed mid-run by a real signal continues where it stopped with ``--resume``."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import optuna
from optuna.trial import TrialState

from support import ROOT, wait_for

sys.path.insert(0, str(ROOT / "tests" / "unit"))
from bench_support import candles, write_csv  # noqa: E402
from optimize_support import write_cfg  # noqa: E402


def _finished(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return con.execute("SELECT COUNT(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def test_killed_study_resumes_where_it_stopped(tmp_path):
    cfg = write_cfg(tmp_path / "c.yaml")
    data = write_csv(tmp_path / "BTCUSDT-1m.csv", candles(150_000, "1m", seed=3))
    store = tmp_path / "store"
    env = {**os.environ, "BOT_OPTIMIZE_DIR": str(store)}
    cmd = [sys.executable, "bot_manager.py", "optimize", "--config", str(cfg), "--bot", "sma", "--data", str(data),
           "--space", "fast=5:40", "--space", "slow=20:120", "--trials", "30", "--jobs", "1", "--study", "r"]
    db = store / "r.db"
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: _finished(db) >= 6, 120, "six finished trials")
    finally:
        proc.send_signal(signal.SIGKILL)  # no clean-up at all: a trial may be left RUNNING
        proc.wait(10)
    storage = f"sqlite:///{db}"
    before = optuna.load_study(study_name="r", storage=storage).get_trials()
    done_before = [t for t in before if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert 6 <= len(done_before) < 30

    out = subprocess.run([*cmd, "--resume", "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    after = optuna.load_study(study_name="r", storage=storage).get_trials()
    finished = [t for t in after if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 30
    kept = {t.number: (t.params, t.value, t.state) for t in finished}
    for t in done_before:  # what was stored is kept, not re-run
        assert kept[t.number] == (t.params, t.value, t.state)
    for t in after:  # a trial cut off by the kill is failed, not counted
        assert t.state != TrialState.RUNNING
        if t.state == TrialState.FAIL:
            assert t.system_attrs.get("interrupted") is True
    assert max(kept) >= 30 - 1 and min(t.number for t in finished if t.number not in
                                        {x.number for x in done_before}) > max(x.number for x in done_before) - 1
