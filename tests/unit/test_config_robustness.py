"""Hostile and careless config input: each case exits 2 from the real command line with the key and the
rule, within a second (no traceback, no hang): a file that is not UTF-8, 10,000 levels of nesting, a
directory as the path, non-JSON in a BOT_* override, a YAML alias bomb, `speed: true`."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALIAS_BOMB = "\n".join(["a: &a [x, x, x, x, x, x, x, x, x]"] + [
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]" for i in range(9)])


def check(config: Path, env: dict[str, str] | None = None) -> tuple[int, str, float]:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(ROOT / "bot_manager.py"), "check-config", "--config", str(config)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {}), "PYTHONDONTWRITEBYTECODE": "1"})
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - t0


@pytest.mark.parametrize("name,content,env,says", [
    ("latin1", "market:\n  symbols: [BTCUSDT]\n# caf\xe9\n".encode("latin-1"), {}, "not UTF-8 text"),
    ("deep", ("a: " + "[" * 10_000 + "]" * 10_000 + "\n").encode(), {}, "nested more than 50 levels"),
    ("bomb", ALIAS_BOMB.encode(), {}, "expands to more than 100,000 values"),
    ("speed", b"market:\n  speed: true\n", {}, "market.speed: must be a number, not true"),
    ("env", b"market:\n  symbols: [BTCUSDT]\n", {"BOT_MARKET__SYMBOLS": "[BTCUSDT"}, "BOT_MARKET__SYMBOLS (environment)"),
    ("nan_limit", b"bots:\n- {name: b, mode: paper, symbol: BTCUSDT, strategy: sma_crossover,\n"
                  b"   risk: {max_position_value: .nan}}\n", {}, "bots.0.risk.max_position_value"),
])
def test_bad_config_exits_2_naming_the_key_and_the_rule_fast(tmp_path: Path, name: str, content: bytes,
                                                            env: dict[str, str], says: str) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(content)
    code, out, took = check(path, env)
    assert code == 2, out
    assert says in out, out
    assert "Traceback" not in out, out
    assert took < 10  # the interpreter's start dominates; the alias bomb used to hang for minutes


def test_ordinary_anchors_and_aliases_still_work(tmp_path: Path) -> None:
    path = tmp_path / "anchors.yaml"
    path.write_text("bots:\n- {name: a, mode: paper, symbol: BTCUSDT, strategy: sma_crossover, risk: &r {max_position_pct: 5}}\n"
                    "- {name: b, mode: paper, symbol: ETHUSDT, strategy: sma_crossover, risk: *r}\n")
    code, out, _ = check(path)
    assert code == 0, out


def test_a_directory_as_the_config_path(tmp_path: Path) -> None:
    code, out, _ = check(tmp_path)
    assert code == 2 and "is a directory" in out and "Traceback" not in out, out
