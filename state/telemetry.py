"""What the operator's view needs from the worker beyond the heartbeat and the record streams — the
records the worker writes for the dashboard's health panel, the symbols' display precision and the
paper shadows of live bots (docs/records.md, "What the worker writes") — and their readers.

* ``keys.HEALTH``: ``HealthView``, every second (engine/health.py; the market feed's stream figures are
  not written yet);
* ``keys.SYMBOLS``: ``SymbolFacts`` per symbol, at start (``queue_symbols``);
* ``keys.SHADOWS``: live bot -> its paper shadow's name, at start (``queue_shadows``). The shadow is a
  paper bot on the same config and candles whose orders, fills, trades and equity go to the usual
  streams under its own name; it is not in ``keys.BOTS`` (no tab lists it, no command targets it) and
  it follows the live bot's trading state.

Readers return None (or empty) when the worker has not written them: the dashboard then says what is
not reported, never guesses.
"""
from __future__ import annotations

import json

import redis
from pydantic import BaseModel, ConfigDict, Field

from state import keys


class _M(BaseModel):
    model_config = ConfigDict(extra="ignore")


class StreamHealth(_M):
    """One WebSocket the worker depends on (``engine.live.LiveVenue.stream_status``, the market feed)."""

    connected: bool = False
    events: int = 0
    reconnects: int = 0  # since the worker started
    last_event_ms: int = 0  # wall clock


class VenueMarketHealth(_M):
    """One venue market ('spot', 'futures') as ``exchange.client.ExchangeClient.health()`` reports it."""

    last_ok_ms: int = 0
    weight_used: int = 0  # X-MBX-USED-WEIGHT-1M of the last response
    weight_limit: int = 0
    errors_last_minute: int = 0
    blocked_until_ms: int = 0
    stream: StreamHealth | None = None  # its user-data stream
    problems: list[str] = Field(default_factory=list)


class HealthView(_M):
    """The worker's health view (engine/health.py writes it every second; ``market_stream`` is not
    written yet — the panel says so).

    market_data_age_s: per symbol, wall seconds since its last market data. loop_ms_p50 / loop_ms_p99:
    the trading loop's step time (candle batch in → Redis commit done) over the last ``loop_samples``
    steps. market_stream: the kline WebSocket (connected, reconnects since start, last message).
    """

    time: int = 0  # wall ms
    stale_after_s: float = 0.0
    market_data_age_s: dict[str, float | None] = Field(default_factory=dict)
    markets: dict[str, VenueMarketHealth] = Field(default_factory=dict)
    held: dict[str, list[str]] = Field(default_factory=dict)
    loop_ms_p50: float | None = None
    loop_ms_p99: float | None = None
    loop_samples: int = 0
    market_stream: StreamHealth | None = None


class SymbolFacts(_M):
    """How a symbol's numbers are shown: its assets and the venue's tick and step (exchangeInfo's
    PRICE_FILTER.tickSize and LOT_SIZE.stepSize as exact decimal strings)."""

    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: str
    step_size: str


def queue_symbols(pipe: redis.client.Pipeline, facts: list[SymbolFacts]) -> None:
    if facts:
        pipe.hset(keys.SYMBOLS, mapping={f.symbol: f.model_dump_json() for f in facts})


def queue_shadows(pipe: redis.client.Pipeline, shadows: dict[str, str]) -> None:
    pipe.delete(keys.SHADOWS)
    if shadows:
        pipe.hset(keys.SHADOWS, mapping=shadows)


def health(r: redis.Redis) -> HealthView | None:
    raw = r.get(keys.HEALTH)
    return HealthView.model_validate_json(raw) if raw else None


def symbols(r: redis.Redis) -> dict[str, SymbolFacts]:
    facts = [SymbolFacts.model_validate_json(v) for v in r.hgetall(keys.SYMBOLS).values()]
    return {f.symbol: f for f in facts}


def shadows(r: redis.Redis) -> dict[str, str]:
    def s(x: object) -> str:
        return x.decode() if isinstance(x, bytes) else str(x)

    return {s(k): s(v) for k, v in r.hgetall(keys.SHADOWS).items()}


def intents(r: redis.Redis, bot: str) -> list[dict[str, object]]:
    """A live bot's order intents as stored (``state.intents.IntentRecord`` JSON), newest first: the
    venue's own trades of each order, with the commission in the asset the venue charged."""
    rows = [json.loads(v) for v in r.hvals(keys.intents(bot))]
    return sorted(rows, key=lambda d: int(d.get("created_at", 0)), reverse=True)
