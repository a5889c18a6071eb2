"""The cross-bot risk environment of the worker: what one bot's entry check needs to know about the
other bots and the market (``engine.ledger.RiskEnv``) — the mode's exposure and open positions,
market health (price age, spread, API errors, stream, reconciliation drift), futures margin and the
correlation of symbols' returns. Signal and DCA bots get the same view."""
from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Callable

import numpy as np

from core.types import Candle, Mode
from risk.engine import MarketStatus, PortfolioView

if TYPE_CHECKING:
    from engine.fleet import Fleet
    from engine.ledger import Ledger
    from engine.supervisor import VenueSupervisor
    from market.feed import Feed


class WorkerRiskEnv:
    def __init__(self, fleet: "Fleet", feed: "Feed", supervisor: "VenueSupervisor | None", window: int = 500,
                 wall: Callable[[], float] = time.time) -> None:
        self.fleet = fleet
        self.feed = feed
        self.supervisor = supervisor
        self.wall = wall
        self.closes: dict[str, deque[float]] = {}
        self.close_time: dict[str, int] = {}
        self.received: dict[str, float] = {}  # symbol -> wall time its last candle arrived
        self.window = window
        self._corr: dict[tuple[str, str], tuple[int, float | None]] = {}
        self.last: dict[str, Candle] = {}

    def candle(self, key: str) -> Candle | None:
        """The last candle of a series (``Candle.key``) the worker saw."""
        return self.last.get(key)

    def observe(self, c: Candle) -> None:
        key = c.key
        self.last[key] = c  # the candle the bots are handed next: paper fills read its volume
        self.closes.setdefault(key, deque(maxlen=self.window + 1)).append(c.close)
        self.close_time[key] = c.close_time + 1
        self.received[key] = self.wall()

    def price_age_s(self, symbol: str) -> float | None:
        """Seconds since the last candle of ``symbol`` arrived, on the wall clock (market time says
        nothing about a silent feed: a candle is 0 s old by its own close)."""
        at = self.received.get(symbol)
        return None if at is None else max(0.0, self.wall() - at)

    def portfolio_view(self, bot: "Ledger") -> PortfolioView:
        """Every open position of the bot's mode (ghost bots judge each signal alone)."""
        value, count, symbols = 0.0, 0, []
        for other in self.fleet.bots.values():
            if other.mode is not bot.mode or other.mode is Mode.GHOST:
                continue
            prices = other.last_price
            for sym, pos in other.portfolio.positions.items():
                if pos.is_open:
                    price = prices.get(sym, 0.0) if isinstance(prices, dict) else prices
                    value += abs(pos.quantity) * (price or pos.avg_entry)
                    count += 1
                    symbols.append(sym)
        return PortfolioView(value, count, tuple(symbols))

    def market_status(self, symbol: str, now_ms: int, bot: "Ledger | None" = None) -> MarketStatus:
        cfg = self.fleet.configs.get(bot.name) if bot is not None else None
        age = self.price_age_s(self.fleet.key(cfg, symbol) if cfg is not None else symbol)
        stream_up = not getattr(self.feed, "stale", False)
        sup = self.supervisor
        if sup is None or bot is None or not sup.trades(bot.name):
            return MarketStatus(price_age_s=age, stream_up=stream_up)
        # A venue bot's order depends on the venue's health: spread and recent API errors, asked now;
        # an unexplained reconciliation drift counts as over any drift limit.
        client = sup.client_of(bot.name)
        try:
            spread = client.spread_bps(symbol)
        except Exception:  # noqa: BLE001 - unknown spread: the spread rule cannot judge it
            spread = None
        drift = 100.0 if sup.has_drift(bot.name) else 0.0
        return MarketStatus(age, spread, client.errors_last_minute(), stream_up, drift)

    def margin(self, bot: "Ledger") -> tuple[float, float]:
        """Futures venue bots: (margin in use, margin balance); (0, 0) elsewhere (no margin rule)."""
        sup = self.supervisor
        if sup is None or not sup.trades(bot.name) or self.fleet.configs[bot.name].market != "futures":
            return 0.0, 0.0
        return sup.client_of(bot.name).margin()

    def correlation(self, a: str, b: str) -> float | None:
        """Pearson correlation of the two symbols' 1-candle log returns over the recent window."""
        key = (min(a, b), max(a, b))
        stamp = self.close_time.get(a, 0) + self.close_time.get(b, 0)
        cached = self._corr.get(key)
        if cached and cached[0] == stamp:
            return cached[1]
        xa, xb = self.closes.get(a), self.closes.get(b)
        rho = None
        if xa and xb and min(len(xa), len(xb)) > 30:
            n = min(len(xa), len(xb))
            ra = np.diff(np.log(np.asarray(list(xa)[-n:])))
            rb = np.diff(np.log(np.asarray(list(xb)[-n:])))
            if ra.std() > 0 and rb.std() > 0:
                rho = float(np.corrcoef(ra, rb)[0, 1])
        self._corr[key] = (stamp, rho)
        return rho
