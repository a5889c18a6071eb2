"""Historical candles from files: format auto-detection, fast parsing, validation, merging.

`load_candles` reads one CSV (or a .zip holding one CSV) in any of the layouts we meet:

* data.binance.vision klines (12 columns; spot files have no header and, from 2025,
  microsecond timestamps; futures files have a header),
* `date,open,high,low,close,volume,ticker` (naive 'YYYY-MM-DD HH:MM:SS', UTC),
* `timestamp,open,high,low,close,volume` ('YYYY-MM-DD HH:MM:SS+0000'),
* `timestamp(epoch ms),open,...` (11 kline columns),
* `open_time(ISO string),open,...` (12 kline columns).

Parsing is vectorised (pandas/numpy) and rows go through the vectorised path of
`CandleValidator`, so a million-row file loads in seconds and a malformed row is counted,
never raised. `iter_merged` interleaves several symbols in one global time order.
"""
from __future__ import annotations

import heapq
import io
import os
import re
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.types import INTERVAL_MS, Candle
from market.validate import MALFORMED_ROW, CandleValidator, Gap, Rejection, ValidationReport

_KLINE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time",
    "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)
_TIME_COLUMNS = ("open_time", "timestamp", "date", "datetime", "time", "opentime", "open time")
_SYMBOL_COLUMNS = ("ticker", "symbol", "pair")
_HEADER_WORDS = {"open", "high", "low", "close", "volume", *_TIME_COLUMNS}
_MS_TO_INTERVAL = {ms: name for name, ms in INTERVAL_MS.items()}
_INT64_MIN = np.iinfo(np.int64).min


@dataclass(slots=True)
class LoadResult:
    """One loaded file: what was detected and the validated candles."""

    path: Path
    symbols: tuple[str, ...]
    interval: str
    source_format: str  # human-readable description of the detected layout
    report: ValidationReport

    @property
    def symbol(self) -> str:
        return self.symbols[0] if self.symbols else ""

    @property
    def candles(self) -> list[Candle]:
        return self.report.candles

    @property
    def gaps(self) -> list[Gap]:
        return self.report.gaps

    @property
    def rejected(self) -> Counter[str]:
        return self.report.rejected


def shared_market_dir() -> Path | None:
    """Where the shared real-market CSVs live, or None (fresh clones do not have them).

    BOT_MARKET_DATA wins when set; otherwise <repo>/../shared/data/market.
    """
    env = os.environ.get("BOT_MARKET_DATA")
    if env:
        p = Path(env).expanduser()
        return p if p.is_dir() else None
    p = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "market"
    return p if p.is_dir() else None


def iter_merged(series: Iterable[Iterable[Candle]]) -> Iterator[Candle]:
    """Several per-symbol series in one global time order (ties ordered by symbol).

    Each input series must already be in time order; heapq.merge is lazy, so this works
    on generators and big lists without copying them.
    """
    return heapq.merge(*series, key=lambda c: (c.open_time, c.symbol))


def load_candles(path: str | Path, symbol: str | None = None, interval: str | None = None) -> LoadResult:
    """Load and validate one candle file (CSV or a zip with one CSV); see module docstring.

    symbol: argument, else a ticker/symbol column, else the file name.
    interval: argument, else the file name, else close_time - open_time, else the most
    common timestamp step. Raises ValueError only for caller-level problems (unknown
    layout, symbol/interval impossible to infer); bad rows are rejected and counted.
    """
    path = Path(path)
    if interval is not None and interval not in INTERVAL_MS:
        raise ValueError(f"unknown interval {interval!r}")
    data, names = _read_bytes(path)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    head = data.lstrip()[:4096].split(b"\n", 1)[0]
    first = head.decode("utf-8", "replace")
    fields = [f.strip().strip('"').lower() for f in first.split(",")]
    has_header = any(f in _HEADER_WORDS for f in fields)
    name_symbol, name_interval = _from_names(names)

    df = _read_frame(data, has_header, path)
    if df is None or df.empty:
        iv = interval or name_interval
        if iv is None:
            raise ValueError(f"{path}: no data rows and no interval in the file name")
        sym = symbol or name_symbol or ""
        report = ValidationReport()
        skipped = _count_lines(data) - (1 if has_header else 0)
        _add_unparsed(report, sym, skipped)
        return LoadResult(path, (sym,) if sym else (), iv, "empty", report)

    cols = _map_columns(df, has_header, path)
    n = len(df)
    t, t_ok, time_kind = _parse_time(df[cols["time"]])

    # Symbol per row.
    if symbol is not None:
        sym_arr = None
        symbols: tuple[str, ...] = (symbol,)
    elif "symbol" in cols:
        fallback = name_symbol or "UNKNOWN"
        sym_series = df[cols["symbol"]].astype(object).where(df[cols["symbol"]].notna(), fallback)
        sym_arr = sym_series.astype(str).str.strip().str.upper().to_numpy(dtype=object)
        symbols = tuple(pd.unique(sym_arr).tolist())
        if len(symbols) == 1:
            sym_arr = None
    else:
        if name_symbol is None:
            raise ValueError(f"{path}: cannot infer the symbol from the file name; pass symbol=")
        sym_arr = None
        symbols = (name_symbol,)

    # Interval.
    iv = interval or name_interval
    if iv is None and "close_time" in cols:
        ct, ct_ok, _ = _parse_time(df[cols["close_time"]])
        iv = _mode_interval((ct - t + 1)[t_ok & ct_ok])
    if iv is None:
        iv = _mode_interval(np.diff(t[t_ok]) if sym_arr is None else _per_symbol_diffs(t, t_ok, sym_arr))
    if iv is None:
        raise ValueError(f"{path}: cannot infer the interval; pass interval=")

    prices = [_numeric(df[cols[k]]) for k in ("open", "high", "low", "close", "volume")]

    validator = CandleValidator(keep_rejections=0)
    report = ValidationReport(total=n)
    groups = [(symbols[0], None)] if sym_arr is None else [(s, np.nonzero(sym_arr == s)[0]) for s in symbols]
    per_symbol: list[list[Candle]] = []
    for sym, idx in groups:
        sel = (lambda a: a) if idx is None else (lambda a, idx=idx: a[idx])
        ts, ok = sel(t), sel(t_ok)
        o, h, lo, c, v = (sel(a) for a in prices)
        accepted, reasons, _ = validator.check_arrays(sym, iv, ts, o, h, lo, c, v, time_ok=ok)
        per_symbol.append(_make_candles(sym, iv, ts[accepted], o[accepted], h[accepted], lo[accepted],
                                        c[accepted], v[accepted]))
        for i in np.nonzero(~accepted)[0].tolist():
            report.rejections.append(Rejection(sym, int(ts[i]) if ok[i] else None, reasons[i]))
    report.candles = per_symbol[0] if len(per_symbol) == 1 else list(iter_merged(per_symbol))
    report.gaps = list(validator.gaps)
    report.rejected = Counter(validator.rejected)

    # Lines the CSV parser skipped (wrong number of fields) never became rows: count them.
    header_lines = 1 if has_header else 0
    skipped = _count_lines(data, at_least=n + header_lines) - header_lines - n
    _add_unparsed(report, symbols[0], skipped)

    layout = "header" if has_header else "headerless (data.binance.vision spot)"
    fmt = f"{layout}; time column {cols['time']!r} as {time_kind}"
    return LoadResult(path, symbols, iv, fmt, report)


# -- helpers ---------------------------------------------------------------------------------
def _read_bytes(path: Path) -> tuple[bytes, list[str]]:
    """File content and the names to infer symbol/interval from (inner name first)."""
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as zf:
            members = [
                m for m in zf.namelist()
                if not m.endswith("/") and not m.startswith("__MACOSX") and m.lower().endswith((".csv", ".txt"))
            ]
            if len(members) != 1:
                raise ValueError(f"{path}: expected exactly one CSV inside the zip, found {members}")
            return zf.read(members[0]), [Path(members[0]).stem, path.stem]
    return path.read_bytes(), [path.stem]


def _from_names(names: list[str]) -> tuple[str | None, str | None]:
    symbol = interval = None
    for name in names:
        tokens = [t for t in re.split(r"[-_.\s]+", name) if t]
        if interval is None:
            interval = next((t for t in tokens if t in INTERVAL_MS), None)
        if symbol is None:
            # First token with letters that is not an interval or a marker like "ohlc".
            symbol = next(
                (t.upper() for t in tokens
                 if re.fullmatch(r"[A-Za-z0-9]{5,}", t) and re.search(r"[A-Za-z]{3}", t)
                 and t not in INTERVAL_MS and t.lower() not in {"ohlc", "ohlcv", "klines", "candles", "data"}),
                None,
            )
    return symbol, interval


def _read_frame(data: bytes, has_header: bool, path: Path) -> pd.DataFrame | None:
    names = None
    if not has_header:
        # Take the column count from the most common field count of the first lines, so
        # one malformed first line cannot make the parser drop every following line.
        sample = [ln for ln in data[:65536].split(b"\n")[:50] if ln.strip()]
        if sample:
            counts = Counter(ln.count(b",") + 1 for ln in sample)
            names = list(range(counts.most_common(1)[0][0]))
    try:
        return pd.read_csv(
            io.BytesIO(data),
            header=0 if has_header else None,
            names=names,
            on_bad_lines="skip",  # counted afterwards by comparing line counts
            skip_blank_lines=True,
            low_memory=False,
            encoding_errors="replace",  # garbled bytes become rejected rows, not a crash
        )
    except pd.errors.EmptyDataError:
        return None
    except pd.errors.ParserError as e:  # e.g. an unterminated quote: the file itself is broken
        raise ValueError(f"{path}: unparseable CSV: {e}") from e


def _map_columns(df: pd.DataFrame, has_header: bool, path: Path) -> dict[str, object]:
    """Logical name -> actual DataFrame column label."""
    if not has_header:
        if df.shape[1] < 6:
            raise ValueError(f"{path}: headerless file with {df.shape[1]} columns; expected kline layout")
        out: dict[str, object] = {"time": 0, "open": 1, "high": 2, "low": 3, "close": 4, "volume": 5}
        if df.shape[1] >= 7:
            out["close_time"] = 6
        return out
    lower = {str(c).strip().lower(): c for c in df.columns}
    out = {}
    time_col = next((lower[c] for c in _TIME_COLUMNS if c in lower), None)
    if time_col is None:
        raise ValueError(f"{path}: no time column among {list(df.columns)}")
    out["time"] = time_col
    for k in ("open", "high", "low", "close", "volume"):
        if k not in lower:
            raise ValueError(f"{path}: missing column {k!r} in {list(df.columns)}")
        out[k] = lower[k]
    if "close_time" in lower:
        out["close_time"] = lower["close_time"]
    sym_col = next((lower[c] for c in _SYMBOL_COLUMNS if c in lower), None)
    if sym_col is not None:
        out["symbol"] = sym_col
    return out


def _numeric(s: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _parse_time(s: pd.Series) -> tuple[np.ndarray, np.ndarray, str]:
    """(epoch-ms int64, parsed-ok mask, description). Epoch numbers or datetime strings."""
    if pd.api.types.is_integer_dtype(s.dtype):
        return _epoch_to_ms(s.to_numpy(dtype=np.int64), np.ones(len(s), dtype=bool)), np.ones(len(s), bool), "epoch"
    num = s if pd.api.types.is_numeric_dtype(s.dtype) else pd.to_numeric(s, errors="coerce")
    num_ok = num.notna().to_numpy()
    if num_ok.sum() * 2 >= max(int(s.notna().sum()), 1) and num_ok.any():
        f = num.to_numpy(dtype=np.float64, na_value=np.nan)
        ok = np.isfinite(f) & (np.abs(f) < 9e18)
        # float64 is exact for ms and us epochs (< 2**53); ns epochs lose < 1 us, fine.
        ints = np.where(ok, f, 0).astype(np.int64)
        return _epoch_to_ms(ints, ok), ok, "epoch"
    dt = pd.to_datetime(s, utc=True, format="ISO8601", errors="coerce")
    ok = dt.notna().to_numpy()
    ms = dt.dt.tz_convert(None).to_numpy().astype("datetime64[ms]").astype(np.int64)
    return np.where(ok, ms, 0), ok, "datetime (UTC)"


def _epoch_to_ms(t: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Per-row unit detection by magnitude: seconds, ms, us (data.binance.vision 2025+), ns."""
    a = np.abs(t)
    out = np.where(a >= 10**17, t // 1_000_000, np.where(a >= 10**14, t // 1_000, np.where(a >= 10**11, t, t * 1_000)))
    return np.where(ok, out, 0).astype(np.int64)


def _mode_interval(steps: np.ndarray) -> str | None:
    steps = steps[steps > 0]
    if not len(steps):
        return None
    values, counts = np.unique(steps, return_counts=True)
    return _MS_TO_INTERVAL.get(int(values[np.argmax(counts)]))


def _per_symbol_diffs(t: np.ndarray, ok: np.ndarray, sym_arr: np.ndarray) -> np.ndarray:
    parts = [np.diff(t[ok & (sym_arr == s)]) for s in pd.unique(sym_arr)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _make_candles(sym: str, iv: str, t: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray,
                  c: np.ndarray, v: np.ndarray) -> list[Candle]:
    # tolist() hands back plain Python ints/floats, which is much faster than numpy scalars.
    return [
        Candle(sym, ti, oi, hi, li, ci, vi, iv)
        for ti, oi, hi, li, ci, vi in zip(t.tolist(), o.tolist(), h.tolist(), lo.tolist(), c.tolist(), v.tolist())
    ]


def _count_lines(data: bytes, at_least: int = -1) -> int:
    """Non-blank lines. A memchr-speed upper bound first; the exact (slower) count only when
    the bound exceeds `at_least`, i.e. when there may be blank or skipped lines."""
    body = data.strip()
    if not body:
        return 0
    upper = body.count(b"\n") + 1
    if upper <= at_least:
        return upper
    return sum(1 for ln in body.split(b"\n") if ln.strip())


def _add_unparsed(report: ValidationReport, symbol: str, count: int) -> None:
    if count <= 0:
        return
    report.total += count
    report.rejected[MALFORMED_ROW] += count
    report.rejections.extend(Rejection(symbol, None, MALFORMED_ROW) for _ in range(count))
