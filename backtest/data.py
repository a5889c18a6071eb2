"""Backtest data: candle files loaded into numpy columns per symbol (``SymbolData``), what validation
found in each file, the choice of data for a run (files, the config's replay files, or the seeded
synthetic market), and time parsing."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from core.types import Candle
from market.replay import load_candles
from market.validate import ValidationReport
from settings import AppConfig

DATA_SUFFIXES = (".csv", ".zip")


@dataclass(slots=True)
class SymbolData:
    """One symbol's candles as numpy columns (time-ordered, validated)."""

    symbol: str
    interval: str
    times: np.ndarray  # open_time, epoch ms, int64
    opens: np.ndarray
    highs: np.ndarray
    lows: np.ndarray
    closes: np.ndarray
    volumes: np.ndarray
    _candles: list[Candle] | None = None

    def __len__(self) -> int:
        return len(self.times)

    @classmethod
    def from_candles(cls, candles: Sequence[Candle]) -> "SymbolData":
        if not candles:
            raise ValueError("no candles")
        sym, iv = candles[0].symbol, candles[0].interval
        cols = np.array([(c.open, c.high, c.low, c.close, c.volume) for c in candles], dtype=np.float64)
        times = np.fromiter((c.open_time for c in candles), dtype=np.int64, count=len(candles))
        out = cls(sym, iv, times, *(np.ascontiguousarray(cols[:, k]) for k in range(5)))
        out._candles = list(candles)
        return out

    def candle(self, i: int) -> Candle:
        if self._candles is not None:
            return self._candles[i]
        return Candle(self.symbol, int(self.times[i]), float(self.opens[i]), float(self.highs[i]),
                      float(self.lows[i]), float(self.closes[i]), float(self.volumes[i]), self.interval)

    def candles(self) -> list[Candle]:
        if self._candles is None:
            self._candles = [
                Candle(self.symbol, t, o, h, lo, c, v, self.interval)
                for t, o, h, lo, c, v in zip(self.times.tolist(), self.opens.tolist(), self.highs.tolist(),
                                             self.lows.tolist(), self.closes.tolist(), self.volumes.tolist())
            ]
        return self._candles

    def between(self, start_ms: int | None = None, end_ms: int | None = None) -> "SymbolData":
        """Candles with start_ms <= open_time < end_ms (None: unbounded)."""
        a = 0 if start_ms is None else int(np.searchsorted(self.times, start_ms, "left"))
        b = len(self) if end_ms is None else int(np.searchsorted(self.times, end_ms, "left"))
        out = SymbolData(self.symbol, self.interval, self.times[a:b], self.opens[a:b], self.highs[a:b],
                         self.lows[a:b], self.closes[a:b], self.volumes[a:b])
        if self._candles is not None:
            out._candles = self._candles[a:b]
        return out

    def head(self, n: int) -> "SymbolData":
        """The first n candles (used by the lookahead detector)."""
        return self.between(None, int(self.times[n]) if n < len(self) else None)


@dataclass(slots=True)
class LoadedData:
    """Candles per symbol plus what validation found in each file."""

    symbols: dict[str, SymbolData]
    reports: list[tuple[str, ValidationReport]] = field(default_factory=list)


def data_files(path: str | Path) -> list[Path]:
    """A file, or every .csv/.zip under a directory (recursively, sorted)."""
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in DATA_SUFFIXES)
    if not p.exists():
        raise FileNotFoundError(f"no such data file or directory: {p}")
    return [p]


def load_data(paths: Iterable[str | Path], start_ms: int | None = None, end_ms: int | None = None,
              symbols: Iterable[str] | None = None, interval: str | None = None) -> LoadedData:
    """Load candle files (market.replay.load_candles), merge files of one symbol (later files
    win on duplicate times), keep [start_ms, end_ms). ``symbols`` restricts what is kept;
    ``interval`` skips files of other intervals (needed when a directory holds several)."""
    wanted = set(symbols) if symbols is not None else None
    by_symbol: dict[str, dict[int, Candle]] = {}
    intervals: dict[str, str] = {}
    reports: list[tuple[str, ValidationReport]] = []
    for path in paths:
        res = load_candles(path)
        if (wanted is not None and not wanted.intersection(res.symbols)) or (interval and res.interval != interval):
            continue
        reports.append((str(path), res.report))
        for c in res.candles:
            if wanted is not None and c.symbol not in wanted:
                continue
            if intervals.setdefault(c.symbol, c.interval) != c.interval:
                raise ValueError(f"{path}: {c.symbol} is {c.interval} here but {intervals[c.symbol]} elsewhere; "
                                 "pick one with --interval")
            by_symbol.setdefault(c.symbol, {})[c.open_time] = c
    out: dict[str, SymbolData] = {}
    for sym, rows in by_symbol.items():
        series = [rows[t] for t in sorted(rows)]
        data = SymbolData.from_candles(series).between(start_ms, end_ms)
        if len(data):
            out[sym] = data
    return LoadedData(out, reports)


def parse_time(text: str | None) -> int | None:
    """'2024-01-31', '2024-01-31T12:00' or epoch ms -> epoch ms (UTC)."""
    if text is None or text == "":
        return None
    if text.isdigit():
        return int(text)
    import pandas as pd

    ts = pd.Timestamp(text)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000)


def resolve_data(app: AppConfig, data: list[str], start: int | None, end: int | None, symbols: list[str],
                 interval: str | None = None, bars: int = 20_000) -> LoadedData:
    """Candles for a run: the given files/directories; else the config's replay files; else
    ``bars`` candles of the config's seeded synthetic market."""
    paths = [f for d in data for f in data_files(d)] if data else []
    if not paths and app.market.source == "replay":
        paths = [f for d in app.market.replay_files for f in data_files(d)]
    if paths:
        loaded = load_data(paths, start, end, symbols or None, interval)
        if not loaded.symbols:
            raise ValueError(f"no candles for {', '.join(symbols) or 'any symbol'} in {len(paths)} file(s)"
                             + (" in the --from/--to range" if start or end else ""))
        return loaded
    from market.synthetic import DEFAULT_SYMBOLS, SyntheticMarket

    syms = symbols or list(app.market.symbols)
    market = SyntheticMarket({s: DEFAULT_SYMBOLS.get(s, 100.0) for s in syms}, seed=app.market.seed,
                             interval=app.market.interval)
    step = market._step_ms  # noqa: SLF001 - the market's own bar length
    end_open = (end or 1_704_067_200_000) - step
    end_open -= end_open % step
    hist = market.history(bars, end_open)
    out = {s: SymbolData.from_candles(c).between(start, end) for s, c in hist.items() if c}
    return LoadedData({s: d for s, d in out.items() if len(d)})


def data_info(loaded: LoadedData) -> dict[str, list[dict[str, Any]]]:
    """What was loaded: per symbol, and the validation report per file (rejected rows, gaps)."""


    from market.quality import QualityConfig, series_quality

    rejected: dict[str, dict[str, int]] = {}  # per symbol and reason, from every file's loader report
    for _, rep in loaded.reports:
        for rej in rep.rejections:
            by = rejected.setdefault(rej.symbol, {})
            by[rej.reason] = by.get(rej.reason, 0) + 1
    rules = QualityConfig()
    symbols = [{"symbol": s, "interval": d.interval, "bars": len(d), "start": iso(int(d.times[0])),
                "end": iso(int(d.times[-1])),
                "quality": series_quality(d.times, d.highs, d.lows, d.closes, d.interval, rules, rejected.get(s))}
               for s, d in sorted(loaded.symbols.items())]
    files = [{"file": path, "rows": rep.total, "rejected": dict(rep.rejected), "gaps": len(rep.gaps)}
             for path, rep in loaded.reports]
    return {"symbols": symbols, "files": files}


def iso(ms: int | None) -> str | None:
    """Epoch ms -> 'YYYY-MM-DDTHH:MM:SSZ' (UTC)."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
