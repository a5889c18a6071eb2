"""Market and venue health, acted on: a silent market-data feed, a user-data stream down past its grace
period, a rate-limit ban and a burst of API errors each move the affected bots to REDUCE_ONLY by
themselves (exits still run, nothing new opens), and back to ACTIVE once healthy. Every move is a
control change set by ``health`` with its audit record; an operator's or a risk rule's state is never
touched (they are tighter, or not ours to lift).

Each check also leaves a view for the dashboard's venue status line: per venue market the last
successful request, the weight used, a ban, the user-data stream; per symbol the age of its market
data on the wall clock.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from core.types import INTERVAL_MS, TradingState
from engine.controls import TradingControls
from settings import AppConfig
from state.models import AuditRecord
from state.models import ControlChange

if TYPE_CHECKING:
    from engine.fleet import Fleet
    from engine.live import LiveVenue
    from engine.risk_env import WorkerRiskEnv

WHO = "health"
STREAM_GRACE_S = 30.0  # a user-data stream may reconnect this long before bots are held
ERROR_BURST = 10  # API errors in one minute


class LoopTimes:
    """The trading loop's step times (a candle batch in -> its Redis commit done), the newest ``keep``:
    the health view's p50/p99, so a slow Redis or a slow bot shows before candles pile up."""

    def __init__(self, keep: int = 500) -> None:
        self.ms: deque[float] = deque(maxlen=keep)

    def add(self, ms: float) -> None:
        self.ms.append(ms)

    def view(self) -> dict[str, Any]:
        if not self.ms:
            return {"loop_ms_p50": None, "loop_ms_p99": None, "loop_samples": 0}
        s = sorted(self.ms)
        at = lambda q: s[min(len(s) - 1, int(q * len(s)))]  # noqa: E731 - nearest rank
        return {"loop_ms_p50": round(at(0.5), 2), "loop_ms_p99": round(at(0.99), 2), "loop_samples": len(s)}


class HealthWatch:
    def __init__(self, app: AppConfig, fleet: "Fleet", controls: TradingControls, env: "WorkerRiskEnv",
                 venue: "LiveVenue | None", wall: Callable[[], float] = time.time) -> None:
        self.app, self.fleet, self.controls, self.env, self.venue, self.wall = app, fleet, controls, env, venue, wall
        m = app.market
        # A feed is silent when nothing came for three candles' worth of wall time (at the market's
        # speed), and at least the exchange's stale alarm.
        sped_up = m.source != "exchange" or app.exchange.venue == "local"  # a real venue runs at wall time
        cadence_s = INTERVAL_MS[m.interval] / 1000 / (m.speed if sped_up else 1.0)
        self.stale_after_s = max(app.exchange.stale_after_s, 3 * cadence_s)
        self._stream_down_since: dict[str, float] = {}
        self.started = wall()
        self.loop = LoopTimes()

    def problems(self) -> tuple[dict[str, list[str]], dict[str, Any]]:
        """(bot -> what is wrong for it, the view for the dashboard)."""
        now = self.wall()
        keys = set(self.app.market.symbols) | {self.fleet.key(c, s) for c in self.fleet.configs.values() for s in c.symbols}
        ages = {k: self.env.price_age_s(k) for k in sorted(keys)}
        by_symbol: dict[str, str] = {}
        for sym, age in ages.items():
            silent = age if age is not None else now - self.started
            if silent > self.stale_after_s:
                by_symbol[sym] = f"no market data for {sym} for {silent:.0f} s (limit {self.stale_after_s:.0f} s)"
        by_market: dict[str, list[str]] = {}
        markets: dict[str, Any] = {}
        if self.venue is not None:
            streams = self.venue.stream_status()
            for market in sorted({c.market for c in self.fleet.configs.values() if self.fleet.on_venue(c.name)}):
                h = self.venue.client(market).health()
                stream = streams.get(market)
                issues = []
                if h["blocked_until_ms"] > now * 1000:
                    issues.append(f"{market} API rate-limited/banned until "
                                  f"{time.strftime('%H:%M:%S', time.gmtime(h['blocked_until_ms'] / 1000))} UTC")
                if h["errors_last_minute"] >= ERROR_BURST:
                    issues.append(f"{h['errors_last_minute']} {market} API errors in the last minute")
                if stream is not None and not stream.get("connected"):
                    since = self._stream_down_since.setdefault(market, now)
                    if now - since > STREAM_GRACE_S:
                        issues.append(f"{market} user-data stream down for {now - since:.0f} s")
                else:
                    self._stream_down_since.pop(market, None)
                by_market[market] = issues
                markets[market] = {**h, "stream": stream, "problems": issues}
        out: dict[str, list[str]] = {}
        for name, cfg in self.fleet.configs.items():
            issues = [by_symbol[k] for k in (self.fleet.key(cfg, s) for s in cfg.symbols) if k in by_symbol]
            if self.fleet.on_venue(name):
                issues += by_market.get(cfg.market, [])
            if issues:
                out[name] = issues
        view = {"time": int(now * 1000), "stale_after_s": self.stale_after_s,
                "market_data_age_s": {s: (round(a, 1) if a is not None else None) for s, a in ages.items()},
                "markets": markets, "held": out, **self.loop.view()}
        return out, view

    def check(self, now_ms: int) -> tuple[list[ControlChange], list[AuditRecord], dict[str, Any]]:
        """Move the affected bots to REDUCE_ONLY and the recovered ones back (lock held)."""
        problems, view = self.problems()
        changes: list[ControlChange] = []
        audits: list[AuditRecord] = []
        for name in self.fleet.bots:
            rec = self.controls.get("bot", name)
            issues = problems.get(name)
            if issues:
                change = self.controls.tighten(name, TradingState.REDUCE_ONLY, WHO, "; ".join(issues), now_ms)
                if change is not None:
                    changes.append(change)
                    audits.append(AuditRecord(time=now_ms, who=WHO, command="reduce_only", target=name,
                                              result="applied", detail="; ".join(issues)))
            elif rec.set_by == WHO and rec.state is TradingState.REDUCE_ONLY:
                changes.append(self.controls.set("bot", name, TradingState.ACTIVE, WHO, "healthy again", now_ms))
                audits.append(AuditRecord(time=now_ms, who=WHO, command="resume", target=name, result="applied",
                                          detail=f"healthy again (was: {rec.reason})"))
        return changes, audits, view
