"""The account-level loss limits of live trading: across every live bot, on the account's mark-to-market
equity (each venue market live bots trade: spot = the quote asset plus every holding at its last price;
USD-M = the margin balance, unrealized P&L included). A daily loss or a drawdown from the account's
high-water mark over ``live.account_*`` flattens and halts every live bot (each bot's own limits still
apply to its own allocation). The monitor's state (high-water, day open) is kept in Redis."""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from core.types import TradingState
from risk.limits import RiskLimits
from risk.monitor import Breach, RiskMonitor
from settings import AppConfig

if TYPE_CHECKING:
    from engine.fleet import Fleet
    from engine.live import LiveVenue
    from state.venue_store import VenueStore

log = logging.getLogger("worker")


class AccountGuard:
    def __init__(self, app: AppConfig, venue: "LiveVenue", fleet: "Fleet", store: "VenueStore") -> None:
        self.app, self.venue, self.fleet, self.store = app, venue, fleet, store
        lv = app.live
        self.limits = RiskLimits(daily_loss_pct=lv.account_daily_loss_pct, daily_loss_value=lv.account_daily_loss_value,
                                 max_drawdown_pct=lv.account_max_drawdown_pct, max_orders_per_minute=None)
        self.monitor = RiskMonitor(self.limits, 0.0)
        saved = store.load_account()
        if saved:
            self.monitor.load(saved.get("monitor", {}))  # type: ignore[arg-type]
        self.quote = app.paper.quote_asset

    def live_markets(self) -> list[str]:
        return sorted({c.market for c in self.fleet.configs.values() if c.mode == "live"})

    def equity(self) -> float:
        total = 0.0
        for market in self.live_markets():
            client = self.venue.client(market)
            if client.futures:
                total += client.margin()[1]
                continue
            for asset, bal in client.balances().items():
                amount = float(bal.total)
                if not amount:
                    continue
                if asset == self.quote:
                    total += amount
                    continue
                symbol = f"{asset}{self.quote}"
                try:
                    total += amount * float(client.price(symbol))
                except Exception:  # noqa: BLE001 - an asset with no market in the quote: not counted
                    log.debug("account equity: %s has no %s market; not counted", asset, self.quote)
        return total

    def check(self) -> list[Breach]:
        """The account's equity now against its limits; breaches flatten and halt every live bot."""
        if not self.live_markets():
            return []
        eq = self.equity()
        now = int(time.time() * 1000)
        if not self.monitor.s.high_water:
            self.monitor.s.high_water = eq
        found = self.monitor.observe(now, eq)
        self.store.save_account({"equity": eq, "time": now, "monitor": self.monitor.dump()})
        return [Breach(f"account_{b.rule}", TradingState.HALTED, f"account (all live bots): {b.reason}", flatten=True)
                for b in found]
