"""User strategies as plugins (strategy.plugins, strategy.registry, cli/strategy.py): discovered from the
folder, usable by name like a built-in, a broken file skipped with its file, line and rule; the
``strategy check`` command catches a lookahead and a vectorised form that differs from evaluate()."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backtest.data import SymbolData
from backtest.engine import run_config
from backtest.fills import FillModel
from backtest.strategy_check import check_strategy
from backtest_support import NO_LIMITS, random_data
from settings import ConfigError, load_config
from strategy import registry
from strategy.plugins import load_folder

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "user_strategies" / "donchian_breakout.py"

GOOD = '''
from pydantic import BaseModel, ConfigDict, Field
from core.types import Side, Signal

class P(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = Field(3, ge=1, le=50)

class Up:
    name = "up_{tag}"
    Params = P
    def __init__(self, params):
        self.params = params
        self.warmup = params.n + 1
    def evaluate(self, candles):
        c = candles[-1].close
        return Signal(Side.BUY if c > candles[-1 - self.params.n].close else Side.NONE, 1.0, "up")
'''


def _folder(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "user_strategies"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture(autouse=True)
def _forget_user_strategies():
    yield
    registry.register_user_strategies(Path("/nonexistent"))  # no user strategies for the next test


def test_broken_files_are_skipped_with_file_line_and_rule(tmp_path: Path) -> None:
    folder = _folder(tmp_path, {
        "a_good.py": GOOD.format(tag="a"),
        "b_syntax.py": "x = 1\ndef oops(:\n    pass\n",
        "c_missing.py": "from core.types import Signal\n\nclass NoEval:\n    name = 'no_eval'\n\n"
                        "    class Params:\n        pass\n",
        "d_io.py": "import os\nfrom core.types import Signal\n",
        "e_raises.py": "from core.types import Signal\n\nX = 1 / 0\n",
        "f_clash.py": GOOD.format(tag="a").replace("up_a", "sma_crossover"),
        "g_open.py": GOOD.format(tag="g").replace("c = candles[-1].close", "c = len(open('x').read())"),
    })
    report = load_folder(folder, set(registry.BUILT_IN))
    assert [s.name for s in report.strategies] == ["up_a"]
    errs = {Path(e.file).name: e for e in report.errors}
    assert set(errs) == {"b_syntax.py", "c_missing.py", "d_io.py", "e_raises.py", "f_clash.py", "g_open.py"}
    assert errs["b_syntax.py"].line == 2 and "syntax error" in errs["b_syntax.py"].message
    assert errs["c_missing.py"].line == 3 and "Params" in errs["c_missing.py"].message
    assert errs["d_io.py"].line == 1 and "imports 'os'" in errs["d_io.py"].message
    assert errs["e_raises.py"].line == 3 and "ZeroDivisionError" in errs["e_raises.py"].message
    assert "already taken" in errs["f_clash.py"].message
    assert "open()" in errs["g_open.py"].message
    assert str(errs["b_syntax.py"]).startswith(f"{folder / 'b_syntax.py'}:2: ")


def test_missing_evaluate_is_named(tmp_path: Path) -> None:
    folder = _folder(tmp_path, {"x.py": GOOD.format(tag="x").replace("def evaluate", "def evaluat")})
    (err,) = load_folder(folder, set()).errors
    assert err.line == 9 and "missing method evaluate" in err.message


def test_a_user_strategy_is_configured_and_backtested_like_a_built_in(tmp_path: Path) -> None:
    _folder(tmp_path, {"up.py": GOOD.format(tag="t")})
    shutil.copy(EXAMPLE, tmp_path / "user_strategies" / EXAMPLE.name)
    cfg = tmp_path / "config.yaml"
    risk = json.dumps(NO_LIMITS)
    cfg.write_text(f"bots:\n  - {{name: u, mode: paper, symbol: BTCUSDT, strategy: donchian_breakout, "
                   f"params: {{window: 5}}, risk: {risk}}}\n  - {{name: t, mode: paper, symbol: BTCUSDT, "
                   f"strategy: up_t, risk: {risk}}}\n")
    app = load_config(cfg)
    assert app.strategies.path == str(tmp_path / "user_strategies")
    data = {"BTCUSDT": random_data(3000)}
    model = FillModel()
    fast = run_config(app, data, model, ["u"], path="auto")[0]
    bar = run_config(app, data, model, ["u"], path="bar")[0]
    assert fast.path == "fast" and bar.path == "bar"
    assert len(bar.trades) > 10 and bar.trades == fast.trades  # the vectorised form trades as evaluate() does
    assert run_config(app, data, model, ["t"])[0].path == "bar"


def test_params_the_model_rejects_name_the_file_and_line(tmp_path: Path) -> None:
    _folder(tmp_path, {"up.py": GOOD.format(tag="t")})
    cfg = tmp_path / "config.yaml"
    cfg.write_text("bots:\n  - {name: t, mode: paper, symbol: BTCUSDT, strategy: up_t, params: {n: 0}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    msg = str(info.value)
    assert "params.n: Input should be greater than or equal to 1" in msg
    assert f"Params at {tmp_path / 'user_strategies' / 'up.py'}:5" in msg


def test_a_broken_file_does_not_stop_the_config(tmp_path: Path) -> None:
    _folder(tmp_path, {"up.py": GOOD.format(tag="t"), "bad.py": "def (:\n"})
    cfg = tmp_path / "config.yaml"
    cfg.write_text("bots:\n  - {name: t, mode: paper, symbol: BTCUSDT, strategy: up_t}\n")
    assert load_config(cfg).bots[0].strategy == "up_t"
    assert [Path(e.file).name for e in registry.user_report().errors] == ["bad.py"]


CHEAT = '''
import numpy as np
from pydantic import BaseModel
from core.types import Side, Signal
from strategy.base import exit_arrays

class P(BaseModel):
    pass

class Cheat:
    name = "cheat"
    Params = P
    def __init__(self, params):
        self.warmup = 2
    def evaluate(self, candles):
        up = candles[-1].close > candles[-2].close
        return Signal(Side.BUY if up else Side.SELL, 1.0, "x")
    def signals(self, opens, highs, lows, closes, volumes):
        nxt = np.roll(closes, -1)  # tomorrow's close: a lookahead
        out = np.where(nxt > closes, 1, -1).astype(np.int8)
        out[0] = 0
        return out
'''

PEEK = '''
from pydantic import BaseModel
from core.types import Side, Signal

class P(BaseModel):
    pass

class Peek:
    name = "peek"
    Params = P
    def __init__(self, params):
        self.warmup = 2
    def evaluate(self, candles):
        i = len(candles) - 1
        nxt = candles[i + 1]
        return Signal(Side.BUY if nxt.close > candles[i].close else Side.NONE, 1.0, "x")
'''


def test_check_catches_a_vectorised_lookahead_at_its_line(tmp_path: Path) -> None:
    folder = _folder(tmp_path, {"cheat.py": CHEAT, "peek.py": PEEK})
    registry.register_user_strategies(folder)
    data = random_data(400)
    rep = check_strategy("cheat", {}, data)
    assert not rep.ok
    assert any(p.startswith(f"{folder / 'cheat.py'}:18: lookahead: signals()") for p in rep.problems), rep.problems
    peek = check_strategy("peek", {}, data)
    assert peek.problems == [f"evaluate() raised at {folder / 'peek.py'}:15: IndexError: tuple index out of range"]
    assert check_strategy("sma_crossover", {"fast": 3, "slow": 8}, data).ok


def test_cli_list_and_check(tmp_path: Path) -> None:
    folder = _folder(tmp_path, {"cheat.py": CHEAT, "bad.py": "import socket\n"})
    shutil.copy(EXAMPLE, folder / EXAMPLE.name)
    cfg = tmp_path / "config.yaml"
    cfg.write_text("market: {symbols: [BTCUSDT]}\n")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(ROOT / "bot_manager.py"), "--config", str(cfg), "strategy", *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)

    out = run("list")
    assert out.returncode == 0, out.stderr
    assert "donchian_breakout" in out.stdout and "cheat" in out.stdout and "sma_crossover" in out.stdout
    assert f"SKIPPED {folder / 'bad.py'}:1: imports 'socket'" in out.stdout
    good = run("check", "donchian_breakout", "--bars", "800")
    assert good.returncode == 0 and "PASSED" in good.stdout, good.stdout + good.stderr
    assert "signals() equals evaluate() on all 800 candles" in good.stdout
    bad = run("check", "cheat", "--bars", "300")
    assert bad.returncode == 1 and "FAILED" in bad.stdout
    assert f"{folder / 'cheat.py'}:18: lookahead" in bad.stdout


def test_example_passes_on_real_candles() -> None:
    from backtest_support import shared_data

    data: SymbolData = shared_data()
    registry.register_user_strategies(EXAMPLE.parent)
    rep = check_strategy("donchian_breakout", {"window": 10}, data.head(1500))
    assert rep.ok, rep.problems
