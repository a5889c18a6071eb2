"""Candle validation: the gate every candle passes before anything trades on it.

`CandleValidator` keeps per-(symbol, interval) state and decides, candle by candle, whether
a candle is accepted or rejected (with a reason). Gaps are accepted but recorded. The same
rules exist in a vectorised form (`check_arrays`) so files with a million rows load fast;
both paths share the reason strings below and must agree.

`validate_series` runs a whole list through a fresh validator and returns a
`ValidationReport` (used for files and tests).
"""
from __future__ import annotations

import numbers
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from core.types import INTERVAL_MS, Candle

# Reason strings. Content reasons are the ones Candle.problems() produces, so a candle
# rejected by either path is counted under the same key.
BAD_OPEN_TIME = "bad open_time"
NON_FINITE = "non-finite value"
NON_POSITIVE = "non-positive price"
NEGATIVE_VOLUME = "negative volume"
HIGH_INCONSISTENT = "high below open/close/low"
LOW_INCONSISTENT = "low above open/close/high"
UNKNOWN_INTERVAL = "unknown interval"
MISALIGNED = "open_time not aligned to interval"
DUPLICATE = "duplicate open_time"
BACKWARDS = "open_time went backwards"
MALFORMED = "malformed candle"
MALFORMED_ROW = "malformed row"  # a file line the CSV parser could not even split

_INT64_MIN = np.iinfo(np.int64).min


@dataclass(slots=True, frozen=True)
class Rejection:
    symbol: str
    open_time: int | None  # None when the row had no usable timestamp
    reason: str


@dataclass(slots=True, frozen=True)
class Gap:
    """Accepted candles that are not contiguous: `missing_bars` bars were never seen."""

    symbol: str
    after_open_time: int  # last accepted bar before the hole
    before_open_time: int  # first accepted bar after the hole
    missing_bars: int


@dataclass(slots=True)
class ValidationReport:
    candles: list[Candle] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    total: int = 0  # rows/candles seen, accepted or not

    @property
    def accepted(self) -> int:
        return len(self.candles)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def missing_bars(self) -> int:
        return sum(g.missing_bars for g in self.gaps)


@dataclass(slots=True)
class _SeriesState:
    last_open_time: int | None = None


class CandleValidator:
    """Accepts or rejects candles; never raises on bad data.

    State is per (symbol, interval) so one validator can guard a multi-symbol feed.
    Only the last `keep_rejections` rejections are kept (a live feed runs for weeks);
    the `rejected` counter is complete.
    """

    def __init__(self, keep_rejections: int = 1000) -> None:
        self.rejected: Counter[str] = Counter()
        self.gaps: list[Gap] = []
        self.accepted: int = 0
        self.recent_rejections: deque[Rejection] = deque(maxlen=keep_rejections)
        self._state: dict[tuple[str, str], _SeriesState] = {}

    # -- state ---------------------------------------------------------------------------
    def last_open_time(self, symbol: str, interval: str) -> int | None:
        st = self._state.get((symbol, interval))
        return st.last_open_time if st else None

    def seed(self, symbol: str, interval: str, last_open_time: int) -> None:
        """Declare a bar as already seen (e.g. the last stored candle before a restart),
        so duplicates and backwards times across the restart are still caught."""
        self._state.setdefault((symbol, interval), _SeriesState()).last_open_time = int(last_open_time)

    # -- scalar path ---------------------------------------------------------------------
    def check(self, candle: Candle) -> Rejection | None:
        """None when accepted; a Rejection (already counted) otherwise."""
        try:
            reason = self._reason(candle)
        except Exception:  # a candle built from garbage must not take the feed down
            reason = MALFORMED
        if reason is not None:
            ot = getattr(candle, "open_time", None)
            ok_time = isinstance(ot, numbers.Integral) and not isinstance(ot, bool)
            rej = Rejection(str(getattr(candle, "symbol", "?")), int(ot) if ok_time else None, reason)
            self._record(rej)
            return rej
        self._accept(candle)
        return None

    def _reason(self, c: Candle) -> str | None:
        # numpy integers are fine (numbers.Integral); bools and floats are not timestamps.
        if not isinstance(c.open_time, numbers.Integral) or isinstance(c.open_time, bool) or c.open_time < 0:
            return BAD_OPEN_TIME
        problems = c.problems()
        if problems:
            # Several problems can coexist; the first one names the rejection.
            return UNKNOWN_INTERVAL if problems[0].startswith("unknown interval") else problems[0]
        if c.open_time % INTERVAL_MS[c.interval]:
            return MISALIGNED
        last = self.last_open_time(c.symbol, c.interval)
        if last is not None:
            if c.open_time == last:
                return DUPLICATE
            if c.open_time < last:
                return BACKWARDS
        return None

    def _accept(self, c: Candle) -> None:
        st = self._state.setdefault((c.symbol, c.interval), _SeriesState())
        step = INTERVAL_MS[c.interval]
        if st.last_open_time is not None and c.open_time > st.last_open_time + step:
            self.gaps.append(
                Gap(c.symbol, st.last_open_time, c.open_time, (c.open_time - st.last_open_time) // step - 1)
            )
        st.last_open_time = int(c.open_time)
        self.accepted += 1

    def _record(self, rej: Rejection) -> None:
        self.rejected[rej.reason] += 1
        self.recent_rejections.append(rej)

    def reject_unparsed(self, symbol: str, count: int, reason: str = MALFORMED_ROW) -> None:
        """Count rows that never became candles (e.g. lines with too many fields)."""
        if count > 0:
            self.rejected[reason] += count
            self.recent_rejections.append(Rejection(symbol, None, reason))

    # -- vectorised path -----------------------------------------------------------------
    def check_arrays(
        self,
        symbol: str,
        interval: str,
        open_time: np.ndarray,
        open_: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
        time_ok: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, list[Gap]]:
        """Validate one series of rows in file order, exactly like calling check() per row.

        Returns (accepted mask, reason per row ('' when accepted), gaps found). Updates the
        counters and state. `time_ok` marks rows whose timestamp parsed at all.
        """
        if interval not in INTERVAL_MS:
            raise ValueError(f"unknown interval {interval!r}")
        step = INTERVAL_MS[interval]
        n = len(open_time)
        t = np.asarray(open_time, dtype=np.int64)
        o, h, lo, c, v = (np.asarray(a, dtype=np.float64) for a in (open_, high, low, close, volume))
        t_ok = np.ones(n, dtype=bool) if time_ok is None else np.asarray(time_ok, dtype=bool)
        t_ok = t_ok & (t >= 0)

        with np.errstate(invalid="ignore"):
            finite = np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c) & np.isfinite(v)
            non_pos = np.minimum(np.minimum(o, h), np.minimum(lo, c)) <= 0
            neg_vol = v < 0
            high_bad = h < np.maximum(np.maximum(o, c), lo)
            low_bad = lo > np.minimum(np.minimum(o, c), h)
        misaligned = (t % step) != 0

        # Priority order matches _reason(): the first true condition names the rejection.
        content_conds = [~t_ok, ~finite, non_pos, neg_vol, high_bad, low_bad, misaligned]
        content_names = [BAD_OPEN_TIME, NON_FINITE, NON_POSITIVE, NEGATIVE_VOLUME,
                         HIGH_INCONSISTENT, LOW_INCONSISTENT, MISALIGNED]
        eligible = ~np.logical_or.reduce(content_conds) if n else np.zeros(0, dtype=bool)

        # Ordering: a rejected (dup/backwards) row never exceeds the running max, so the
        # running max over eligible rows equals the last accepted open_time.
        st = self._state.setdefault((symbol, interval), _SeriesState())
        seed = st.last_open_time if st.last_open_time is not None else _INT64_MIN
        cm = np.maximum.accumulate(np.where(eligible, t, _INT64_MIN)) if n else t
        prev = np.empty(n, dtype=np.int64)
        if n:
            prev[0] = seed
            prev[1:] = np.maximum(cm[:-1], seed)
        dup = eligible & (t == prev)
        back = eligible & (t < prev)
        accepted = eligible & (t > prev)

        reasons = np.select(content_conds + [dup, back], content_names + [DUPLICATE, BACKWARDS], default="")
        reasons = reasons.astype(object)

        acc_t = t[accepted]
        gaps: list[Gap] = []
        if len(acc_t):
            chain = acc_t if st.last_open_time is None else np.concatenate(([st.last_open_time], acc_t))
            d = np.diff(chain)
            for i in np.nonzero(d > step)[0]:
                gaps.append(Gap(symbol, int(chain[i]), int(chain[i + 1]), int(d[i] // step - 1)))
            st.last_open_time = int(acc_t[-1])
        self.gaps.extend(gaps)
        self.accepted += int(accepted.sum())

        rej_idx = np.nonzero(~accepted)[0]
        if len(rej_idx):
            names, counts = np.unique(reasons[rej_idx].astype(str), return_counts=True)
            for name, cnt in zip(names.tolist(), counts.tolist()):
                self.rejected[name] += cnt
            keep = self.recent_rejections.maxlen or 0
            for i in rej_idx[len(rej_idx) - keep:] if keep else ():
                self.recent_rejections.append(Rejection(symbol, int(t[i]) if t_ok[i] else None, reasons[i]))
        return accepted, reasons, gaps


def validate_series(candles: Iterable[Candle]) -> ValidationReport:
    """Run candles (any symbols, in the given order) through a fresh validator."""
    v = CandleValidator(keep_rejections=0)
    report = ValidationReport()
    for c in candles:
        report.total += 1
        rej = v.check(c)
        if rej is None:
            report.candles.append(c)
        else:
            report.rejections.append(rej)
    report.gaps = list(v.gaps)
    report.rejected = Counter(v.rejected)
    return report

