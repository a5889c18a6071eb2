"""The dca-preview CLI (cli.dca_preview.main): JSON and text output, and input errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from strategy.dca import ladder
from strategy.dca_params import DcaParams
from cli.dca_preview import format_table, main

# anchors.md §5.3
ARGS = ["--price", "100", "--base-order", "10", "--safety-order", "20", "--deviation", "1",
        "--step-scale", "2", "--volume-scale", "1.5", "--max-safety-orders", "4", "--take-profit", "1.5"]

# order, step %, cum dev %, price, vol, qty, cum cost, cum qty, avg, TP(total), TP(base)
GOLDEN = [
    ["BO", "-", "0", "100.0000", "10.00", "0.100000", "10.00", "0.100000", "100.0000", "101.5000", "101.5000"],
    ["SO1", "1", "1", "99.0000", "20.00", "0.202020", "30.00", "0.302020", "99.3311", "100.8211", "99.8278"],
    ["SO2", "2", "3", "97.0000", "30.00", "0.309278", "60.00", "0.611299", "98.1517", "99.6240", "98.3971"],
    ["SO3", "4", "7", "93.0000", "45.00", "0.483871", "105.00", "1.095170", "95.8756", "97.3137", "96.0125"],
    ["SO4", "8", "15", "85.0000", "67.50", "0.794118", "172.50", "1.889287", "91.3043", "92.6738", "91.3837"],
]
JSON_FIELDS = ["name", "step_pct", "cum_deviation_pct", "price", "quote_size", "base_qty",
               "cum_cost", "cum_qty", "avg_price", "tp_total", "tp_base"]


def run(capsys, *extra: str) -> tuple[int, str, str]:
    code = main([*ARGS, *extra])
    out, err = capsys.readouterr()
    return code, out, err


def table_rows(text: str) -> list[list[str]]:
    lines = text.splitlines()
    end = lines.index("")
    return [line.split() for line in lines[2:end]]  # skip header and dashes


def test_json_reproduces_worked_example(capsys) -> None:
    code, out, err = run(capsys, "--json")
    assert code == 0 and err == ""
    data = json.loads(out)  # exactly one JSON object
    assert data["max_funds"] == 172.5
    assert data["max_deviation_pct"] == 15
    assert data["liquidation_price"] is None
    assert len(data["levels"]) == 5
    for level, row in zip(data["levels"], GOLDEN):
        assert level["name"] == row[0]
        for key, expected in zip(JSON_FIELDS[1:], row[1:]):
            if expected == "-":
                assert level[key] is None
                continue
            places = len(expected.split(".")[1]) if "." in expected else 0
            assert f"{level[key]:.{places}f}" == expected, (row[0], key)


def test_text_table_reproduces_worked_example(capsys) -> None:
    code, out, _ = run(capsys)
    assert code == 0
    header = out.splitlines()[0]
    for column in ("order", "step %", "cum dev %", "price", "size USDT", "size base", "cum cost",
                   "cum qty", "avg price", "TP price (total)"):
        assert column in header
    assert table_rows(out) == [row[:10] for row in GOLDEN]  # TP column = TP(total)
    assert "Max funds: 172.50 USDT" in out
    assert "Max deviation covered: 15%" in out
    assert "Liquidation price" not in out


def test_text_table_base_tp_column(capsys) -> None:
    code, out, _ = run(capsys, "--take-profit-type", "base")
    assert code == 0
    assert "TP price (base)" in out.splitlines()[0]
    assert table_rows(out) == [row[:9] + [row[10]] for row in GOLDEN]


def test_columns_are_aligned(capsys) -> None:
    _, out, _ = run(capsys)
    lines = out.splitlines()[:7]
    # right-aligned numbers: every row ends at the same column
    assert len({len(line) for line in lines}) == 1


def test_leverage_prints_liquidation(capsys) -> None:
    code, out, _ = run(capsys, "--leverage", "5")
    assert code == 0
    # avg 91.3042776... * (1 - 1/5 + 0.004) = 73.40864
    assert "Liquidation price (x5 isolated): 73.4086" in out
    code, out, _ = run(capsys, "--leverage", "5", "--json")
    data = json.loads(out)
    assert data["liquidation_price"] == pytest.approx(data["levels"][-1]["avg_price"] * 0.804)


def test_leverage_warning_is_printed(capsys) -> None:
    _, out, _ = run(capsys, "--leverage", "10")
    assert "WARNING: liquidation" in out and "before SO4" in out


def test_short_and_from_previous(capsys) -> None:
    code, out, _ = run(capsys, "--side", "short", "--json")
    assert code == 0
    levels = json.loads(out)["levels"]
    assert [lv["price"] for lv in levels] == [100, 101, 103, 107, 115]
    assert all(lv["tp_price"] < lv["avg_price"] for lv in levels)
    code, out, _ = run(capsys, "--step-mode", "from_previous", "--json")
    assert [round(lv["price"], 6) for lv in json.loads(out)["levels"]] == [100, 99, 97.02, 93.1392, 85.688064]


def test_take_profit_steps_and_stop_loss(capsys) -> None:
    code, out, _ = run(capsys, "--take-profit-step", "30:1", "--take-profit-step", "70:2",
                       "--stop-loss", "20", "--stop-loss-reference", "base")
    assert code == 0
    assert "SL price (base)" in out.splitlines()[0]
    assert "Take-profit steps after SO4 fills: 0.566786 @ 92.2173, 1.322501 @ 93.1304" in out


def test_format_table_matches_cli(capsys) -> None:
    params = DcaParams(base_order=10, safety_order=20, deviation_pct=1, step_scale=2, volume_scale=1.5,
                       max_safety_orders=4, take_profit_pct=1.5)
    _, out, _ = run(capsys)
    assert format_table(ladder(params, 100)) + "\n" == out


@pytest.mark.parametrize(
    "extra,option,rule",
    [
        (["--deviation", "0"], "--deviation", "> 0"),
        (["--deviation", "150"], "--deviation", "< 100"),
        (["--price", "-1"], "--price", "> 0"),
        (["--price", "abc"], "--price", "must be a number"),
        (["--base-order", "0"], "--base-order", "> 0"),
        (["--safety-order", "-3"], "--safety-order", "> 0"),
        (["--step-scale", "0"], "--step-scale", "> 0"),
        (["--volume-scale", "50"], "--volume-scale", "<= 10"),
        (["--max-safety-orders", "201"], "--max-safety-orders", "between 0 and 200"),
        (["--max-safety-orders", "2.5"], "--max-safety-orders", "whole number"),
        (["--max-safety-orders", "5", "--deviation", "10"], "--max-safety-orders", "below the base price"),
        (["--active-safety-orders", "9"], "--active-safety-orders", "between 1 and"),
        (["--take-profit", "0"], "--take-profit", "> 0"),
        (["--take-profit-type", "avg"], "--take-profit-type", "invalid choice"),
        (["--take-profit-step", "60:1", "--take-profit-step", "30:2"], "--take-profit-step", "sum to 100"),
        (["--take-profit-step", "60"], "--take-profit-step", "AMOUNT_PCT:PROFIT_PCT"),
        (["--side", "up"], "--side", "invalid choice"),
        (["--step-mode", "geometric"], "--step-mode", "invalid choice"),
        (["--leverage", "0"], "--leverage", "between 1 and 125"),
        (["--leverage", "10", "--mmr", "0.2"], "--mmr", "1/leverage"),
        (["--stop-loss", "100"], "--stop-loss", "< 100"),
    ],
)
def test_invalid_input_exits_2_naming_option(capsys, extra, option, rule) -> None:
    code, out, err = run(capsys, *extra)
    assert code == 2
    assert out == ""
    assert option in err and rule in err
    assert "Traceback" not in err


def test_missing_required_option(capsys) -> None:
    assert main(["--price", "100"]) == 2
    err = capsys.readouterr().err
    assert "--base-order" in err and "required" in err


def test_help_returns_zero(capsys) -> None:
    assert main(["--help"]) == 0
    assert "--step-mode" in capsys.readouterr().out


def test_module_entry_point_exit_codes() -> None:
    root = Path(__file__).resolve().parents[2]
    ok = subprocess.run([sys.executable, "-m", "cli.dca_preview", *ARGS, "--json"],
                        cwd=root, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and json.loads(ok.stdout)["max_funds"] == 172.5
    bad = subprocess.run([sys.executable, "-m", "cli.dca_preview", *ARGS, "--deviation", "0"],
                         cwd=root, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert "--deviation" in bad.stderr and "Traceback" not in bad.stderr
