"""Backtest results in Redis (the dashboard's Backtest tab): save, load, list; the last
``KEEP`` results are kept.

* ``keys.BACKTEST_INDEX``  ZSET id -> created_at ms (the order, and what trimming reads);
* ``keys.BACKTEST_META``   HASH id -> small JSON line: bot, status (running/done/failed), error,
  times and headline metrics, so the list never loads a report;
* ``keys.backtest_result(id)`` STRING the whole result JSON (report with trades, plot data).
"""
from __future__ import annotations

import json
import time
from typing import Any

import redis

from state import keys

KEEP = 20
STATUSES = ("running", "done", "failed")
HEADLINE = ("total_return_pct", "sharpe", "max_drawdown_pct", "trades", "win_rate_pct", "final_equity")


def _now() -> int:
    return int(time.time() * 1000)


def _text(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else x


def set_status(r: redis.Redis, result_id: str, bot: str, status: str, error: str = "",
               request: dict[str, Any] | None = None, headline: dict[str, Any] | None = None) -> dict[str, Any]:
    """Create or update a result's meta line (created_at is kept from the first write)."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")
    old = meta(r, result_id) or {}
    now = _now()
    line = {**old, "id": result_id, "bot": bot, "status": status, "error": error,
            "created_at": old.get("created_at", now), "updated_at": now}
    if request is not None:
        line["request"] = request
    if headline is not None:
        line["headline"] = headline
    with r.pipeline(transaction=True) as p:
        p.hset(keys.BACKTEST_META, result_id, json.dumps(line, allow_nan=False))
        p.zadd(keys.BACKTEST_INDEX, {result_id: line["created_at"]})
        p.execute()
    _trim(r)
    return line


def save(r: redis.Redis, result_id: str, result: dict[str, Any]) -> None:
    """Store a finished result (``service.run_request``'s dict) and mark it done."""
    rep = result.get("report") or {}
    head = {k: rep.get(k) for k in HEADLINE if k != "max_drawdown_pct"}
    head["max_drawdown_pct"] = (rep.get("max_drawdown") or {}).get("max_drawdown_pct")
    r.set(keys.backtest_result(result_id), json.dumps(result, allow_nan=False))
    set_status(r, result_id, result.get("bot", ""), "done", headline=head, request=result.get("request"))


def load(r: redis.Redis, result_id: str) -> dict[str, Any] | None:
    raw = r.get(keys.backtest_result(result_id))
    return json.loads(_text(raw)) if raw else None


def meta(r: redis.Redis, result_id: str) -> dict[str, Any] | None:
    raw = r.hget(keys.BACKTEST_META, result_id)
    return json.loads(_text(raw)) if raw else None


def list_results(r: redis.Redis, n: int = KEEP) -> list[dict[str, Any]]:
    """Meta lines, newest first."""
    ids = [_text(x) for x in r.zrevrange(keys.BACKTEST_INDEX, 0, n - 1)]
    if not ids:
        return []
    raws = r.hmget(keys.BACKTEST_META, ids)
    return [json.loads(_text(x)) for x in raws if x]


def running(r: redis.Redis) -> list[dict[str, Any]]:
    return [m for m in list_results(r) if m.get("status") == "running"]


def _trim(r: redis.Redis) -> None:
    old = [_text(x) for x in r.zrange(keys.BACKTEST_INDEX, 0, -(KEEP + 1))]
    if not old:
        return
    with r.pipeline(transaction=True) as p:
        p.zrem(keys.BACKTEST_INDEX, *old)
        p.hdel(keys.BACKTEST_META, *old)
        p.delete(*[keys.backtest_result(i) for i in old])
        p.execute()
