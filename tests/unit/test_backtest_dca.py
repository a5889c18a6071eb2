"""DCA bots in backtests (backtest.dca): the worker's DcaBot over stored candles.

A hand-computed deal (base order, two safety orders on a dip, take profit) comes out exactly;
open deals at the end, several pairs, the CLI, the dashboard service, the report and plots, and
one run on the shared real candles."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from pytest import approx

from backtest import dca as bt_dca
from cli.backtest import main as cli_main
from backtest.data import SymbolData, load_data
from backtest.engine import run_config
from backtest.fills import FillModel
from backtest.plots import plot_data, write_plots
from backtest.report import build_report, deals_text, summary_text
from backtest.service import BacktestRequest, run_request
from backtest_support import ETH_1H, NO_LIMITS, T0, shared_file
from settings import AppConfig

M = 60_000
TAKER, MAKER = 0.1, 0.05  # percent
MODEL = FillModel(taker_fee_pct=TAKER, maker_fee_pct=MAKER, slippage_bps=0.0)
# BO 100 USDT; SO1 100 USDT at -2 %, SO2 100 USDT at -4 % (both resting); TP 2 % over the average.
DCA = {"base_order": 100, "safety_order": 100, "deviation_pct": 2, "step_scale": 1, "volume_scale": 1,
       "max_safety_orders": 2, "active_safety_orders": 2, "take_profit_pct": 2, "cooldown_s": 86_400}
# (open, high, low, close) per 1m candle
DIP_AND_TP = [
    (100.0, 100.0, 100.0, 100.0),  # 0: base order at the close, 100
    (100.0, 100.0, 97.5, 98.5),    # 1: trades through SO1 (98)
    (98.5, 98.5, 95.0, 96.5),      # 2: trades through SO2 (96)
    (96.5, 97.5, 96.5, 97.0),      # 3: nothing
    (97.0, 101.0, 97.0, 100.5),    # 4: through the take profit (~100.0)
    (100.5, 100.5, 100.5, 100.5),  # 5-6: cooldown, no new deal
    (100.5, 100.5, 100.5, 100.5),
]


def series(rows: list[tuple[float, float, float, float]], symbol: str = "BTCUSDT", start: int = T0,
           volume: float = 1000.0) -> SymbolData:
    # volume: 10 % of it (the realistic cap) is far more than any order here, so nothing fills partially
    a = np.array(rows, dtype=np.float64)
    times = start + M * np.arange(len(rows), dtype=np.int64)
    return SymbolData(symbol, "1m", times, a[:, 0].copy(), a[:, 1].copy(), a[:, 2].copy(), a[:, 3].copy(),
                      np.full(len(rows), volume))


def bot_cfg(name: str = "d", symbol: str = "BTCUSDT", **dca: Any) -> dict[str, Any]:
    return {"name": name, "mode": "paper", "kind": "dca", "symbol": symbol, "dca": {**DCA, **dca},
            "risk": dict(NO_LIMITS)}


def make_app(*bots: dict[str, Any], symbols: tuple[str, ...] = ("BTCUSDT",)) -> AppConfig:
    return AppConfig(market={"symbols": list(symbols), "interval": "1m"},
                     paper={"fee_pct": TAKER, "slippage_bps": 0}, bots=list(bots))


def expected_deal() -> dict[str, float]:
    """The deal of DIP_AND_TP worked out by hand (the same arithmetic DcaBot must do)."""
    q0, q1, q2 = 100 / 100, 100 / 98, 100 / 96                     # BO, SO1, SO2 quantities
    f0, f1, f2 = 100 * TAKER / 100, 100 * MAKER / 100, 100 * MAKER / 100  # taker for BO, maker for SOs
    qty, cost = q0 + q1 + q2, 300 + f0 + f1 + f2                   # the deal's average includes its fees
    avg1 = (100 + f0 + 100 + f1) / (q0 + q1)
    avg = cost / qty
    tp = avg * 1.02
    exit_fee = qty * tp * MAKER / 100
    pnl = qty * tp - exit_fee - cost
    dd = max(100 * (100 + f0 - 100.0) / (100 + f0),  # candle 0: low 100 vs the BO's average
             100 * (avg1 - 97.5) / avg1, 100 * (avg - 95.0) / avg, 100 * (avg - 96.5) / avg)
    return {"qty": qty, "cost": cost, "avg": avg, "tp": tp, "pnl": pnl, "fees": f0 + f1 + f2 + exit_fee, "dd": dd}


def check_books(res: Any) -> None:
    """Equity change == the deals' P&L (closed: realized; open: marked, entry fees paid), and the
    deals' fees add up to what the portfolio paid."""
    assert res.equity[-1] - res.starting_balance == approx(sum(d.pnl for d in res.deals), abs=1e-6)
    assert res.fees_paid == approx(sum(d.fees for d in res.deals), abs=1e-9)


# ---- the hand-computed deal ---------------------------------------------------------------
def test_dip_two_safety_orders_and_take_profit_give_the_hand_computed_deal() -> None:
    exp = expected_deal()
    (res,) = run_config(make_app(bot_cfg()), {"BTCUSDT": series(DIP_AND_TP)}, MODEL, ["d"])
    assert res.kind == "dca" and res.path == "bar" and res.symbols == ["BTCUSDT"]
    (deal,) = res.deals
    assert deal.status == "CLOSED" and deal.close_reason == "take profit"
    assert deal.safety_orders == 2 and deal.max_safety_orders == 2
    assert deal.base_price == 100.0
    assert deal.quantity == approx(exp["qty"], rel=1e-12)
    assert deal.invested == approx(exp["cost"], rel=1e-12)
    assert deal.exit_price == approx(exp["tp"], rel=1e-9)
    assert deal.pnl == approx(exp["pnl"], rel=1e-9)
    assert deal.fees == approx(exp["fees"], rel=1e-9)
    assert deal.max_drawdown_pct == approx(exp["dd"], rel=1e-9)
    assert deal.opened_at == T0 + M and deal.closed_at == T0 + 5 * M  # candle 0's close -> candle 4's close
    assert deal.duration_ms == 4 * M
    (trade,) = res.trades
    assert trade.pnl == approx(exp["pnl"], rel=1e-9) and trade.exit_reason.startswith("take_profit")
    assert res.equity[-1] == approx(10_000 + exp["pnl"], rel=1e-12)
    assert res.equity[3] == approx(10_000 - exp["cost"] + exp["qty"] * 97.0, rel=1e-12)  # marked at the close
    check_books(res)

    rep = build_report(res)
    json.dumps(rep, allow_nan=False)
    assert rep["kind"] == "dca" and rep["trades"] == 1 and rep["fees_paid"] == approx(exp["fees"])
    assert rep["deals_summary"]["closed"] == 1 and rep["deals_summary"]["open"] == 0
    assert rep["deals_summary"]["realized_pnl"] == approx(exp["pnl"])
    (row,) = rep["deals"]
    assert row["safety_orders"] == 2 and row["close_reason"] == "take profit" and row["status"] == "CLOSED"
    assert row["closed"] == "2024-01-01T00:05:00Z" and row["duration_h"] == approx(4 / 60)
    assert rep["buy_and_hold"]["total_return_pct"] == approx(0.5)
    assert rep["max_drawdown"]["max_drawdown_pct"] > 0 and 0 < rep["exposure_time_pct"] < 100
    assert "deals: 1 closed" in summary_text(rep) and "take profit" in deals_text(rep)


def test_fees_and_slippage_come_from_the_fill_model() -> None:
    """Market orders pay the taker fee and slippage (paper executor); resting ones the maker fee."""
    model = FillModel(taker_fee_pct=0.2, maker_fee_pct=0.0, slippage_bps=10.0)
    (res,) = run_config(make_app(bot_cfg()), {"BTCUSDT": series(DIP_AND_TP)}, model, ["d"])
    (deal,) = res.deals
    assert deal.base_price == approx(100.0 * 1.001)                  # the BO bought 10 bps over the close
    bo_qty = 100 / 100.0                                            # sized on the close, filled with slippage
    assert deal.fees == approx(bo_qty * 100.1 * 0.002)              # only the BO paid a fee
    check_books(res)


def test_optimistic_fills_resting_orders_on_a_touch() -> None:
    touch = [(100.0, 100.0, 100.0, 100.0), (100.0, 100.0, 98.0, 99.0), (99.0, 99.0, 99.0, 99.0)]
    realistic = run_config(make_app(bot_cfg()), {"BTCUSDT": series(touch)}, MODEL, ["d"])[0]
    optimistic = run_config(make_app(bot_cfg()), {"BTCUSDT": series(touch)},
                            FillModel(policy="optimistic", taker_fee_pct=TAKER, maker_fee_pct=MAKER), ["d"])[0]
    assert realistic.deals[0].safety_orders == 0   # a touch of 98 is not a trade through
    assert optimistic.deals[0].safety_orders == 1


# one candle through the resting SO1 (98) and the take profit (~102.1)
BOTH = [(100.0, 100.0, 100.0, 100.0), (100.0, 103.0, 97.5, 100.0), (100.0, 101.5, 100.0, 101.0),
        (101.0, 101.0, 101.0, 101.0)]


def _intrabar(intrabar: str, rows: list[tuple[float, float, float, float]] = BOTH) -> Any:
    model = FillModel(intrabar=intrabar, taker_fee_pct=TAKER, maker_fee_pct=MAKER)  # type: ignore[arg-type]
    return run_config(make_app(bot_cfg(max_safety_orders=1, active_safety_orders=1)),
                      {"BTCUSDT": series(rows)}, model, ["d"])[0]


def test_safety_order_and_take_profit_in_one_candle_follow_intrabar() -> None:
    first = _intrabar("stop_first")                  # the dip first: SO1 fills, the TP is re-priced
    (deal,) = first.deals
    assert deal.safety_orders == 1 and deal.closed_at == T0 + 3 * M and deal.close_reason == "take profit"
    q1 = 100 / 98
    avg = (100 + 0.1 + 100 + 0.05) / (1 + q1)
    assert deal.exit_price == approx(avg * 1.02, rel=1e-9)
    take = _intrabar("take_first")                   # the rise first: the TP closes the deal, SO1 is canceled
    (deal,) = take.deals
    tp = 100.1 * 1.02
    assert deal.safety_orders == 0 and deal.closed_at == T0 + 2 * M
    assert deal.pnl == approx(tp * (1 - MAKER / 100) - 100.1, rel=1e-9)
    assert _intrabar("ohlc").deals[0].safety_orders == 1          # close >= open: low first
    bearish = [BOTH[0], (100.0, 103.0, 97.5, 99.5), *BOTH[2:]]
    assert _intrabar("ohlc", bearish).deals[0].safety_orders == 0  # close < open: high first
    for res in (first, take):
        assert not res.notes
        check_books(res)


def test_plain_simvenue_matching_fills_both_sides_without_overselling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the intrabar rule both the SO and the old take-profit fill in one candle; DcaBot books
    the safety fill first and re-places the take-profit once, for what is left: the books stay sound
    (this used to leave a take-profit larger than the position, and a long-only bot short)."""
    from executors.fills import FillModel as Model

    orig = Model.match_resting

    def both_sides(self: Model, orders: Any, c: Any) -> Any:  # each side matched alone: no intrabar rule
        orders = list(orders)
        return (orig(self, [o for o in orders if o.side == "BUY"], c)
                + orig(self, [o for o in orders if o.side == "SELL"], c))

    monkeypatch.setattr(Model, "match_resting", both_sides)
    res = _intrabar("stop_first")
    assert not any("accounting fault" in n for n in res.notes)
    assert res.data.symbol == "BTCUSDT" and res.open_quantity >= 0
    check_books(res)


def test_a_deal_still_open_at_the_end_is_listed_open() -> None:
    rows = DIP_AND_TP[:4]  # the data ends before the take profit
    (res,) = run_config(make_app(bot_cfg()), {"BTCUSDT": series(rows)}, MODEL, ["d"])
    (deal,) = res.deals
    exp = expected_deal()
    assert deal.status == "OPEN" and deal.closed_at is None and deal.close_reason == ""
    assert deal.safety_orders == 2 and deal.duration_ms == 3 * M  # to the end of the data
    assert deal.pnl == approx(exp["qty"] * 97.0 - exp["cost"], rel=1e-9)  # marked at the last close
    assert not res.trades
    check_books(res)
    rep = build_report(res)
    assert rep["deals_summary"]["open"] == 1 and rep["deals"][0]["closed"] is None
    assert rep["exposure_time_pct"] == approx(75.0)  # open from candle 0's close to the end of candle 3


def test_drains_during_the_run_lose_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from backtest_support import random_data

    data = {"BTCUSDT": random_data(3000, seed=5, vol=0.004)}
    cfg = make_app(bot_cfg(cooldown_s=0, stop_loss_pct=3))
    whole = run_config(cfg, data, MODEL, ["d"])[0]
    monkeypatch.setattr(bt_dca, "DRAIN_EVERY", 7)
    often = run_config(cfg, data, MODEL, ["d"])[0]
    assert len(whole.deals) > 10
    assert [(d.id, d.pnl, d.status) for d in often.deals] == [(d.id, d.pnl, d.status) for d in whole.deals]
    assert len(often.trades) == len(whole.trades) and np.array_equal(often.equity, whole.equity)
    check_books(whole)


def test_fast_path_is_refused_for_a_dca_bot() -> None:
    with pytest.raises(ValueError, match="bar path only"):
        run_config(make_app(bot_cfg()), {"BTCUSDT": series(DIP_AND_TP)}, MODEL, ["d"], path="fast")
    assert run_config(make_app(bot_cfg()), {"BTCUSDT": series(DIP_AND_TP)}, MODEL, ["d"], path="bar")[0].deals


def test_settings_that_do_not_apply_are_noted() -> None:
    model = FillModel(fill_at="next_open", taker_fee_pct=TAKER, maker_fee_pct=MAKER)
    (res,) = run_config(make_app(bot_cfg()), {"BTCUSDT": series(DIP_AND_TP)}, model, ["d"])
    assert any("fill_at=next_open" in n for n in res.notes)
    assert res.deals[0].pnl == approx(expected_deal()["pnl"], rel=1e-9)  # the fill still happened at the close


# ---- several pairs ------------------------------------------------------------------------
ETH_ROWS = [(p, p, p, p) for p in (2000.0, 2000.0)] + [
    (2000.0, 2000.0, 1950.0, 1970.0),  # through SO1 (1960)
    (1970.0, 2030.0, 1970.0, 2025.0),  # through the take profit (~2020.9)
] + [(2025.0, 2025.0, 2025.0, 2025.0)] * 3


def test_several_pairs_in_one_time_order_each_deal_as_if_alone() -> None:
    btc, eth = series(DIP_AND_TP), series(ETH_ROWS, "ETHUSDT", start=T0 + 2 * M)  # ETH starts later
    both = make_app(bot_cfg(max_active_deals=2, pairs=["BTCUSDT", "ETHUSDT"]), symbols=("BTCUSDT", "ETHUSDT"))
    (res,) = run_config(both, {"BTCUSDT": btc, "ETHUSDT": eth}, MODEL, ["d"])
    assert res.symbols == ["BTCUSDT", "ETHUSDT"]
    assert len(res.times) == len(np.union1d(btc.times, eth.times)) == 9
    by_pair = {d.symbol: d for d in res.deals}
    assert set(by_pair) == {"BTCUSDT", "ETHUSDT"}
    assert by_pair["BTCUSDT"].pnl == approx(expected_deal()["pnl"], rel=1e-9)
    assert by_pair["ETHUSDT"].safety_orders == 1 and by_pair["ETHUSDT"].close_reason == "take profit"
    alone = run_config(make_app(bot_cfg(symbol="ETHUSDT"), symbols=("ETHUSDT",)), {"ETHUSDT": eth}, MODEL, ["d"])[0]
    assert by_pair["ETHUSDT"].pnl == approx(alone.deals[0].pnl, rel=1e-12)
    check_books(res)
    # buy and hold: equal parts of each pair; ETH's part is cash until its first candle
    bh = res.closes
    assert bh[0] == 1.0 and bh[-1] == approx((100.5 / 100 + 2025 / 2000) / 2)
    rep = build_report(res)
    assert rep["buy_and_hold"]["pairs"] == ["BTCUSDT", "ETHUSDT"] and rep["deals_summary"]["closed"] == 2
    d = plot_data(res)
    assert len(d["candles"]["t"]) == len(btc) and all(t["exit_price"] for t in d["trades"])


def test_one_pair_missing_from_the_data_is_an_error_naming_it() -> None:
    app = make_app(bot_cfg(pairs=["BTCUSDT", "ETHUSDT"]), symbols=("BTCUSDT", "ETHUSDT"))
    with pytest.raises(ValueError, match="no candles for ETHUSDT"):
        run_config(app, {"BTCUSDT": series(DIP_AND_TP)}, MODEL, ["d"])
    with pytest.raises(ValueError, match="no enabled bot"):  # not picked without --bot
        run_config(app, {"BTCUSDT": series(DIP_AND_TP)}, MODEL)


# ---- CLI and the dashboard's service ------------------------------------------------------
def write_csv(path: Path, rows: list[tuple[float, float, float, float]], start: int = T0) -> Path:
    lines = ["timestamp,open,high,low,close,volume"]
    for i, (o, h, lo, c) in enumerate(rows):
        t = datetime.fromtimestamp((start + i * M) / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S+0000")
        lines.append(f"{t},{o},{h},{lo},{c},1000")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_config(tmp_path: Path, *bots: dict[str, Any], symbols: tuple[str, ...] = ("BTCUSDT",)) -> Path:
    p = tmp_path / "bt.yaml"
    p.write_text(yaml.safe_dump({"market": {"symbols": list(symbols), "interval": "1m"},
                                 "paper": {"fee_pct": TAKER, "slippage_bps": 0}, "bots": list(bots)}))
    return p


def test_cli_runs_a_dca_bot_and_prints_its_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, bot_cfg())
    data = write_csv(tmp_path / "BTCUSDT_1m.csv", DIP_AND_TP)
    args = ["--config", str(cfg), "--bot", "d", "--data", str(data), "--maker-fee", str(MAKER)]
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert "dca" in out and "deals: 1 closed, 0 stopped, 0 open" in out
    assert "d-1" in out and "take profit" in out and "2/2" in out
    assert cli_main([*args, "--json"]) == 0
    (rep,) = json.loads(capsys.readouterr().out)["bots"]
    (deal,) = rep["deals"]
    assert deal["pnl"] == approx(expected_deal()["pnl"], rel=1e-9) and deal["safety_orders"] == 2
    assert rep["trade_list"][0]["pnl"] == approx(deal["pnl"])
    assert cli_main([*args, "--path", "fast"]) == 2
    assert "bar path only" in capsys.readouterr().err
    assert cli_main([*args, "--plots", str(tmp_path / "plots")]) == 0
    assert (tmp_path / "plots" / "d-equity.html").exists()


def test_cli_loads_every_pair_of_a_dca_bot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, bot_cfg(max_active_deals=2, pairs=["BTCUSDT", "ETHUSDT"]),
                       symbols=("BTCUSDT", "ETHUSDT"))
    write_csv(tmp_path / "BTCUSDT_1m.csv", DIP_AND_TP)
    write_csv(tmp_path / "ETHUSDT_1m.csv", ETH_ROWS, start=T0 + 2 * M)
    assert cli_main(["--config", str(cfg), "--bot", "d", "--data", str(tmp_path), "--json"]) == 0
    (rep,) = json.loads(capsys.readouterr().out)["bots"]
    assert rep["symbols"] == ["BTCUSDT", "ETHUSDT"] and {d["symbol"] for d in rep["deals"]} == {"BTCUSDT", "ETHUSDT"}


def test_service_run_request_returns_the_deals() -> None:
    app = make_app(bot_cfg("dca-syn", cooldown_s=0, deviation_pct=0.3, take_profit_pct=0.4, stop_loss_pct=4))
    doc = run_request(app, BacktestRequest(bot="dca-syn", bars=3000))  # the config's synthetic market
    json.dumps(doc, allow_nan=False)
    rep = doc["report"]
    assert rep["kind"] == "dca" and rep["engine_path"] == "bar" and rep["deals"]
    assert rep["deals_summary"]["closed"] + rep["deals_summary"]["stopped"] + rep["deals_summary"]["open"] \
        == len(rep["deals"])
    assert sum(d["pnl"] for d in rep["deals"]) == approx(rep["final_equity"] - rep["starting_balance"], abs=1e-6)
    assert doc["plot"]["curves"]["equity"]["v"]
    with pytest.raises(ValueError, match="bar path only"):
        run_request(app, BacktestRequest(bot="dca-syn", bars=3000, path="fast"))


def test_the_default_config_dca_bot_backtests() -> None:
    """config.yaml ships ``paper-dca-eth``; it runs on the synthetic market as the tab would run it."""
    from settings import load_config

    app = load_config(Path(__file__).resolve().parents[2] / "config.yaml")
    dca_bots = [b.name for b in app.bots if b.kind == "dca"]
    if not dca_bots:
        pytest.skip("config.yaml has no DCA bot")
    doc = run_request(app, BacktestRequest(bot=dca_bots[0], bars=2000))
    assert doc["report"]["kind"] == "dca" and doc["report"]["deals"]


# ---- real candles -------------------------------------------------------------------------
def test_real_eth_candles_books_and_deals_agree(tmp_path: Path) -> None:
    path = shared_file(ETH_1H)  # skips with the reason when the shared market folder is absent
    start = int(datetime(2024, 3, 1, tzinfo=timezone.utc).timestamp() * 1000)
    end = int(datetime(2024, 9, 1, tzinfo=timezone.utc).timestamp() * 1000)
    data = load_data([path], start, end).symbols
    cfg = bot_cfg("eth", "ETHUSDT", deviation_pct=1.5, step_scale=1.2, volume_scale=1.5, max_safety_orders=5,
                  active_safety_orders=2, take_profit_pct=1.5, stop_loss_pct=15, cooldown_s=0)
    (res,) = run_config(make_app(cfg, symbols=("ETHUSDT",)), data, MODEL, ["eth"])
    assert len(res.deals) > 20
    assert all(d.safety_orders <= 5 and d.duration_ms > 0 for d in res.deals)
    assert any(d.safety_orders >= 2 for d in res.deals)
    assert all(d.pnl > 0 for d in res.deals if d.close_reason == "take profit")
    assert not res.notes  # no deal/portfolio mismatch
    check_books(res)
    rep = build_report(res)
    json.dumps(rep, allow_nan=False)
    assert rep["bars"] == len(data["ETHUSDT"]) and rep["deals_summary"]["closed"] >= 20
    assert len(write_plots(res, tmp_path)) == 3


def test_sweeping_a_dca_bot_is_refused_clearly() -> None:
    from backtest.sweep import run_sweep

    with pytest.raises(ValueError, match="DCA bot"):
        run_sweep(make_app(bot_cfg()), {"BTCUSDT": series(DIP_AND_TP)}, MODEL, "d", {"fast": [1, 2]})


def test_stop_and_disable_pauses_the_bot_as_the_worker_does() -> None:
    rows = [(100.0, 100.0, 100.0, 100.0), (100.0, 100.0, 95.0, 96.0)] + [(96.0, 96.0, 96.0, 96.0)] * 5
    cfg = bot_cfg(max_safety_orders=0, active_safety_orders=0, stop_loss_pct=3, stop_and_disable=True, cooldown_s=0)
    (res,) = run_config(make_app(cfg), {"BTCUSDT": series(rows)}, MODEL, ["d"])
    (deal,) = res.deals  # no deal after the stop: the bot is paused
    assert deal.status == "STOPPED" and deal.close_reason == "stop loss" and deal.exit_price == 96.0
    assert deal.pnl == approx(96.0 * (1 - TAKER / 100) - 100.1, rel=1e-9)
    assert res.trading_state == "PAUSED" and [e.rule for e in res.risk_events] == ["stop_and_disable"]
    check_books(res)
