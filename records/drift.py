"""Paper ↔ live drift: each live bot's orders paired with its paper shadow's (``state.telemetry``:
the shadow trades the same signals on paper fills), from the records both write.

Pairing: the two bots decide on the same candle, so an order of the live bot and one of its shadow
with the same decision time (``created_at``, market time), side and purpose are a pair (several on one
candle — a DCA ladder — pair in the order they were made). Each order's fills are summed by client
order id.

* slippage (bps) of a pair both filled: ``s × (live VWAP − shadow VWAP) / shadow VWAP × 10 000`` with
  s = +1 for a buy, −1 for a sell: positive means live did worse than the paper model;
* fill rate: filled orders / orders, live and shadow, and their difference in percentage points;
* P&L difference: live realized P&L − shadow realized P&L (closed trades), and the same for the
  equity change from each bot's first equity point in the range.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import pandas as pd
import redis

from records.export import Export, collect
from records.store import RecordStore
from state import telemetry

COLUMNS = ["time", "time_utc", "bot", "shadow", "side", "purpose", "status", "live_order", "shadow_order", "live_qty",
           "live_price", "live_fee", "shadow_qty", "shadow_price", "shadow_fee", "slippage_bps"]


@dataclass(slots=True)
class DriftSummary:
    bot: str
    shadow: str
    pairs: int = 0  # orders filled on both sides
    slippage_bps_mean: float | None = None
    slippage_bps_median: float | None = None
    slippage_bps_worst: float | None = None
    live_fill_rate_pct: float | None = None
    shadow_fill_rate_pct: float | None = None
    fill_rate_diff_pp: float | None = None
    live_pnl: float = 0.0
    shadow_pnl: float = 0.0
    pnl_diff: float = 0.0
    live_equity_change: float | None = None
    shadow_equity_change: float | None = None
    unmatched: dict[str, int] = field(default_factory=dict)  # status -> count


def _fills_by_order(fills: pd.DataFrame) -> dict[str, tuple[float, float, float]]:
    """client order id -> (quantity, VWAP price, fees)."""
    if fills.empty:
        return {}
    f = fills.assign(notional=fills["quantity"] * fills["price"])
    g = f.groupby("client_order_id").agg(q=("quantity", "sum"), n=("notional", "sum"), fee=("fee", "sum"))
    return {str(k): (float(v.q), float(v.n / v.q) if v.q else 0.0, float(v.fee)) for k, v in g.iterrows()}


def pair_orders(live_orders: pd.DataFrame, shadow_orders: pd.DataFrame, live_fills: pd.DataFrame,
                shadow_fills: pd.DataFrame, bot: str, shadow: str) -> pd.DataFrame:
    """One row per live or shadow order, paired where both exist (see the module docstring)."""
    lf, sf = _fills_by_order(live_fills), _fills_by_order(shadow_fills)

    def keyed(orders: pd.DataFrame) -> dict[tuple[int, str, str], list[str]]:
        out: dict[tuple[int, str, str], list[str]] = {}
        if orders.empty:
            return out
        # an order's latest record wins (a resting order is recorded NEW, then FILLED or CANCELED)
        last = orders.drop_duplicates(subset=["client_order_id"], keep="last")
        for o in last.itertuples(index=False):
            out.setdefault((int(o.created_at), str(o.side), str(o.purpose)), []).append(str(o.client_order_id))
        return out

    lk, sk = keyed(live_orders), keyed(shadow_orders)
    rows = []
    for key in sorted(set(lk) | set(sk)):
        lives, shads = lk.get(key, []), sk.get(key, [])
        for i in range(max(len(lives), len(shads))):
            lc = lives[i] if i < len(lives) else ""
            sc = shads[i] if i < len(shads) else ""
            lq, lp, lfee = lf.get(lc, (0.0, 0.0, 0.0))
            sq, sp, sfee = sf.get(sc, (0.0, 0.0, 0.0))
            if lq and sq:
                status = "paired"
            elif lc and sc:
                status = "live not filled" if sq else "shadow not filled" if lq else "neither filled"
            else:
                status = "live only" if lc else "shadow only"
            sign = 1.0 if key[1] == "BUY" else -1.0
            slip = sign * (lp - sp) / sp * 10_000 if status == "paired" and sp else None
            rows.append({"time": key[0], "bot": bot, "shadow": shadow, "side": key[1], "purpose": key[2],
                         "status": status, "live_order": lc, "shadow_order": sc, "live_qty": lq, "live_price": lp or None,
                         "live_fee": lfee, "shadow_qty": sq, "shadow_price": sp or None, "shadow_fee": sfee,
                         "slippage_bps": slip})
    frame = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "time_utc"])
    frame.insert(1, "time_utc", pd.to_datetime(frame["time"], unit="ms", utc=True).dt.strftime("%Y-%m-%d %H:%M:%S"))
    return frame


def _records(kind: str, store: RecordStore, r: redis.Redis | None, bots: list[str], start: int | None,
             end: int | None) -> pd.DataFrame:
    return collect(kind, store, r, bots, start, end).frame


def drift(bot: str, shadow: str, store: RecordStore, r: redis.Redis | None, start: int | None = None,
          end: int | None = None) -> tuple[pd.DataFrame, DriftSummary]:
    """The pairs of one live bot and its summary."""
    def of(kind: str, name: str) -> pd.DataFrame:
        f = _records(kind, store, r, [name], start, end)
        return f[f["bot"] == name] if not f.empty else f

    pairs = pair_orders(of("orders", bot), of("orders", shadow), of("fills", bot), of("fills", shadow), bot, shadow)
    s = DriftSummary(bot, shadow)
    paired = pairs[pairs["status"] == "paired"]
    s.pairs = len(paired)
    if s.pairs:
        slip = paired["slippage_bps"].astype(float)
        s.slippage_bps_mean, s.slippage_bps_median = float(slip.mean()), float(slip.median())
        s.slippage_bps_worst = float(slip.max())
    live_n = int((pairs["live_order"] != "").sum())
    shadow_n = int((pairs["shadow_order"] != "").sum())
    if live_n:
        s.live_fill_rate_pct = 100.0 * float((pairs["live_qty"] > 0).sum()) / live_n
    if shadow_n:
        s.shadow_fill_rate_pct = 100.0 * float((pairs["shadow_qty"] > 0).sum()) / shadow_n
    if s.live_fill_rate_pct is not None and s.shadow_fill_rate_pct is not None:
        s.fill_rate_diff_pp = s.live_fill_rate_pct - s.shadow_fill_rate_pct
    lt, st = of("trades", bot), of("trades", shadow)
    s.live_pnl = float(lt["pnl"].sum()) if not lt.empty else 0.0
    s.shadow_pnl = float(st["pnl"].sum()) if not st.empty else 0.0
    s.pnl_diff = s.live_pnl - s.shadow_pnl
    le, se = of("equity", bot), of("equity", shadow)
    if not le.empty:
        s.live_equity_change = float(le["equity"].iloc[-1] - le["equity"].iloc[0])
    if not se.empty:
        s.shadow_equity_change = float(se["equity"].iloc[-1] - se["equity"].iloc[0])
    s.unmatched = {k: int(v) for k, v in pairs.loc[pairs["status"] != "paired", "status"].value_counts().items()}
    return pairs, s


def drift_export(store: RecordStore, r: redis.Redis | None, bots: Iterable[str] | None = None,
                 start: int | None = None, end: int | None = None) -> Export:
    """Every live bot's pairs (those of ``bots`` when given) as one export."""
    links = telemetry.shadows(r) if r is not None else {}
    wanted = [b for b in links if bots is None or b in set(bots)]
    frames = [drift(b, links[b], store, r, start, end)[0] for b in wanted]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    notes = [] if links else ["no live bot has a paper shadow (the worker writes bot:shadows when it runs them)"]
    return Export("drift", frame, from_store=0, from_streams=len(frame), notes=notes)
