"""The worker's connection to a venue for live bots (and paper bots on the testnet):
executors per market, pre-flight before a bot starts, recovery of open intents, reconciliation
of what the bot believes against what the venue holds, and a venue snapshot for the Live tab.

Keys come from the environment only (settings.Secrets); the local exchange's public default
keys are used when the venue is 'local' and none are set. Nothing here is written to Redis
but results (reports, balances); never a key.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import asdict
from decimal import Decimal
from typing import TYPE_CHECKING, Callable

import redis

from core.types import Fill, Mode
from exchange.client import ExchangeClient, FuturesPosition
from exchange.preflight import PreflightReport, run_preflight
from exchange.reconcile import ReconcileReport, reconcile
from exchange.rules import dec, fmt
from exchange.venues import DEFAULT_LOCAL, LOCAL_API_KEY, LOCAL_API_SECRET, venue_urls
from executors.live import LiveExecutor, Recovered
from executors.live_book import LiveBook
from executors.protection import VenueProtection, is_protective, reconcile_ids
from executors.spot_fees import SpotFeeFills, spot_fills
from settings import AppConfig, BotConfig, Secrets
from state.intents import RedisIntentStore
from state.venue_store import VenueStore

if TYPE_CHECKING:
    from engine.bot import Bot
    from engine.dca_bot import DcaBot
    from exchange.userdata import OrderEvent, UserDataStream
    from exchange.userdata_events import AlgoUpdateEvent, ListStatusEvent


def _symbols(bot: "Bot | DcaBot") -> list[str]:
    return list(getattr(bot, "symbols", None) or [bot.symbol])


def _by_asset(client: ExchangeClient, held: dict[str, Decimal]) -> dict[str, Decimal]:
    """Spot: symbol quantities summed per base asset (two pairs may share one, e.g. ETHUSDT, ETHBTC)."""
    out: dict[str, Decimal] = {}
    for sym, q in held.items():
        asset = client.rules(sym).base_asset
        out[asset] = out.get(asset, Decimal(0)) + q
    return out

log = logging.getLogger("live")


class LiveRefused(RuntimeError):
    """A live bot may not start: the reason is shown on the dashboard."""


class LiveVenue:
    def __init__(self, app: AppConfig, r: redis.Redis, secrets: Secrets | None = None) -> None:
        self.app = app
        self.r = r
        secrets = secrets or Secrets()
        ex = app.exchange
        self.urls = venue_urls(ex.venue, ex.base_url or DEFAULT_LOCAL)
        key = secrets.binance_api_key.get_secret_value() if secrets.binance_api_key else ""
        secret = secrets.binance_api_secret.get_secret_value() if secrets.binance_api_secret else ""
        if not key and ex.venue == "local":
            key, secret = LOCAL_API_KEY, LOCAL_API_SECRET  # the local exchange's public defaults
        self.has_keys = bool(key and secret)
        self._local_proven: bool | None = None
        self.real_money = self.urls.real_money
        self.live_switch = secrets.live_trading
        self._key, self._secret = key, secret
        self.store = RedisIntentStore(r)
        self.records = VenueStore(r)
        self._clients: dict[str, ExchangeClient] = {}
        self._executors: dict[str, LiveExecutor] = {}
        self._books: dict[str, LiveBook] = {}
        self._guards: dict[tuple[str, str], VenueProtection] = {}  # (bot, symbol)
        self._streams: dict[str, "UserDataStream"] = {}
        self.on_executor: Callable[[LiveExecutor], None] | None = None  # a hook (the chaos rehearsal)
        self.fills_ready = threading.Event()  # set when a resting order completed (worker books it)

    def local_proven(self, market: str) -> bool:
        if self._local_proven is None:
            self._local_proven = self.client(market).is_local_exchange()
        return self._local_proven

    @property
    def name(self) -> str:
        return self.urls.venue.value

    def client(self, market: str) -> ExchangeClient:
        if market not in self._clients:
            self._clients[market] = ExchangeClient(self.urls, self._key, self._secret, market=market)  # type: ignore[arg-type]
        return self._clients[market]

    def live_executor(self, market: str) -> LiveExecutor:
        if market not in self._executors:
            ex = LiveExecutor(self.client(market), self.store)
            if self.on_executor is not None:
                self.on_executor(ex)
            self._executors[market] = ex
        return self._executors[market]

    def executor(self, market: str, mode: Mode) -> "SpotFeeFills | LiveExecutor":
        ex = self.live_executor(market)
        ex.mode = mode
        return SpotFeeFills(ex, mode) if market == "spot" else ex

    def book(self, bot: str, market: str) -> LiveBook:
        """The venue-side resting orders of one bot (a live DCA ladder)."""
        if bot not in self._books:
            ex = self.live_executor(market)
            client = ex.client
            b = LiveBook(ex, bot, convert=lambda fills, c=client: spot_fills(c, fills))
            b.wake = self.fills_ready.set
            self._books[bot] = b
        return self._books[bot]

    def books(self) -> dict[str, LiveBook]:
        return dict(self._books)

    def protection(self, bot: str, market: str, symbol: str) -> VenueProtection:
        """The protective orders of one bot's position on ``symbol`` (executors.protection): a signal
        bot's, or a DCA bot's deal on that pair."""
        key = (bot, symbol)
        if key not in self._guards:
            ex = self.live_executor(market)
            client = ex.client
            self._guards[key] = VenueProtection(ex, bot, symbol, convert=lambda fills, c=client: spot_fills(c, fills),
                                                stop_limit_pct=self.app.exchange.protective_stop_limit_pct,
                                                wake=self.fills_ready.set)
        return self._guards[key]

    # ---- the user-data stream: fills of resting orders -----------------------------------------
    def start_streams(self, markets: "set[str]") -> None:
        """One user-data stream per market the venue bots trade. Events of resting orders update
        their intent in Redis at once and wake the worker; market orders' trades are taken from it
        before REST is asked. Every (re)connect is followed by a REST poll of the resting orders
        (what happened while the stream was down is not lost)."""
        from exchange.userdata import UserDataStream

        for market in sorted(markets):
            if market in self._streams:
                continue
            stream = UserDataStream(self.urls, self._key, self._secret, market,  # type: ignore[arg-type]
                                    on_event=self._on_event, on_resync=lambda m=market: self._resync(m),
                                    on_protective=self._on_protective)
            stream.start()
            self._streams[market] = stream
            if market in self._executors:
                self._executors[market].stream_up = lambda st=stream: st.connected

    def stream_status(self) -> dict[str, dict[str, object]]:
        return {m: {"connected": s.connected, "events": s.events, "reconnects": s.reconnects,
                    "last_event_ms": s.last_event_ms} for m, s in self._streams.items()}

    def close(self) -> None:
        for s in self._streams.values():
            s.close()
        self._streams.clear()

    def _on_event(self, ev: "OrderEvent") -> None:
        for book in list(self._books.values()):
            if book.on_event(ev):
                return
        for guard in list(self._guards.values()):
            if guard.on_event(ev.client_order_id):
                return
        ex = self._executors.get(ev.market)
        if ex is not None:
            ex.on_stream_trade(ev)

    def _on_protective(self, ev: "ListStatusEvent | AlgoUpdateEvent") -> None:
        cid = getattr(ev, "list_client_order_id", "") or getattr(ev, "client_algo_id", "")
        for guard in list(self._guards.values()):
            if guard.on_event(cid):
                return

    def _resync(self, market: str) -> None:
        for book in list(self._books.values()):
            if book.executor.client.market != market:
                continue
            try:
                book.poll()
            except Exception as exc:  # noqa: BLE001 - the periodic poll tries again
                log.warning("resync of %s after a stream (re)connect failed: %s", book.bot, exc)
        for guard in list(self._guards.values()):
            if guard.executor.client.market == market and guard.active:
                guard.dirty = True  # what happened while the stream was down: asked at the next step
        self.fills_ready.set()

    # ---- before a bot starts ----------------------------------------------------------------
    def check_switch(self, cfg: BotConfig) -> None:
        """Real money needs both keys of the switch: the environment and the config. A venue configured
        as ``local`` must prove it is the local exchange: otherwise ``exchange.local_url`` could point a
        bot at Binance itself with the real-money switch off."""
        if self.name == "local" and not self.local_proven(cfg.market):
            raise LiveRefused(f"exchange.venue is 'local' but exchange.local_url ({self.urls.spot_rest}) does not "
                              "prove to be the local exchange (GET /local/identity): refusing to place orders "
                              "there; use exchange.venue: testnet or mainnet for Binance's own hosts")
        if cfg.mode == "live" and self.real_money and not (self.live_switch and self.app.live.enabled):
            raise LiveRefused("real money (mainnet) needs BOT_LIVE_TRADING=1 in the environment and live.enabled: "
                              "true in config.yaml; one of them is off")
        if not self.has_keys:
            raise LiveRefused(f"no API keys for venue {self.name}: set BOT_BINANCE_API_KEY and "
                              "BOT_BINANCE_API_SECRET in the environment")

    def preflight(self, cfg: BotConfig, required_quote: float) -> PreflightReport:
        report = run_preflight(self.client(cfg.market), cfg.symbol, dec(required_quote))
        self.records.save_preflight(cfg.name, {
            "ok": report.ok, "venue": self.name, "real_money": self.real_money, "market": cfg.market,
            "symbol": cfg.symbol, "checks": [asdict(c) | {"data": {k: str(v) for k, v in c.data.items()}}
                                             for c in report.checks],
            "summary": report.summary(),
        })
        return report

    def unbooked(self, bot_name: str, market: str, since_ms: int) -> list[Fill]:
        """Market orders' fills recorded after the bot's last saved books but never booked (a crash
        between the venue's answer and the commit), as the bot books them."""
        return spot_fills(self.client(market), self.live_executor(market).unbooked(bot_name, since_ms))

    def recover(self, bot_name: str, market: str, min_age_ms: int = 0) -> list[Recovered]:
        client = self.client(market)
        return [Recovered(r.intent, spot_fills(client, r.fills))
                for r in self.live_executor(market).recover(bot_name, min_age_ms=min_age_ms)]

    # ---- while it runs ------------------------------------------------------------------------
    def _held(self, bot: "Bot | DcaBot") -> dict[str, Decimal]:
        """symbol -> the signed quantity the bot believes it holds, including what its resting
        orders executed on the venue but the bot has not booked yet."""
        book = self._books.get(bot.name)
        out: dict[str, Decimal] = {}
        for sym in _symbols(bot):
            out[sym] = dec(bot.portfolio.position(sym).quantity) + (book.unbooked(sym) if book else Decimal(0))
        return out

    def reconcile(self, bot: "Bot | DcaBot", market: str) -> ReconcileReport:
        client = self.client(market)
        intents: dict[str, tuple[str, str]] = {}
        for i in self.store.all(bot.name):
            if is_protective(i):  # known on the venue, but an OCO's legs and algo orders are not "the" order
                intents.update({cid: (i.symbol, st) for cid, st in reconcile_ids(i).items()})
            else:
                intents[i.client_order_id] = (i.symbol, i.status)
        held = self._held(bot)
        symbols = list(held)
        if client.futures:
            expected = {s: self._futures_baseline(bot.name, s) + q for s, q in held.items()}
            rep = reconcile(client, symbols, expected_positions=expected, intents=intents,
                            tolerance=max(client.rules(s).step_size for s in symbols))
        else:
            balances = client.balances()
            expected = {}
            for asset, q in _by_asset(client, held).items():
                actual = balances[asset].total if asset in balances else Decimal(0)
                expected[asset] = self._baseline(bot.name, asset, actual - q) + q
            tol = max(max(client.rules(s).step_size, client.rules(s).min_qty) for s in symbols)
            rep = reconcile(client, symbols, expected_holdings=expected, intents=intents, tolerance=tol,
                            balances=balances)
        self._write_venue(bot, market, rep)
        return rep

    def reset_baseline(self, bot: "Bot | DcaBot", market: str) -> None:
        """'Ignore' a drift: what the venue holds beyond the bot's position is the user's."""
        client = self.client(market)
        held = self._held(bot)
        if client.futures:
            actual = {p.symbol: p.amount for p in client.positions()}
            for sym, q in held.items():
                self.records.set_baseline(bot.name, sym, actual.get(sym, Decimal(0)) - q)
            return
        balances = client.balances()
        for asset, q in _by_asset(client, held).items():
            actual = balances[asset].total if asset in balances else Decimal(0)
            self.records.set_baseline(bot.name, asset, actual - q)

    def set_leverage(self, bot: "Bot | DcaBot", leverage: int) -> None:
        """Futures: the venue's leverage for the bot's symbols (so margin and liquidation match)."""
        client = self.client("futures")
        for sym in _symbols(bot):
            client.set_isolated(sym)
            client.set_leverage(sym, leverage)
        bot.leverage = float(leverage)

    def futures_position(self, bot: "Bot") -> "FuturesPosition | None":
        return next((p for p in self.client("futures").positions() if p.symbol == bot.symbol), None)

    def dust_key(self, market: str, symbol: str) -> str:
        """The baseline key an unsellable remainder after an exit goes under (it then counts as the
        user's holding): the base asset on spot, the symbol on futures."""
        client = self.client(market)
        return symbol if client.futures else client.rules(symbol).base_asset

    def venue_position(self, bot: "Bot", market: str) -> float:
        """What the venue holds for this bot (for 'adopt')."""
        client = self.client(market)
        if client.futures:
            pos = self.futures_position(bot)
            amount = pos.amount if pos is not None else Decimal(0)
            return float(amount - self._futures_baseline(bot.name, bot.symbol))
        rules = client.rules(bot.symbol)
        held = client.balances().get(rules.base_asset)
        actual = held.total if held is not None else Decimal(0)
        baseline = self._baseline(bot.name, rules.base_asset, actual - dec(bot.position.quantity))
        return float(actual - baseline)

    def _baseline(self, bot: str, asset: str, first: Decimal) -> Decimal:
        # The user's own holding of the asset, fixed the first time the bot is reconciled.
        known = self.records.baseline(bot, asset)
        if known is None:
            self.records.set_baseline(bot, asset, first)
            return first
        return known

    def _futures_baseline(self, bot: str, symbol: str) -> Decimal:
        # Futures: a position the operator chose to ignore (0 unless 'ignore' was pressed).
        return self.records.baseline(bot, symbol) or Decimal(0)

    def _write_venue(self, bot: "Bot | DcaBot", market: str, rep: ReconcileReport) -> None:
        """The Live tab's view of the venue, from what the reconciliation just saw (no new requests)."""
        view: dict[str, object] = {"venue": self.name, "real_money": self.real_money, "market": market,
                                   "time": rep.time_ms, "drift": [asdict(d) for d in rep.drifts],
                                   "ok": rep.ok, "summary": rep.summary(),
                                   "user_stream": self.stream_status().get(market)}
        book = self._books.get(bot.name)
        if book is not None:  # what each resting order is for (SO2, TP1), by client order id
            view["resting_tags"] = {o.client_order_id: o.tag for o in book.open_orders()}
        guards = [g for (name, _), g in self._guards.items() if name == bot.name]
        if guards:
            view["resting_tags"] = {**view.get("resting_tags", {}),  # type: ignore[dict-item]
                                    **{cid: "protective" for g in guards for cid in g.ids()}}
            view["protection"] = "; ".join(v for g in guards if (v := g.view()))
        view["positions"] = [{k: str(v) for k, v in asdict(p).items()} for p in rep.positions if p.amount]
        view["balances"] = {a: str(b.total) for a, b in rep.balances.items() if b.total}
        view["open_orders"] = [{"symbol": o.symbol, "side": o.side, "status": o.status,
                                "type": o.type, "price": fmt(o.price), "quantity": fmt(o.orig_qty),
                                "executed": fmt(o.executed_qty), "client_order_id": o.client_order_id}
                               for o in rep.open_orders]
        self.records.save_view(bot.name, view)

