"""load_candles (all supported layouts, real shared files when present), iter_merged, aggregate."""
from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.types import Candle
from market.aggregate import aggregate
from market.replay import iter_merged, load_candles, shared_market_dir
from market.validate import validate_series

M = 60_000
H = 3_600_000
JAN_2025 = 1_735_689_600_000  # 2025-01-01 00:00 UTC, ms
JAN_2024 = 1_704_067_200_000


def _ts(s: str) -> int:
    return int(np.datetime64(s, "ms").astype(np.int64))


# -- real shared files (skipped on a fresh clone) ------------------------------------------------
@pytest.fixture(scope="module")
def market_dir() -> Path:
    d = shared_market_dir()
    if d is None:
        pytest.skip("shared market data not found at $BOT_MARKET_DATA or <repo>/../shared/data/market: "
                    "real-file tests need it")
    return d


@pytest.mark.parametrize(
    ("rel", "symbol", "interval", "rows", "first_time", "first_open", "first_close"),
    [
        ("spot/binance_spot_2021-04_2023-12/BTCUSDT_1h.csv", "BTCUSDT", "1h", 23_988,
         "2021-04-04T20:00", 57953.86, 58025.11),
        ("spot/binance_spot_2024-01_2026-03/BTCUSDT_1h.csv", "BTCUSDT", "1h", 19_704,
         "2024-01-01T00:00", 42283.58, 42475.23),
        ("spot/binance_spot_2024-01_2026-03/ETHUSDT_4h.csv", "ETHUSDT", "4h", 4_926,
         "2024-01-01T00:00", 2281.87, 2273.81),
        ("spot/binance_spot_ETHUSDT_2024-05_2026-05/ETHUSDT-1h.csv", "ETHUSDT", "1h", 17_520,
         "2024-05-13T16:00", 2961.21, 2976.33),
        ("spot/binance_spot_ETHUSDT_2024-05_2026-05/ETHUSDT-1d.csv", "ETHUSDT", "1d", 730,
         "2024-05-15T00:00", 2881.93, 3032.55),
        ("futures_um/binance_um_2024-01_2025-12/BTCUSDT-1h-ohlc.csv", "BTCUSDT", "1h", 17_280,
         "2024-01-01T00:00", 42314.0, 42503.5),
    ],
)
def test_shared_formats_load(market_dir: Path, rel: str, symbol: str, interval: str, rows: int,
                             first_time: str, first_open: float, first_close: float) -> None:
    r = load_candles(market_dir / rel)
    assert r.symbol == symbol and r.interval == interval
    assert r.report.accepted == rows and not r.rejected
    first = r.candles[0]
    assert first.open_time == _ts(first_time)
    assert (first.open, first.close) == (first_open, first_close)
    assert all(c.interval == interval and c.symbol == symbol for c in r.candles[:10])


def test_misrori_files_report_their_five_real_gaps(market_dir: Path) -> None:
    expected = [
        ("2021-04-20T01:00", "2021-04-20T04:00", 2),
        ("2021-04-25T04:00", "2021-04-25T08:00", 3),
        ("2021-08-13T01:00", "2021-08-13T06:00", 4),
        ("2021-09-29T06:00", "2021-09-29T09:00", 2),
        ("2023-03-24T12:00", "2023-03-24T14:00", 1),
    ]
    folder = market_dir / "spot/binance_spot_2021-04_2023-12"
    for sym in ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT"):
        r = load_candles(folder / f"{sym}_1h.csv")
        assert r.symbol == sym  # from the ticker column
        got = [(g.after_open_time, g.before_open_time, g.missing_bars) for g in r.gaps]
        assert got == [(_ts(a), _ts(b), n) for a, b, n in expected], sym
        assert all(g.symbol == sym for g in r.gaps)


def test_aggregating_real_30m_matches_real_1h_and_4h(market_dir: Path) -> None:
    folder = market_dir / "spot/binance_spot_2024-01_2026-03"
    m30 = load_candles(folder / "BTCUSDT_30m.csv").candles
    h1 = load_candles(folder / "BTCUSDT_1h.csv").candles
    h4 = load_candles(folder / "BTCUSDT_4h.csv").candles
    for mine, ref in ((aggregate(m30, "1h"), h1), (aggregate(h1, "4h"), h4)):
        assert len(mine) == len(ref)
        for a, b in zip(mine[::50], ref[::50]):
            assert (a.open_time, a.open, a.high, a.low, a.close) == (b.open_time, b.open, b.high, b.low, b.close)
            assert a.volume == pytest.approx(b.volume, rel=1e-9)


def test_iter_merged_real_files_global_order(market_dir: Path) -> None:
    folder = market_dir / "spot/binance_spot_2024-01_2026-03"
    btc = load_candles(folder / "BTCUSDT_4h.csv").candles
    eth = load_candles(folder / "ETHUSDT_4h.csv").candles
    merged = list(iter_merged([eth, btc]))
    assert len(merged) == len(btc) + len(eth)
    keys = [(c.open_time, c.symbol) for c in merged]
    assert keys == sorted(keys)
    assert [c.symbol for c in merged[:2]] == ["BTCUSDT", "ETHUSDT"]


def test_shared_market_dir_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BOT_MARKET_DATA", str(tmp_path))
    assert shared_market_dir() == tmp_path
    monkeypatch.setenv("BOT_MARKET_DATA", str(tmp_path / "missing"))
    assert shared_market_dir() is None


# -- generated files -----------------------------------------------------------------------------
def _kline_rows(start_ms: int, n: int, step: int = M, unit: int = 1, price: float = 94_000.0) -> list[str]:
    """data.binance.vision kline lines; unit=1000 writes microsecond timestamps."""
    rows = []
    for i in range(n):
        t = start_ms + i * step
        o = price + i
        c = o + 0.5
        rows.append(f"{t * unit},{o:.8f},{c + 2:.8f},{o - 2:.8f},{c:.8f},1.25000000,"
                    f"{(t + step - 1) * unit + (unit - 1)},117500.0,42,0.6,56400.0,0")
    return rows


def test_binance_vision_spot_headerless_microseconds(tmp_path: Path) -> None:
    p = tmp_path / "BTCUSDT-1m-2025-01.csv"
    p.write_text("\n".join(_kline_rows(JAN_2025, 10, unit=1000)) + "\n")
    r = load_candles(p)
    assert r.symbol == "BTCUSDT" and r.interval == "1m"
    assert r.report.accepted == 10 and not r.rejected
    assert r.candles[0] == Candle("BTCUSDT", JAN_2025, 94_000.0, 94_002.5, 93_998.0, 94_000.5, 1.25, "1m")
    assert [c.open_time for c in r.candles] == [JAN_2025 + i * M for i in range(10)]
    assert "headerless" in r.source_format


def test_binance_vision_zip_and_milliseconds(tmp_path: Path) -> None:
    csv_name = "ETHUSDT-5m-2024-01.csv"
    z = tmp_path / "ETHUSDT-5m-2024-01.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(csv_name, "\n".join(_kline_rows(JAN_2024, 6, step=300_000, price=2_300.0)) + "\n")
    r = load_candles(z)
    assert (r.symbol, r.interval, r.report.accepted) == ("ETHUSDT", "5m", 6)
    assert r.candles[0].open_time == JAN_2024 and r.candles[0].open == 2_300.0


def test_mixed_ms_and_us_rows_in_one_file(tmp_path: Path) -> None:
    # A file concatenated from 2024 (ms) and 2025 (us) monthly downloads.
    dec = _kline_rows(JAN_2025 - 3 * M, 3)
    jan = _kline_rows(JAN_2025, 3, unit=1000)
    p = tmp_path / "BTCUSDT-1m-concat.csv"
    p.write_text("\n".join(dec + jan) + "\n")
    r = load_candles(p)
    assert [c.open_time for c in r.candles] == [JAN_2025 + i * M for i in range(-3, 3)]
    assert not r.gaps and not r.rejected


def test_futures_header_with_epoch_ms(tmp_path: Path) -> None:
    header = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume," \
             "taker_buy_quote_volume,ignore"
    p = tmp_path / "SOLUSDT-1h-2024-01.csv"
    p.write_text(header + "\n" + "\n".join(_kline_rows(JAN_2024, 5, step=H, price=100.0)) + "\n")
    r = load_candles(p)
    assert (r.symbol, r.interval, r.report.accepted) == ("SOLUSDT", "1h", 5)
    assert r.candles[-1].open_time == JAN_2024 + 4 * H


def test_interval_inferred_from_close_time_and_from_steps(tmp_path: Path) -> None:
    p = tmp_path / "export.csv"
    p.write_text("\n".join(_kline_rows(JAN_2024, 1, step=900_000)) + "\n")  # single row: close_time only
    r = load_candles(p, symbol="BTCUSDT")
    assert (r.symbol, r.interval) == ("BTCUSDT", "15m")

    q = tmp_path / "prices.csv"
    lines = ["timestamp,open,high,low,close,volume"]
    for i in range(20):
        lines.append(f"{JAN_2024 // 1000 + i * 14_400},10,11,9,10.5,3")  # epoch seconds, 4h
    q.write_text("\n".join(lines) + "\n")
    r = load_candles(q, symbol="ADAUSDT")
    assert r.interval == "4h" and r.report.accepted == 20
    assert r.candles[1].open_time == JAN_2024 + 4 * H


def test_date_ticker_and_offset_layouts(tmp_path: Path) -> None:
    a = tmp_path / "whatever.csv"
    a.write_text("date,open,high,low,close,volume,ticker\n"
                 "2024-01-01 00:00:00,1.00000000,1.10000000,0.90000000,1.05000000,100.0,XRPUSDT\n"
                 "2024-01-01 01:00:00,1.05000000,1.20000000,1.00000000,1.10000000,120.0,XRPUSDT\n")
    r = load_candles(a)
    assert (r.symbol, r.interval, r.report.accepted) == ("XRPUSDT", "1h", 2)
    assert r.candles[0].open_time == JAN_2024

    b = tmp_path / "LINKUSDT_30m.csv"
    b.write_text("\ufefftimestamp,open,high,low,close,volume\n"
                 "2024-01-01 00:00:00+0000,15.0,15.2,14.9,15.1,10\n"
                 "2024-01-01 00:30:00+0000,15.1,15.3,15.0,15.2,11\n")
    r = load_candles(b)
    assert (r.symbol, r.interval, r.report.accepted) == ("LINKUSDT", "30m", 2)
    assert r.candles[1].open_time == JAN_2024 + 1_800_000

    c = tmp_path / "BTCUSDT-1h-ohlc.csv"
    c.write_text("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
                 "taker_buy_quote_volume,ignore\n"
                 "2024-01-01T00:00:00.000,42314.0,42603.2,42289.6,42503.5,8459.477,2024-01-01T00:59:59.999,"
                 "1,1,1,1,0\n")
    r = load_candles(c)
    assert r.candles == [Candle("BTCUSDT", JAN_2024, 42314.0, 42603.2, 42289.6, 42503.5, 8459.477, "1h")]


def test_multi_ticker_file_is_split_and_merged(tmp_path: Path) -> None:
    p = tmp_path / "mixed_1h.csv"
    p.write_text("date,open,high,low,close,volume,ticker\n"
                 "2024-01-01 00:00:00,10,11,9,10,1,AAAUSDT\n"
                 "2024-01-01 00:00:00,20,21,19,20,1,BBBUSDT\n"
                 "2024-01-01 01:00:00,10,11,9,10,1,AAAUSDT\n"
                 "2024-01-01 02:00:00,20,21,19,20,1,BBBUSDT\n")
    r = load_candles(p)
    assert r.symbols == ("AAAUSDT", "BBBUSDT")
    assert [(c.symbol, c.open_time) for c in r.candles] == [
        ("AAAUSDT", JAN_2024), ("BBBUSDT", JAN_2024), ("AAAUSDT", JAN_2024 + H), ("BBBUSDT", JAN_2024 + 2 * H)
    ]
    assert [(g.symbol, g.missing_bars) for g in r.gaps] == [("BBBUSDT", 1)]


def test_malformed_rows_are_counted_never_raised(tmp_path: Path) -> None:
    rows = _kline_rows(JAN_2025, 12, unit=1000)
    rows[1] = "garbage,row"  # too few fields -> NaN prices
    rows[2] = rows[2].replace(",1.25000000,", ",-1.0,")  # negative volume
    rows[3] = rows[3].split(",", 1)[0] + ",nan,1,1,1,1,0,0,0,0,0,0"  # NaN open
    rows[4] = rows[4] + ",1,2,3"  # too many fields: the parser drops the line
    rows[6] = rows[5]  # duplicate
    rows[8] = _kline_rows(JAN_2025, 1, unit=1000)[0]  # backwards
    rows[9] = rows[9].replace("94009.00000000,94011.50000000", "94009.00000000,94000.00000000")  # high < open
    p = tmp_path / "BTCUSDT-1m-2025-01.csv"
    p.write_text("\n".join(rows) + "\n\n")  # trailing blank line is not a row
    r = load_candles(p)
    assert r.rejected == {
        "bad open_time": 1,
        "negative volume": 1,
        "non-finite value": 1,
        "malformed row": 1,
        "duplicate open_time": 1,
        "open_time went backwards": 1,
        "high below open/close/low": 1,
    }
    assert r.report.total == 12 and r.report.accepted == 5
    assert len(r.report.rejections) == 7
    assert [c.open_time for c in r.candles] == [JAN_2025 + i * M for i in (0, 5, 7, 10, 11)]
    assert validate_series(r.candles).accepted == 5


def test_garbage_first_line_and_invalid_bytes_do_not_sink_the_file(tmp_path: Path) -> None:
    rows = _kline_rows(JAN_2025, 5, unit=1000)
    p = tmp_path / "BTCUSDT-1m-2025-01.csv"
    p.write_bytes(b"oops\n" + "\n".join(rows).encode() + b"\n\xff\xfe\x00,1,2\n")
    r = load_candles(p)
    assert r.report.accepted == 5
    assert r.rejected == {"bad open_time": 2}


def test_empty_and_unknown_files(tmp_path: Path) -> None:
    e = tmp_path / "BTCUSDT-1m-2025-01.csv"
    e.write_text("")
    r = load_candles(e)
    assert r.candles == [] and r.interval == "1m"
    bad = tmp_path / "notes.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError):
        load_candles(bad)
    with pytest.raises(ValueError):
        load_candles(e, interval="7m")


def test_large_file_loads(tmp_path: Path) -> None:
    # Vectorised path smoke test (1,000,000 rows take a few seconds; 100k keeps the suite fast).
    n = 100_000
    t = (JAN_2025 + M * np.arange(n)) * 1000
    o = 90_000 + np.arange(n) * 0.01
    body = "\n".join(
        f"{a},{b:.2f},{b + 5:.2f},{b - 5:.2f},{b + 1:.2f},1.5,0,0,0,0,0,0" for a, b in zip(t.tolist(), o.tolist())
    )
    p = tmp_path / "BTCUSDT-1m-2025-01.csv"
    p.write_text(body + "\n")
    r = load_candles(p)
    assert r.report.accepted == n and not r.gaps
    assert r.candles[-1].open_time == JAN_2025 + (n - 1) * M


# -- aggregation ---------------------------------------------------------------------------------
def _minutes(n: int, start: int = 0, sym: str = "BTCUSDT") -> list[Candle]:
    return [Candle(sym, start + i * M, 100.0 + i, 100.5 + i + (i % 3), 99.0 + i - (i % 2), 100.2 + i, 1.0 + i)
            for i in range(n)]


def test_aggregate_values_and_partial_bucket() -> None:
    ms = _minutes(12)
    five = aggregate(ms, "5m")
    assert [c.open_time for c in five] == [0, 300_000]  # 10..11 is a partial trailing bucket
    first = five[0]
    assert first == Candle("BTCUSDT", 0, 100.0, max(c.high for c in ms[:5]), min(c.low for c in ms[:5]),
                           104.2, sum(c.volume for c in ms[:5]), "5m")
    with_partial = aggregate(ms, "5m", include_partial=True)
    assert len(with_partial) == 3 and with_partial[-1].close == ms[-1].close
    assert with_partial[-1].volume == ms[10].volume + ms[11].volume


def test_aggregate_alignment_gaps_symbols_and_errors() -> None:
    day = 86_400_000
    ms = _minutes(2 * 24 * 60, start=day - 30 * M)  # starts 30 min before a UTC midnight
    daily = aggregate(ms, "1d")
    assert [c.open_time for c in daily] == [0, day]  # leading partial kept, trailing partial dropped
    assert daily[1].open == ms[30].open
    four_h = aggregate(ms, "4h")
    assert all(c.open_time % (4 * H) == 0 for c in four_h)

    gappy = [c for c in _minutes(15) if c.open_time not in (6 * M, 7 * M)]
    assert [c.volume for c in aggregate(gappy, "5m")] == [15.0, 40.0 - 7 - 8, 65.0]

    two = _minutes(10, sym="BTCUSDT") + _minutes(10, sym="ETHUSDT")
    out = aggregate(two, "5m")
    assert [(c.open_time, c.symbol) for c in out] == [
        (0, "BTCUSDT"), (0, "ETHUSDT"), (300_000, "BTCUSDT"), (300_000, "ETHUSDT")
    ]
    assert aggregate([], "1h") == []
    with pytest.raises(ValueError):
        aggregate([Candle("X", 0, 1, 1, 1, 1, 1, "3m")], "5m")
    with pytest.raises(ValueError):
        aggregate(ms, "2w")
    assert not math.isnan(sum(c.volume for c in out))
