"""DCA bots in backtests: the worker's own ``engine.dca_bot.DcaBot`` over stored candles, and
the deals table of its report.

The bot is built by ``engine.worker.build_bot`` (the same DcaBot, RiskEngine, RiskMonitor,
PaperExecutor and ``executors.venue.SimVenue`` a paper DCA bot gets) through
``backtest.engine.build_sim_bot``, as signal bots are; only the fee/slippage numbers come from
the backtest's ``FillModel``, and the trading state is a ``backtest.engine.BacktestControl``
(risk breaches move it as the worker would). The
candles of every pair are fed in one global time order (``market.replay.iter_merged``) through
``DcaBot.on_candle``: the venue matches the resting safety/take-profit orders, then stops and
new deals are decided on the close, exactly as in paper.

What the fill model means for a DCA bot (see docs/backtest.md): the same as for a paper DCA bot,
since both use ``executors.fills.FillModel``:

* resting limit orders (safety orders, take-profit steps) are matched on the ``SimVenue`` with the
  model: the policy's touch / trade-through rule, the limit price (the open on a gap, except
  pessimistic), the maker fee, ``max_volume_pct`` of each candle's volume shared in price-time
  priority (partial fills over several candles, an order handed to the bot when complete), the queue
  ahead on a touch (realistic), and ``intrabar`` for one candle through both a deal's safety order
  and its take-profit (only the side the candle visited first fills there);
* market orders (base order, stop loss, trailing take-profit, flatten) go through the paper executor
  at the deciding candle's close: taker fee, slippage, latency, the volume cap.

``fill_at=next_open`` is a signal-bot setting (a DCA bot decides and fills on the close, as in paper);
a run that sets it gets a note in its report saying it was not applied. A run whose deal and
portfolio quantities ever disagree (a bot accounting fault) also gets a note naming the first time.

Deals: ``DcaBot.drain`` hands over closed deals (``BotUpdate.deals``) and the trades (tagged
with their deal id) the way the worker receives them; the run drains every ``DRAIN_EVERY``
candles so the bot's outbox stays small. Deals still open at the end are listed as ``OPEN``,
valued at the last close.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from backtest.build import build_sim_bot
from backtest.data import SymbolData
from backtest.fills import FillModel
from backtest.result import BacktestControl, BotResult, DealRow
from core.types import Candle, PositionSide, Trade
from engine.assembly import SimParts
from engine.dca_bot import DcaBot
from executors.paper import PaperExecutor
from executors.venue import SimVenue
from market.replay import iter_merged
from settings import AppConfig, BotConfig
from state.models import TradeRecord
from strategy.base import NoStrategy

DRAIN_EVERY = 2000  # candles between two drains: bounds the bot's outbox (orders, fills, equity records)
DEFAULT_MODEL = FillModel()


def ignored_settings(model: FillModel) -> list[str]:
    """Notes for the fill-model settings a DCA run does not apply (non-default values only)."""
    if model.fill_at != DEFAULT_MODEL.fill_at:
        return [f"fill_at={model.fill_at} not applied: DCA market orders (base order, stops) fill at the "
                "deciding candle's close, as in paper"]
    return []


def build_dca_backtest_bot(cfg: BotConfig, app: AppConfig, model: FillModel, interval: str) -> DcaBot:
    """The configured DCA bot, built as a signal bot's backtest is (``backtest.build.build_sim_bot``:
    the worker's ``build_bot`` as a paper bot with the run's fill model, the paper bot's risk monitor,
    a ``BacktestControl``), its ladder on a ``SimVenue`` matching with the fill model and its market
    orders through a ``PaperExecutor`` with it. ``stop_and_disable`` pauses it as in the worker (a
    queued breach the control applies, also recorded as a risk event)."""
    venue = SimVenue(quote_asset=app.paper.quote_asset, model=model)
    executor = PaperExecutor(quote_asset=app.paper.quote_asset, model=model)
    bot = build_sim_bot(cfg, app, model, interval, SimParts(executor=executor, resting=venue, records=True))
    if not isinstance(bot, DcaBot):
        raise ValueError(f"bot {cfg.name} is not a DCA bot")
    return bot


def pairs_data(bot: DcaBot, data: dict[str, SymbolData]) -> list[SymbolData]:
    """The bot's pairs' candles; every pair must be there, all of one interval."""
    missing = [s for s in bot.symbols if s not in data]
    if missing:
        raise ValueError(f"DCA bot {bot.name}: no candles for {', '.join(missing)}; symbols in the data: "
                         f"{', '.join(sorted(data)) or 'none'}")
    series = [data[s] for s in bot.symbols]
    intervals = {d.interval for d in series}
    if len(intervals) > 1:
        raise ValueError(f"DCA bot {bot.name}: its pairs come in different intervals ({', '.join(sorted(intervals))}); "
                         "pick one with --interval")
    return series


def benchmark_index(times: np.ndarray, series: Sequence[SymbolData]) -> np.ndarray:
    """Buy and hold of the pairs in equal parts, as a price index on ``times`` (1.0 at the start):
    each pair's close over its first close, carried forward over gaps, 1.0 before its first candle
    (that part is still cash). One pair: its own closes (the benchmark of a signal bot)."""
    if len(series) == 1:
        return series[0].closes
    parts = []
    for d in series:
        idx = np.searchsorted(d.times, times, side="right") - 1  # last candle at or before each time
        rel = d.closes / d.closes[0]
        parts.append(np.where(idx >= 0, rel[np.maximum(idx, 0)], 1.0))
    return np.mean(parts, axis=0)


def _trade(rec: TradeRecord) -> Trade:
    return Trade(rec.bot, rec.symbol, PositionSide(rec.side), rec.quantity, rec.entry_price, rec.exit_price,
                 rec.entry_time, rec.exit_time, rec.pnl, rec.fees, rec.exit_reason)


@dataclass(slots=True)
class _Collector:
    """What the bot's drains handed over: trades (with their deal id) and closed deals."""

    trades: list[Trade] = field(default_factory=list)
    trade_deal: list[str] = field(default_factory=list)
    closed: list[dict[str, object]] = field(default_factory=list)

    def take(self, bot: DcaBot, now: int) -> None:
        upd = bot.drain(now)
        for rec in upd.trades:
            self.trades.append(_trade(rec))
            self.trade_deal.append(rec.signal_id)
        self.closed.extend(upd.deals)


def deal_row(d: dict[str, object], trades: Sequence[Trade], end_ms: int, open_pnl: float | None = None) -> DealRow:
    """One deal (``Deal.dump()``) and its trades as a table row; ``open_pnl`` for an open deal."""
    tranches: list[dict[str, float]] = d["tranches"]  # type: ignore[assignment]
    qty = sum(t["quantity"] for t in tranches)
    invested = sum(t["quantity"] * t["price"] + t["fee"] for t in tranches)
    avg = sum(t["quantity"] * t["price"] for t in tranches) / qty if qty else 0.0
    out_qty = sum(t.quantity for t in trades)
    exit_price = sum(t.exit_price * t.quantity for t in trades) / out_qty if out_qty else None
    status = str(d["status"])
    is_open = status not in ("CLOSED", "STOPPED")
    closed_at = None if is_open else int(d["closed_at"])  # type: ignore[arg-type]
    opened_at = int(d["opened_at"])  # type: ignore[arg-type]
    if is_open:
        pnl = float(open_pnl or 0.0)
        fees = float(d["fees"])  # type: ignore[arg-type]  # entry fees and take-profit steps so far
    else:
        pnl = float(d["realized_pnl"])  # type: ignore[arg-type]
        fees = sum(t.fees for t in trades)  # entry and exit fees, market exits included
    cfg: dict[str, object] = d["config"]  # type: ignore[assignment]
    return DealRow(
        id=str(d["id"]), symbol=str(d["symbol"]), side=str(d["side"]), status="OPEN" if is_open else status,
        opened_at=opened_at, closed_at=closed_at, duration_ms=(closed_at if closed_at is not None else end_ms) - opened_at,
        safety_orders=int(d["safety_filled"]), max_safety_orders=int(cfg.get("max_safety_orders") or 0),  # type: ignore[call-overload]
        base_price=float(d["base_price"]), avg_entry=avg, quantity=qty, invested=invested,  # type: ignore[arg-type]
        exit_price=exit_price, pnl=pnl, pnl_pct=100.0 * pnl / invested if invested else 0.0, fees=fees,
        max_drawdown_pct=float(d["max_drawdown_pct"]), close_reason=str(d.get("close_reason") or ""),  # type: ignore[arg-type]
        tp_steps_filled=int(d["tp_steps_filled"]),  # type: ignore[call-overload]
    )


def run_dca(bot: DcaBot, params: dict[str, object], data: dict[str, SymbolData], model: FillModel) -> BotResult:
    """Every candle of the bot's pairs in one global time order through ``DcaBot.on_candle``;
    equity is marked once per time step, after every pair's candle of that time."""
    series = pairs_data(bot, data)
    times = np.unique(np.concatenate([d.times for d in series]))
    equity = np.empty(len(times), dtype=np.float64)
    got = _Collector()
    notes = ignored_settings(model)
    positions, deals = bot.portfolio.positions, bot.deals
    control: BacktestControl = bot.control_sim  # type: ignore[attr-defined]
    bars: dict[str, Candle] = {}  # each pair's candle its market orders are decided on (volume cap)
    if isinstance(bot.executor, PaperExecutor):
        bot.executor.bar_of = bars.get
    j, current, seen, mismatch = -1, None, 0, False
    for c in iter_merged(d.candles() for d in series):
        bars[c.symbol] = c
        if c.open_time != current:
            if j >= 0:
                equity[j] = bot.equity()
            j, current = j + 1, c.open_time
        bot.on_candle(c)
        control.settle(bot)
        seen += 1
        if not mismatch:  # the deal and the portfolio must hold the same quantity of the pair
            deal, pos = deals.get(c.symbol), positions.get(c.symbol)
            dq, pq = (deal.quantity if deal else 0.0), (pos.quantity if pos else 0.0)
            if deal is not None and not deal.long:
                dq = -dq
            if abs(dq - pq) > 1e-9 * max(abs(dq), abs(pq), 1e-9):
                mismatch = True
                notes.append(f"{c.symbol} at the candle of {c.open_time}: the deal holds {dq:.10g} but the "
                             f"portfolio {pq:.10g} (a DCA bot accounting fault; figures after it are unreliable)")
        if seen % DRAIN_EVERY == 0:
            got.take(bot, c.close_time + 1)
    if j >= 0:
        equity[j] = bot.equity()
    end_ms = int(times[-1]) + bot.interval_ms
    got.take(bot, end_ms)

    by_deal: dict[str, list[Trade]] = {}
    for t, deal_id in zip(got.trades, got.trade_deal):
        by_deal.setdefault(deal_id, []).append(t)
    rows = [deal_row(d, by_deal.get(str(d["id"]), []), end_ms) for d in got.closed]
    for deal in bot.deals.values():  # still open at the end
        pos = bot.portfolio.position(deal.symbol)
        mark = bot.last_price.get(deal.symbol, pos.avg_entry)
        open_pnl = deal.realized_pnl + pos.unrealized_pnl(mark) - pos.entry_fees
        rows.append(deal_row(deal.dump(), by_deal.get(deal.id, []), end_ms, open_pnl))
    rows.sort(key=lambda r: (r.opened_at, r.id))

    main = data[bot.symbol]
    pos = bot.portfolio.positions.get(bot.symbol)
    name = "dca" if isinstance(bot.strategy, NoStrategy) else f"dca+{bot.strategy.name}"
    return BotResult(
        name=bot.name, symbol=bot.symbol, strategy=name, params=params, interval=main.interval, path="bar",
        starting_balance=bot.portfolio.starting_balance, times=times, closes=benchmark_index(times, series),
        equity=equity, trades=got.trades, signals=[], fees_paid=bot.portfolio.fees_paid,
        open_quantity=pos.quantity if pos else 0.0, open_entry=pos.avg_entry if pos else 0.0,
        open_since=pos.opened_at if pos else 0, orders_sent=bot.orders_sent, orders_expired=0,
        denials=dict(bot.denials), fill_model=model, data=main, trading_state=control.state.value,
        risk_events=list(control.events), kind="dca", symbols=list(bot.symbols), deals=rows,
        dca_settings=bot.settings.model_dump(), notes=notes, funding=bot.portfolio.funding,
    )
