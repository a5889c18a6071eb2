"""Inbound webhook signals: ``POST /webhook/{bot}``.

Two body shapes (JSON), told apart by their keys:

- **TradingView** (``action`` or ``ticker``): ``{"secret": "...", "ticker": "{{ticker}}",
  "action": "{{strategy.order.action}}", "price": "{{close}}", "time": "{{timenow}}",
  "id": "{{strategy.order.id}}"}`` plus optional ``stop``/``sl``, ``tp``, ``confidence``,
  ``comment``; TradingView's other placeholders (exchange, interval, contracts, ...) are ignored.
- **Plain**: ``{"side": "BUY", "symbol": "BTCUSDT", "price": 50000, "stop_loss": 49000,
  "take_profit": 52000, "confidence": 0.8, "time": 1735689600000, "alert_id": "a-1"}``.

``time`` is required (epoch s or ms, or ISO 8601); the secret comes in the ``X-Webhook-Secret``
header or the body's ``secret`` (TradingView cannot set headers). The order of checks: the bot
must have a webhook secret (404), the secret must match (401: logged, nothing recorded), the bot
must be running (404); then the alert is validated. A refused alert (malformed, stale, wrong
symbol, not a webhook bot) is answered 422/409 with the reason **and posted as a ``signal``
command that the worker rejects and audits** (``state.commands.refused_signal``): the operator
sees it on the Audit tab beside every other command, and the API still writes nothing but XADDs
to the command stream. At most ``BOT_WEBHOOK_REFUSED_PER_MIN`` refusals a bot are recorded a
minute (the rest only logged), so a broken sender cannot flood the audit.

A valid alert is posted as ``signal`` (202) with a nonce derived from its ``id``, or else from
its content (side, symbol, levels, confidence) and time bucket: a replay — the same id, or the
same content within ``BOT_WEBHOOK_DEDUPE_WINDOW_S`` — is answered ``duplicate`` and not posted
again, and should one slip through (a restart) the worker's nonce idempotency applies it once.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections import OrderedDict, deque
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api.settings import WebhookSettings
from state.commands import SignalPayload, new_command, post_command, refused_signal, seen
from state.reader import StateReader

router = APIRouter(tags=["webhook"])
log = logging.getLogger("api.webhook")

_TV_IGNORED = {"exchange", "interval", "timeframe", "contracts", "position_size", "market_position",
               "market_position_size", "prev_market_position", "prev_market_position_size", "volume", "open",
               "high", "low", "strategy", "order_price"}
_TV_FIELDS = {"ticker", "action", "price", "close", "stop", "sl", "stop_loss", "tp", "take_profit", "confidence",
              "time", "timenow", "id", "alert_id", "comment"}
_JSON_FIELDS = {"side", "symbol", "price", "stop_loss", "take_profit", "confidence", "time", "alert_id", "comment"}
_SIDES = {"buy": "BUY", "long": "BUY", "sell": "SELL", "short": "SELL"}


class Refusal(ValueError):
    def __init__(self, reason: str, status: int = 422) -> None:
        super().__init__(reason)
        self.status = status


def _ms(value: object) -> int:
    """Epoch seconds or milliseconds (numbers or digit strings) or ISO 8601 -> epoch ms."""
    if isinstance(value, bool):
        raise Refusal("time: must be epoch seconds/milliseconds or ISO 8601")
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().replace(".", "", 1).isdigit()):
        x = float(value)
        return int(x * 1000) if x < 1e11 else int(x)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise Refusal(f"time: {value[:40]!r} is neither epoch seconds/milliseconds nor ISO 8601") from None
        if dt.tzinfo is None:
            raise Refusal("time: an ISO time needs its zone (TradingView's {{timenow}} ends in Z)")
        return int(dt.timestamp() * 1000)
    raise Refusal("time: must be epoch seconds/milliseconds or ISO 8601")


def _num(data: dict[str, Any], *names: str) -> float | None:
    for n in names:
        v = data.get(n)
        if v in (None, "", "NaN", "na"):
            continue
        try:
            return float(v)  # TradingView sends placeholders as strings ("50000.5")
        except (TypeError, ValueError):
            raise Refusal(f"{n}: {str(v)[:40]!r} is not a number") from None
    return None


def normalize(data: dict[str, Any], symbol_default: str) -> SignalPayload:
    """The alert as a SignalPayload (Refusal naming the field otherwise)."""
    tradingview = "action" in data or "ticker" in data
    allowed = _TV_FIELDS | _TV_IGNORED if tradingview else _JSON_FIELDS
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise Refusal(f"{unknown[0]}: unknown field for a {'TradingView' if tradingview else 'plain JSON'} alert "
                      f"(known: {', '.join(sorted(_TV_FIELDS if tradingview else _JSON_FIELDS))})")
    side_raw = data.get("action" if tradingview else "side")
    side = _SIDES.get(str(side_raw).strip().lower()) if isinstance(side_raw, str) else None
    if side is None:
        raise Refusal(f"{'action' if tradingview else 'side'}: must be buy or sell (got {str(side_raw)[:20]!r})")
    symbol = str(data.get("ticker" if tradingview else "symbol") or symbol_default).upper()
    symbol = symbol.split(":")[-1].removesuffix(".P")  # BINANCE:BTCUSDT.P -> BTCUSDT
    when = data.get("time", data.get("timenow"))
    if when in (None, ""):
        raise Refusal("time: required (the alert's time: TradingView's {{timenow}}, or epoch ms)")
    fields = dict(
        side=side, symbol=symbol, price=_num(data, "price", "close"),
        stop_loss=_num(data, "stop_loss", "stop", "sl"), take_profit=_num(data, "take_profit", "tp"),
        confidence=_num(data, "confidence"), alert_time=_ms(when),
        alert_id=str(data.get("id", data.get("alert_id")) or ""), source="tradingview" if tradingview else "json",
        comment=str(data.get("comment") or ""),
    )
    if fields["confidence"] is None:
        del fields["confidence"]
    try:
        return SignalPayload.model_validate(fields)
    except ValidationError as exc:
        e = exc.errors()[0]
        loc = ".".join(str(p) for p in e["loc"])
        raise Refusal(f"{loc + ': ' if loc else ''}{str(e['msg']).removeprefix('Value error, ')}") from None


def _hash(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:40]


class WebhookGate:
    """Secrets (as digests), the replay memory and the refusal rate, shared by the route's calls."""

    def __init__(self, s: WebhookSettings, secrets: dict[str, bytes]) -> None:
        self.s = s
        self.secrets = secrets
        self._lock = threading.Lock()
        self.posting = threading.Lock()
        self._content: OrderedDict[str, int] = OrderedDict()  # content key -> alert time accepted
        self._posted: OrderedDict[str, None] = OrderedDict()  # nonces posted (the worker may not have read them)
        self._refusals: dict[str, deque[float]] = {}
        self._refused_seen: OrderedDict[str, float] = OrderedDict()

    def authentic(self, bot: str, given: str | None) -> bool:
        want = self.secrets.get(bot)
        if want is None or not given:
            return False
        return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), want)

    def nonce(self, bot: str, p: SignalPayload) -> tuple[str, list[str]]:
        """(nonce to post under, earlier nonces that mean 'already received')."""
        if p.alert_id:
            n = "sig-" + _hash(bot, "id", p.alert_id)
            return n, [n]
        w = int(self.s.dedupe_window_s * 1000)
        content = (bot, p.side, p.symbol, p.price, p.stop_loss, p.take_profit, p.confidence)
        bucket = p.alert_time // w
        return "sig-" + _hash(*content, bucket), ["sig-" + _hash(*content, b) for b in (bucket, bucket - 1, bucket + 1)]

    def replay(self, bot: str, p: SignalPayload, nonces: list[str]) -> bool:
        """True if this alert was posted before by this process: the same nonce (its id), or the same
        content within the window. (The nonces in Redis cover a restart.)"""
        with self._lock:
            if any(n in self._posted for n in nonces):
                return True
            if p.alert_id:
                return False
            last = self._content.get(_hash(bot, p.side, p.symbol, p.price, p.stop_loss, p.take_profit,
                                           p.confidence))
            return last is not None and abs(p.alert_time - last) < self.s.dedupe_window_s * 1000

    def accept(self, bot: str, p: SignalPayload, nonce: str) -> None:
        key = _hash(bot, p.side, p.symbol, p.price, p.stop_loss, p.take_profit, p.confidence)
        with self._lock:
            self._content[key] = p.alert_time
            self._content.move_to_end(key)
            self._posted[nonce] = None
            for memo in (self._content, self._posted):
                while len(memo) > 10_000:
                    memo.popitem(last=False)

    def may_record(self, bot: str, raw_key: str) -> bool:
        """Record a refusal unless this bot is over its rate or the same body was just recorded."""
        now = time.monotonic()
        with self._lock:
            if now - self._refused_seen.get(raw_key, -1e9) < self.s.dedupe_window_s:
                return False
            q = self._refusals.setdefault(bot, deque())
            while q and now - q[0] >= 60:
                q.popleft()
            if len(q) >= self.s.refused_per_min:
                return False
            q.append(now)
            self._refused_seen[raw_key] = now
            while len(self._refused_seen) > 10_000:
                self._refused_seen.popitem(last=False)
            return True


def _receive(request: Request, gate: WebhookGate, bot: str, body: bytes) -> JSONResponse:
    r = request.app.state.r
    if bot not in gate.secrets:
        return JSONResponse({"detail": f"no webhook for {bot!r} (no secret configured for it)"}, status_code=404)
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    header = request.headers.get("x-webhook-secret")
    given = header or (str(data.get("secret")) if isinstance(data, dict) and data.get("secret") else None)
    client = request.client.host if request.client else "?"
    if not gate.authentic(bot, given):
        log.warning("webhook %s: refused an alert from %s: %s secret", bot, client, "wrong" if given else "no")
        return JSONResponse({"detail": "missing or wrong webhook secret (X-Webhook-Secret header or 'secret')"},
                            status_code=401)
    metas = StateReader(r).bots()
    meta = metas.get(bot)
    if meta is None:
        return JSONResponse({"detail": f"no bot named {bot!r} is running; bots: {', '.join(metas) or 'none'}"},
                            status_code=404)
    user = "webhook:" + ("tradingview" if isinstance(data, dict) and ("action" in data or "ticker" in data)
                         else "json")
    clean = {k: v for k, v in data.items() if k != "secret"} if isinstance(data, dict) else None
    raw = json.dumps(clean)[:2000] if clean is not None else body[:500].decode("utf-8", "replace")
    try:
        if not isinstance(data, dict):
            raise Refusal("body: must be a JSON object")
        if meta.strategy != "webhook":
            raise Refusal(f"bot: {bot} runs strategy {meta.strategy!r}, not 'webhook': it takes no signals", 409)
        p = normalize(clean or {}, meta.symbol)
        if p.symbol not in (meta.symbols or [meta.symbol]):
            raise Refusal(f"symbol: {bot} trades {', '.join(meta.symbols or [meta.symbol])}, not {p.symbol}")
        age = time.time() - p.alert_time / 1000
        if age > gate.s.max_age_s:
            raise Refusal(f"time: the alert is {age:.0f} s old, over the {gate.s.max_age_s:g} s allowed (stale)")
        if -age > gate.s.max_future_s:
            raise Refusal(f"time: the alert is {-age:.0f} s in the future (over {gate.s.max_future_s:g} s of skew)")
    except Refusal as exc:
        key = _hash(bot, raw)
        recorded = gate.may_record(bot, key)
        if recorded:
            post_command(r, refused_signal(bot, user, str(exc), raw, "rej-" + key))
        log.warning("webhook %s: refused (%s)%s", bot, exc, "" if recorded else "; not recorded again")
        return JSONResponse({"detail": str(exc), "recorded": recorded}, status_code=exc.status)
    nonce, earlier = gate.nonce(bot, p)
    command = new_command("signal", "bot", bot, user=user, payload=p.model_dump_json(), nonce=nonce,
                          reason=p.comment)
    with gate.posting:  # two copies of one alert arriving together: one is posted
        if gate.replay(bot, p, earlier) or any(seen(r, n) for n in earlier):
            return JSONResponse({"status": "duplicate", "nonce": nonce, "detail": "this alert was received "
                                 "before; it is applied once"}, status_code=200)
        entry_id = post_command(r, command)
        gate.accept(bot, p, nonce)
    log.info("webhook %s: %s %s queued as %s", bot, p.side, p.symbol, nonce)
    return JSONResponse({"status": "queued", "nonce": nonce, "entry_id": entry_id, "signal": p.model_dump()},
                        status_code=202)


@router.post("/webhook/{bot}", summary="A trading signal for a webhook bot (TradingView alert or plain JSON)",
             responses={202: {"description": "queued as a signal command"}, 200: {"description": "a replay"},
                        401: {"description": "missing or wrong secret"}, 404: {"description": "no such webhook"},
                        409: {"description": "the bot takes no signals"},
                        422: {"description": "malformed or stale (recorded)"}})
async def webhook(request: Request, bot: str) -> JSONResponse:
    body = await request.body()
    return await run_in_threadpool(_receive, request, request.app.state.webhook, bot, body)
