"""Seeded synthetic market: realistic candles for several symbols without any network.

`SyntheticMarket` produces log-returns with GARCH(1,1) volatility clustering, rare Poisson
jumps, a common market factor (alts correlated ~0.7 with BTC), an intrabar Brownian-bridge
path for high/low, and volume that grows with |return| and volatility. It is deterministic:
the same seed and the same sequence of calls give the same candles, and `history(n)` gives
exactly what n calls of `step()` would have given (each random stream is drawn with one
call per quantity, so batch and step-by-step draws consume the generators identically).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.types import INTERVAL_MS, Candle

_MINUTE_MS = 60_000


@dataclass(slots=True, frozen=True)
class SymbolProfile:
    """How one synthetic symbol behaves, per 1-minute bar."""

    vol: float  # unconditional per-minute log-return volatility
    beta: float  # loading on the market factor (correlation with it)
    notional_per_min: float  # typical calm quote volume per minute (USDT)


# Calibrated loosely on Binance spot 2024-2025 1m bars.
_PROFILES: dict[str, SymbolProfile] = {
    "BTCUSDT": SymbolProfile(vol=0.0008, beta=1.0, notional_per_min=700_000.0),
    "ETHUSDT": SymbolProfile(vol=0.0010, beta=0.90, notional_per_min=300_000.0),
    "BNBUSDT": SymbolProfile(vol=0.0009, beta=0.80, notional_per_min=30_000.0),
    "SOLUSDT": SymbolProfile(vol=0.0013, beta=0.85, notional_per_min=120_000.0),
}
_DEFAULT_PROFILE = SymbolProfile(vol=0.0012, beta=0.7, notional_per_min=50_000.0)

DEFAULT_SYMBOLS: dict[str, float] = {
    "BTCUSDT": 65_000.0,
    "ETHUSDT": 3_200.0,
    "BNBUSDT": 580.0,
    "SOLUSDT": 150.0,
}

# GARCH(1,1): s2' = omega + alpha * eps^2 + beta * s2. alpha + beta < 1 keeps it
# stationary; 0.98 gives clustering that lasts tens of minutes.
_GARCH_ALPHA = 0.08
_GARCH_BETA = 0.90
_VAR_CAP = 30.0  # cap on s2 / unconditional variance, so a jump cannot explode the path
_JUMP_PER_MIN = 1.0 / 4000.0  # ~ one jump every 2.8 days per symbol (market + own)
_JUMP_MEAN = 0.02  # mean absolute jump size (exponential), so "a few %"
_JUMP_FEEDBACK = 0.3  # share of a jump that feeds the GARCH variance (vol spike after it)
_VOLUME_NOISE = 0.35


@dataclass(slots=True)
class _Draw:
    """Price-free bar shapes for n steps x k symbols; prices are applied afterwards."""

    ret: np.ndarray  # total log return per bar
    up: np.ndarray  # log of high / open (>= max(0, ret))
    down: np.ndarray  # log of low / open (<= min(0, ret))
    vol_factor: np.ndarray  # multiplies the calm notional volume


class SyntheticMarket:
    """Seeded multi-symbol candle generator (see module docstring)."""

    def __init__(self, symbols: dict[str, float] | None = None, seed: int = 0, interval: str = "1m") -> None:
        if interval not in INTERVAL_MS:
            raise ValueError(f"unknown interval {interval!r}")
        prices = dict(DEFAULT_SYMBOLS if symbols is None else symbols)
        if not prices:
            raise ValueError("SyntheticMarket needs at least one symbol")
        for sym, p in prices.items():
            if not (math.isfinite(p) and p > 0):
                raise ValueError(f"start price for {sym} must be positive, got {p}")
        self.symbols: tuple[str, ...] = tuple(prices)
        self.interval = interval
        self.seed = seed
        self._step_ms = INTERVAL_MS[interval]
        minutes = self._step_ms / _MINUTE_MS
        profiles = [_PROFILES.get(s, _DEFAULT_PROFILE) for s in self.symbols]
        # Scale per-minute parameters to the bar length (sqrt-time for volatility).
        self._vol = np.array([p.vol for p in profiles]) * math.sqrt(minutes)
        self._beta = np.array([p.beta for p in profiles])
        self._notional = np.array([p.notional_per_min for p in profiles]) * minutes
        self._jump_p = min(0.5, _JUMP_PER_MIN * minutes)
        self._unc_var = self._vol**2
        self._omega = self._unc_var * (1.0 - _GARCH_ALPHA - _GARCH_BETA)
        self._s2 = self._unc_var.copy()
        # Tick: 0.01 like Binance USDT pairs; cheap coins need finer ticks to move at all.
        self._decimals = np.array([2 if p >= 10 else 4 if p >= 0.1 else 6 for p in prices.values()])
        self._last_close = np.array([round(p, int(d)) for p, d in zip(prices.values(), self._decimals)])
        # Independent streams: one draw call per stream per quantity keeps batch == step.
        ss = np.random.SeedSequence(seed)
        g_shock, g_jump, g_bridge, g_volume = (np.random.default_rng(s) for s in ss.spawn(4))
        self._g_shock, self._g_jump, self._g_bridge, self._g_volume = g_shock, g_jump, g_bridge, g_volume

    # -- public API ----------------------------------------------------------------------
    def last_close(self, symbol: str) -> float:
        return float(self._last_close[self._index(symbol)])

    def resume(self, symbol: str, last_close: float) -> None:
        """Continue `symbol` from a known close (e.g. the last stored candle after a restart)."""
        if not (math.isfinite(last_close) and last_close > 0):
            raise ValueError(f"last_close must be positive, got {last_close}")
        self._last_close[self._index(symbol)] = float(last_close)

    def step(self, open_time: int) -> list[Candle]:
        """The next candle of every symbol (in `symbols` order); open = previous close."""
        self._check_aligned(open_time)
        d = self._draw(1)
        by_sym = self._build(d, np.array([open_time], dtype=np.int64), self._last_close.copy(), None)
        return [by_sym[s][0] for s in self.symbols]

    def history(
        self, n: int, end_open_time: int, end_close: dict[str, float] | None = None
    ) -> dict[str, list[Candle]]:
        """n consecutive candles per symbol, the last one opening at end_open_time.

        Advances the market like n calls of step(). Without `end_close` the path starts at
        each symbol's current close; with it, the listed symbols' paths are scaled so their
        last close is exactly end_close[symbol] (warm-up history that leads into a resumed
        price). Either way the market continues from the last close returned.
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        self._check_aligned(end_open_time)
        if n == 0:
            return {s: [] for s in self.symbols}
        times = end_open_time - self._step_ms * np.arange(n - 1, -1, -1, dtype=np.int64)
        d = self._draw(n)
        end = None
        if end_close:
            end = np.full(len(self.symbols), np.nan)
            for sym, px in end_close.items():
                end[self._index(sym)] = float(px)
        return self._build(d, times, self._last_close.copy(), end)

    # -- internals -----------------------------------------------------------------------
    def _index(self, symbol: str) -> int:
        try:
            return self.symbols.index(symbol)
        except ValueError:
            raise KeyError(f"{symbol} is not in this synthetic market {self.symbols}") from None

    def _check_aligned(self, open_time: int) -> None:
        if open_time % self._step_ms:
            raise ValueError(f"open_time {open_time} is not aligned to {self.interval}")

    def _draw(self, n: int) -> _Draw:
        k = len(self.symbols)
        z = self._g_shock.standard_normal((n, k + 1))  # column 0: market factor
        shocks = self._beta * z[:, :1] + np.sqrt(1.0 - self._beta**2) * z[:, 1:]
        # Jumps: column 0 is a market-wide jump (hits every symbol, scaled by beta, as
        # crypto crashes do), the others are idiosyncratic; each half of the jump rate.
        ju = self._g_jump.random((n, k + 1, 3))  # occurrence, sign, size
        sizes = np.where(
            ju[:, :, 0] < 0.5 * self._jump_p,
            np.where(ju[:, :, 1] < 0.5, -1.0, 1.0) * -np.log1p(-ju[:, :, 2]) * _JUMP_MEAN,
            0.0,
        )
        jumps = self._beta * sizes[:, :1] + sizes[:, 1:]
        # The GARCH recursion is sequential by nature; everything else is vectorised.
        sig = np.empty((n, k))
        eps = np.empty((n, k))
        s2 = self._s2
        cap = self._unc_var * _VAR_CAP
        for i in range(n):
            sig[i] = np.sqrt(s2)
            eps[i] = sig[i] * shocks[i]
            feed = eps[i] + _JUMP_FEEDBACK * jumps[i]
            s2 = np.minimum(self._omega + _GARCH_ALPHA * feed * feed + _GARCH_BETA * s2, cap)
        self._s2 = s2
        ret = eps + jumps
        # Max / min of a Brownian bridge from 0 to ret with variance sig^2 (exact marginals).
        bu = self._g_bridge.random((n, k, 2))
        spread_up = np.sqrt(ret * ret - 2.0 * sig * sig * np.log1p(-bu[:, :, 0]))
        spread_dn = np.sqrt(ret * ret - 2.0 * sig * sig * np.log1p(-bu[:, :, 1]))
        up = 0.5 * (ret + spread_up)
        down = 0.5 * (ret - spread_dn)
        # Volume: lognormal noise x activity (busy when volatile and when the bar moved).
        vz = self._g_volume.standard_normal((n, k))
        noise = np.exp(_VOLUME_NOISE * vz - 0.5 * _VOLUME_NOISE**2)
        activity = (0.4 + 0.6 * sig / self._vol) * (0.5 + 0.8 * np.abs(ret) / self._vol)
        return _Draw(ret=ret, up=up, down=down, vol_factor=noise * activity)

    def _build(
        self, d: _Draw, times: np.ndarray, start: np.ndarray, end: np.ndarray | None
    ) -> dict[str, list[Candle]]:
        n = len(times)
        if end is not None:
            # Scale the path so the last close lands on the requested price: start from
            # end / exp(total return) instead of the current close.
            total = d.ret.sum(axis=0)
            start = np.where(np.isnan(end), start, end * np.exp(-total))
        growth = np.exp(d.ret)
        out: dict[str, list[Candle]] = {}
        tlist = times.tolist()
        for j, sym in enumerate(self.symbols):
            dec = int(self._decimals[j])
            tick = 10.0**-dec
            anchored = end is not None and not np.isnan(end[j])
            # Sequential rounding (each close from the previous rounded close) is what
            # step() does, so history(n) and n x step() give identical candles.
            prev = round(float(start[j]), dec) if anchored else float(start[j])
            closes = [0.0] * n
            for i, g in enumerate(growth[:, j].tolist()):
                prev = max(round(prev * g, dec), tick)
                closes[i] = prev
            close = np.array(closes)
            if anchored:
                close[-1] = end[j]  # exact, even if the caller's price is off-tick
            opens = np.empty(n)
            opens[0] = round(float(start[j]), dec) if anchored else start[j]
            opens[1:] = close[:-1]
            high = np.maximum(np.round(opens * np.exp(d.up[:, j]), dec), np.maximum(opens, close))
            low = np.minimum(np.round(opens * np.exp(d.down[:, j]), dec), np.minimum(opens, close))
            low = np.maximum(low, tick)
            volume = np.round(self._notional[j] * d.vol_factor[:, j] / close, 5)
            out[sym] = [
                Candle(sym, t, o, h, lo, c, v, self.interval)
                for t, o, h, lo, c, v in zip(
                    tlist, opens.tolist(), high.tolist(), low.tolist(), close.tolist(), volume.tolist()
                )
            ]
            self._last_close[j] = close[-1]
        return out
