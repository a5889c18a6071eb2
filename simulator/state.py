"""The simulator's state in one object: price source, klines, book, account, engines (spot orders and
order lists, USD-M, algo), funding, the public tape, limits, faults.

``SimExchange`` is what the HTTP layer talks to. It owns two clocks (reference/binance-api.md §0.7):
wall-clock ``now_ms()`` for auth, order and trade times, and the market clock of the price source
(``market_ms``), which drives klines and funding. ``run_market()`` advances the source in the
background at ``speed`` x real time (0 = paused; advance by hand with ``advance()`` or
``/admin/advance``). Every bar goes through ``apply_bar``: funding settles first when the bar opens
at or after a funding time, then the bar moves prices, fills orders and is sampled for the premium.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Callable

from simulator.accounts import Account
from simulator.algo import AlgoBook
from simulator.auth import DEFAULT_API_KEY, DEFAULT_API_SECRET, KeyStore
from simulator.book import BookConfig
from simulator.faults import Faults
from simulator.filters import SymbolSpec, spec_for
from simulator.funding import Funding
from simulator.futures import FuturesEngine, FuturesSpec, futures_spec_for
from simulator.listenkeys import ListenKeys
from simulator.klines import MINUTE_MS, KlineStore
from simulator.matching import SpotEngine
from simulator.order_lists import OrderListBook
from simulator.prices import Bar, PriceSource, RandomWalkSource
from simulator.ratelimit import Limits, RateLimiter
from simulator.tape import Tape

log = logging.getLogger(__name__)

DEFAULT_BALANCES: dict[str, Decimal] = {
    "USDT": Decimal("10000"), "BTC": Decimal(0), "ETH": Decimal(0), "BNB": Decimal(0), "SOL": Decimal(0),
}


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class SimConfig:
    seed: int = 1
    api_key: str = DEFAULT_API_KEY
    api_secret: str = DEFAULT_API_SECRET
    balances: dict[str, Decimal] = field(default_factory=lambda: dict(DEFAULT_BALANCES))
    speed: float = 1.0
    limits: Limits = field(default_factory=Limits)
    maker_rate: Decimal = Decimal("0.001")
    taker_rate: Decimal = Decimal("0.001")
    participation: Decimal = Decimal("0.5")
    futures_wallet: Decimal = Decimal("10000")  # USDT in the USD-M futures wallet (separate from spot)
    book: BookConfig = field(default_factory=BookConfig)
    premiums: dict[str, Decimal] = field(default_factory=dict)  # futures mark over index (funding.py)


class SimExchange:
    def __init__(self, config: SimConfig | None = None, source: PriceSource | None = None) -> None:
        self.config = config or SimConfig()
        cfg = self.config
        self.source: PriceSource = source or RandomWalkSource(seed=cfg.seed, start_ms=wall_ms())
        self.klines = KlineStore(base_ms=max(MINUTE_MS, self.source.step_ms))
        # USD-M trades at the spot price times (1 + basis) (0 unless an admin sets it: /admin/basis);
        # its klines are kept apart so a basis set later does not rewrite the futures history
        self.basis: dict[str, Decimal] = {}
        self.futures_klines = KlineStore(base_ms=self.klines.base_ms)
        for bar in self.source.history():
            self.klines.add_bar(bar)
            self.futures_klines.add_bar(bar)
        self.market_ms = self.source.start_ms()
        symbols = self.source.symbols()
        if any(self.klines.last_close(s) is None for s in symbols):  # no history: take the first bars
            for bar in self.source.next_bars():
                self.klines.add_bar(bar)
                self.futures_klines.add_bar(bar)
                self.market_ms = max(self.market_ms, bar.close_time + 1)
        self.specs: dict[str, SymbolSpec] = {
            sym: spec_for(sym, self.klines.last_close(sym) or Decimal(1)) for sym in symbols
        }
        self.account = Account.with_balances(cfg.balances)
        self.account.maker_rate, self.account.taker_rate = cfg.maker_rate, cfg.taker_rate
        self.account.update_time = wall_ms()
        self.engine = SpotEngine(self.specs, self.account, wall_ms, cfg.book, cfg.participation)
        for sym in self.specs:
            self.engine.set_price(sym, self.klines.last_close(sym) or Decimal(1))
        self.order_lists = OrderListBook(self.engine, wall_ms)  # spot OCOs; the engine calls it for their legs
        self.futures_specs: dict[str, FuturesSpec] = {
            s: futures_spec_for(s, self.engine.price(s)) for s in self.specs
        }
        self.futures = FuturesEngine(
            self.futures_specs, cfg.futures_wallet, self.futures_price, wall_ms, cfg.book, cfg.participation
        )
        self.algo = AlgoBook(self.futures, wall_ms)
        self.funding = Funding.start(self.futures, self.market_ms, cfg.premiums)
        self.tape = Tape()
        self.listen_keys = ListenKeys()
        self.keys = KeyStore({cfg.api_key: cfg.api_secret})
        self.limiter = RateLimiter(cfg.limits)
        self.faults = Faults()
        self.speed = cfg.speed
        # per symbol, as on Binance: a book's update ids run without gaps (depth snapshots and diffs)
        self.update_ids: dict[str, int] = {s: 1_000_000 for s in symbols}
        self.bar_listeners: list[Callable[[Bar], None]] = []
        # called after every request that may change an account (the state file's saver listens)
        self.change_listeners: list[Callable[[], None]] = []

    def now_ms(self) -> int:
        return wall_ms()

    def changed(self) -> None:
        """Something may have changed outside the engines' order events (leverage, margin type...)."""
        for listener in self.change_listeners:
            listener()

    def futures_price(self, symbol: str) -> Decimal:
        """The USD-M market's price: the spot price times (1 + its basis)."""
        b = self.basis.get(symbol)
        return self.engine.price(symbol) * (1 + b) if b else self.engine.price(symbol)

    def futures_bar(self, bar: Bar) -> Bar:
        """``bar`` as the USD-M market traded it (its basis applied)."""
        b = self.basis.get(bar.symbol)
        if not b:
            return bar
        f = 1 + b
        return Bar(bar.symbol, bar.open_time, bar.close_time, bar.open * f, bar.high * f, bar.low * f, bar.close * f,
                   bar.volume)

    def apply_bar(self, bar: Bar) -> None:
        self.funding.before_bar(bar.open_time)  # funding is settled at the prices before the boundary
        self.klines.add_bar(bar)
        fbar = self.futures_bar(bar)
        self.futures_klines.add_bar(fbar)
        if bar.symbol in self.specs:
            self.engine.on_bar(bar)
            self.futures.on_bar(fbar)
            self.algo.on_bar(fbar)
            self.tape.on_bar(bar)
            self.update_ids[bar.symbol] += 1
            self.funding.sample(bar.symbol, bar.close_time)
        self.market_ms = max(self.market_ms, bar.close_time + 1)
        for listener in self.bar_listeners:
            listener(bar)

    def advance(self, steps: int = 1) -> None:
        for _ in range(steps):
            for bar in self.source.next_bars():
                self.apply_bar(bar)

    def move_price(self, symbol: str, price: Decimal, volume: Decimal | None = None) -> Bar:
        """Admin: trade from the current price straight to ``price`` in one bar."""
        last = self.engine.price(symbol)
        t = self.market_ms
        bar = Bar(
            symbol, t, t + 999, last, max(last, price), min(last, price), price,
            volume if volume is not None else Decimal("1000000"),
        )
        self.apply_bar(bar)
        return bar

    async def run_market(self) -> None:
        """Advance the source at ``speed`` x real time until cancelled."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        done = 0
        speed_seen = self.speed
        while True:
            if self.speed <= 0:
                await asyncio.sleep(0.1)
                t0, done, speed_seen = loop.time(), 0, self.speed
                continue
            if self.speed != speed_seen:
                t0, done, speed_seen = loop.time(), 0, self.speed
            step_wall = self.source.step_ms / 1000.0 / self.speed
            due = int((loop.time() - t0) / step_wall) - done
            try:
                for _ in range(min(due, 500)):
                    self.advance(1)
            except Exception:  # noqa: BLE001 - keep the market alive; the bug is logged
                log.exception("price source step failed")
            done += max(due, 0)
            await asyncio.sleep(min(max(step_wall, 0.02), 0.5))
