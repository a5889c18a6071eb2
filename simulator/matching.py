"""Spot matching: orders against the synthetic book and the price path.

* MARKET orders walk the synthetic book (``book.py``) at once, as takers.
* LIMIT orders first take whatever the book offers up to their price (taker), then
  GTC rests, IOC expires the rest, FOK expires entirely unless it can fill in full.
* LIMIT_MAKER is rejected (-2010) if it would take.
* STOP_LOSS / TAKE_PROFIT (+ _LIMIT) wait with their funds locked until a bar reaches
  ``stopPrice`` (rejected -2010 if they would trigger at once), then run as MARKET (a triggered
  market order short of funds or liquidity EXPIRES) or as LIMIT at ``price``.
* Resting orders fill at their own price (maker) when a bar trades *through* them
  (BUY: bar.low < price, SELL: bar.high > price), limited to ``participation`` x bar volume
  shared in price-time priority -- so large orders fill partially over several bars.
* Commission comes out of the received asset (BUY -> base, SELL -> quote) at the account's
  maker/taker rates (0.1 % default).
"""
from __future__ import annotations

from decimal import Decimal
from typing import Callable

from simulator import errors
from simulator.accounts import Account
from simulator.book import BookConfig, Level, SyntheticBook, floor_to
from simulator.filters import SymbolSpec
from simulator.params import NewOrder
from simulator.prices import Bar
from simulator.spot_orders import (  # noqa: F401  (re-exported: the engine's records live there)
    CONDITIONAL_TYPES, OPEN_STATUSES, Contingency, SpotOrder, TradeRecord, generate_client_id, stop_fires,
)

ZERO = Decimal(0)
Listener = Callable[[SpotOrder, TradeRecord | None], None]


class SpotEngine:
    def __init__(
        self,
        specs: dict[str, SymbolSpec],
        account: Account,
        clock: Callable[[], int],
        book_config: BookConfig = BookConfig(),
        participation: Decimal = Decimal("0.5"),
    ) -> None:
        self.specs = specs
        self.account = account
        self.clock = clock
        self.book_config = book_config
        self.participation = participation
        self.prices: dict[str, Decimal] = {}
        self.orders: dict[tuple[str, int], SpotOrder] = {}
        self.open: dict[str, list[SpotOrder]] = {s: [] for s in specs}
        self.by_client_id: dict[tuple[str, str], SpotOrder] = {}
        self.trades: dict[str, list[TradeRecord]] = {s: [] for s in specs}
        self._next_order_id: dict[str, int] = {s: 1 for s in specs}
        self._next_trade_id: dict[str, int] = {s: 1 for s in specs}
        self.listeners: list[Listener] = []
        self.contingency: Contingency | None = None  # the order lists (order_lists.py), when served

    # -- prices and the book ------------------------------------------------------------------

    def set_price(self, symbol: str, price: Decimal) -> None:
        self.prices[symbol] = price

    def price(self, symbol: str) -> Decimal:
        return self.prices[symbol]

    def book(self, symbol: str) -> SyntheticBook:
        return SyntheticBook(self.prices[symbol], self.specs[symbol], self.book_config)

    # -- placing ---------------------------------------------------------------------------------

    def _emit(self, order: SpotOrder, trade: TradeRecord | None) -> None:
        for listener in self.listeners:
            listener(order, trade)

    def check(self, req: NewOrder, placed_legs: tuple[str, ...] = ()) -> SpotOrder:
        """Every rule except balances (what /api/v3/order/test does). Returns a draft order.
        ``placed_legs``: the types of an order list's legs checked before this one (they count
        toward MAX_NUM_ORDERS and MAX_NUM_ALGO_ORDERS as if open)."""
        spec = self.specs.get(req.symbol)
        if spec is None:
            raise errors.invalid_symbol()
        avg = self.prices[req.symbol]
        spec.check_order(
            side=req.side,
            market=req.is_market or req.type in ("STOP_LOSS", "TAKE_PROFIT"),
            qty=req.quantity,
            price=req.price,
            avg_price=avg,
            open_orders=len(self.open[req.symbol]) + len(placed_legs) if not req.is_market else 0,
            notional_price=req.stop_price if req.price is None else None,
        )
        if req.type in CONDITIONAL_TYPES:  # Binance's "algo" orders: stop loss and take profit, per symbol
            algo = sum(1 for o in self.open[req.symbol] if o.type in CONDITIONAL_TYPES)
            if algo + sum(1 for t in placed_legs if t in CONDITIONAL_TYPES) >= spec.max_num_algo_orders:
                raise errors.filter_failure("MAX_NUM_ALGO_ORDERS")
        if req.quote_order_qty is not None:
            spec.check_notional(req.quote_order_qty, market=True)
        if req.client_order_id is not None:
            prev = self.by_client_id.get((req.symbol, req.client_order_id))
            if prev is not None and prev.is_open:
                raise errors.duplicate_order()
        if req.stop_price is not None:
            spec.check_price(req.stop_price)
            if stop_fires(req.type, req.side, req.stop_price, avg, avg):
                raise errors.new_order_rejected("Order would trigger immediately.")
        if req.type == "LIMIT_MAKER":
            assert req.price is not None
            book = self.book(req.symbol)
            if (req.side == "BUY" and req.price >= book.best_ask) or (
                req.side == "SELL" and req.price <= book.best_bid
            ):
                raise errors.would_take()
        now = self.clock()
        return SpotOrder(
            symbol=req.symbol,
            order_id=0,
            client_order_id=req.client_order_id or generate_client_id(),
            side=req.side,
            type=req.type,
            time_in_force=req.time_in_force or "GTC",
            price=req.price or ZERO,
            orig_qty=req.quantity or ZERO,
            orig_quote_qty=req.quote_order_qty or ZERO,
            time=now,
            update_time=now,
            stop_price=req.stop_price or ZERO,
        )

    def place(self, req: NewOrder) -> SpotOrder:
        order = self.check(req)
        spec = self.specs[req.symbol]
        if req.type in CONDITIONAL_TYPES:  # waits (funds locked) until the price reaches stopPrice
            self._lock_for(order, spec)
            self._register(order)
            order.pending = True
            self.open[order.symbol].append(order)
            return order
        if req.is_market:
            self._run_market(order, spec, req.quantity, req.quote_order_qty, reject=True)
            return order
        self._lock_for(order, spec)
        self._register(order)
        self._run_limit(order, spec)
        return order

    def add_leg(self, order: SpotOrder, pending: bool) -> None:
        """Put one leg of an order list on the book (``order_list_id`` set and funds locked by the
        list): a stop/take-profit leg waits for its trigger, a LIMIT_MAKER leg rests at once."""
        order.pending = pending
        if not pending:
            order.working_time = order.time
        self._register(order)
        self.open[order.symbol].append(order)

    def lock_amount(self, order: SpotOrder) -> Decimal:
        """What ``order`` locks while it rests: quote at its price (or stop price) for BUY, base for SELL."""
        if order.side == "BUY":
            return (order.price if order.price > 0 else order.stop_price) * order.orig_qty
        return order.orig_qty

    def _run_market(
        self, order: SpotOrder, spec: SymbolSpec, qty: Decimal | None, quote_qty: Decimal | None, reject: bool
    ) -> None:
        """Walk the book as a taker. ``reject``: refuse (raise) on no liquidity / funds, as for a new
        order; otherwise (a triggered stop) the order EXPIRES instead."""
        now = self.clock()
        lot = spec.market_step_size if spec.market_step_size > 0 else spec.step_size
        fills = self.book(order.symbol).walk(order.side, qty=qty, quote_qty=quote_qty, step=lot)
        try:
            if quote_qty is not None:
                got = sum((f.qty for f in fills), ZERO)
                if got < spec.min_qty or got == 0:
                    raise errors.new_order_rejected(
                        "Order book liquidity is less than LOT_SIZE filter minimum quantity."
                    )
                order.orig_qty = got
            self._check_taker_funds(spec, order.side, fills)
        except errors.ApiError:
            if reject:
                raise
            fills = []
        if reject:
            self._register(order)
        order.working_time = now
        for lvl in fills:
            self._fill(order, spec, lvl.price, lvl.qty, maker=False, now=now)
        order.status = "FILLED" if order.remaining <= 0 else "EXPIRED"
        order.update_time = now
        self._finish(order, now)

    def _run_limit(self, order: SpotOrder, spec: SymbolSpec) -> None:
        """A (locked, registered) limit order: take what crosses, then rest or expire per timeInForce."""
        now = self.clock()
        fills = self.book(order.symbol).walk(order.side, qty=order.remaining, limit_price=order.price)
        available = sum((f.qty for f in fills), ZERO)
        tif = order.time_in_force
        order.working_time = now
        if tif == "FOK" and available < order.remaining:
            # FOK that cannot fill completely: accepted and immediately EXPIRED, nothing traded
            order.status = "EXPIRED"
            order.update_time = now
            self._finish(order, now)
            return
        for lvl in fills:
            self._fill(order, spec, lvl.price, lvl.qty, maker=False, now=now)
        if order.remaining <= 0:
            order.status = "FILLED"
        elif tif in ("IOC", "FOK"):
            order.status = "EXPIRED"
        else:
            order.status = "PARTIALLY_FILLED" if order.executed_qty > 0 else "NEW"
        order.update_time = now
        if order.is_open:
            if order not in self.open[order.symbol]:
                self.open[order.symbol].append(order)
        else:
            self._finish(order, now)

    def _check_taker_funds(self, spec: SymbolSpec, side: str, fills: list[Level]) -> None:
        if side == "BUY":
            cost = sum((f.price * f.qty for f in fills), ZERO)
            if cost > self.account.free(spec.quote_asset):
                raise errors.insufficient_balance()
        else:
            qty = sum((f.qty for f in fills), ZERO)
            if qty > self.account.free(spec.base_asset):
                raise errors.insufficient_balance()

    def _lock_for(self, order: SpotOrder, spec: SymbolSpec) -> None:
        amount = self.lock_amount(order)
        self.account.lock(spec.quote_asset if order.side == "BUY" else spec.base_asset, amount, order.time)
        order.locked = amount

    def _register(self, order: SpotOrder) -> None:
        sym = order.symbol
        order.order_id = self._next_order_id[sym]
        self._next_order_id[sym] += 1
        self.orders[(sym, order.order_id)] = order
        self.by_client_id[(sym, order.client_order_id)] = order
        self._emit(order, None)  # accepted: status NEW

    def _fill(self, order: SpotOrder, spec: SymbolSpec, price: Decimal, qty: Decimal, maker: bool, now: int) -> TradeRecord:
        acct = self.account
        rate = acct.maker_rate if maker else acct.taker_rate
        quote = price * qty
        if order.side == "BUY":
            if order.locked > 0:  # resting/limit order: pay from the lock, release price improvement
                held = order.price * qty
                acct.spend_locked(spec.quote_asset, quote, now)
                acct.unlock(spec.quote_asset, held - quote, now)
                order.locked -= held
            else:
                acct.spend_free(spec.quote_asset, quote, now)
            commission, asset = qty * rate, spec.base_asset
            acct.credit(spec.base_asset, qty - commission, now)
        else:
            if order.locked > 0:
                acct.spend_locked(spec.base_asset, qty, now)
                order.locked -= qty
            else:
                acct.spend_free(spec.base_asset, qty, now)
            commission, asset = quote * rate, spec.quote_asset
            acct.credit(spec.quote_asset, quote - commission, now)
        trade = TradeRecord(
            symbol=order.symbol,
            id=self._next_trade_id[order.symbol],
            order_id=order.order_id,
            price=price,
            qty=qty,
            quote_qty=quote,
            commission=commission,
            commission_asset=asset,
            time=now,
            is_buyer=order.side == "BUY",
            is_maker=maker,
        )
        self._next_trade_id[order.symbol] += 1
        order.executed_qty += qty
        order.cum_quote += quote
        order.fills.append(trade)
        order.update_time = now
        order.status = "FILLED" if order.remaining <= 0 else "PARTIALLY_FILLED"
        self.trades[order.symbol].append(trade)
        self._emit(order, trade)
        if order.order_list_id >= 0 and self.contingency is not None:
            self.contingency.after_fill(order)
        return trade

    def _finish(self, order: SpotOrder, now: int) -> None:
        """Release what a closed order still holds."""
        if order.locked > 0:
            spec = self.specs[order.symbol]
            asset = spec.quote_asset if order.side == "BUY" else spec.base_asset
            self.account.unlock(asset, order.locked, now)
            order.locked = ZERO
        if order in self.open.get(order.symbol, []):
            self.open[order.symbol].remove(order)
        if order.status in ("EXPIRED", "CANCELED"):
            self._emit(order, None)

    # -- queries and cancels ---------------------------------------------------------------------

    def find(self, symbol: str, order_id: int | None, client_order_id: str | None) -> SpotOrder | None:
        if order_id is not None:
            return self.orders.get((symbol, order_id))
        if client_order_id is not None:
            return self.by_client_id.get((symbol, client_order_id))
        return None

    def cancel(
        self, symbol: str, order_id: int | None, client_order_id: str | None, new_client_order_id: str | None = None
    ) -> SpotOrder:
        """Cancel one open order; a leg of a working order list cancels the whole list (Binance)."""
        order = self.find(symbol, order_id, client_order_id)
        if order is None or not order.is_open:
            raise errors.unknown_order_cancel()
        if order.order_list_id >= 0 and self.contingency is not None:
            if self.contingency.cancel_leg(order, new_client_order_id):
                return order
        self.cancel_open(order, new_client_order_id)
        return order

    def cancel_open(self, order: SpotOrder, new_client_order_id: str | None = None) -> None:
        """Cancel ``order`` (open) alone: status CANCELED, funds released, the event emitted."""
        now = self.clock()
        order.status = "CANCELED"
        order.update_time = now
        order.orig_client_order_id = order.client_order_id
        order.cancel_client_id = new_client_order_id or generate_client_id()
        self._finish(order, now)

    def expire(self, order: SpotOrder) -> None:
        """End ``order`` (open) as EXPIRED: the other leg of an order list once one leg went off."""
        now = self.clock()
        order.status = "EXPIRED"
        order.update_time = now
        order.pending = False
        self._finish(order, now)

    def cancel_all(self, symbol: str) -> list[SpotOrder]:
        """Cancel every open order of ``symbol`` (an order list's legs with their list); -2011 when
        there is none (as Binance does)."""
        orders = list(self.open.get(symbol, []))
        if not orders:
            raise errors.unknown_order_cancel()
        out = []
        for o in orders:
            if o.is_open:  # the other leg of a list canceled just before is gone already
                self.cancel(symbol, o.order_id, None)
                out.append(o)
        return out

    def open_orders(self, symbol: str | None = None) -> list[SpotOrder]:
        if symbol is not None:
            return list(self.open.get(symbol, []))
        return [o for lst in self.open.values() for o in lst]

    # -- the price path --------------------------------------------------------------------------

    def _trigger(self, order: SpotOrder, spec: SymbolSpec) -> None:
        """The stop price was reached: STOP_LOSS/TAKE_PROFIT run as MARKET, *_LIMIT as LIMIT."""
        order.pending = False
        if order.type in ("STOP_LOSS", "TAKE_PROFIT"):
            now = self.clock()
            asset = spec.quote_asset if order.side == "BUY" else spec.base_asset
            self.account.unlock(asset, order.locked, now)  # pays from free funds as a market order
            order.locked = ZERO
            self.open[order.symbol].remove(order)
            self._run_market(order, spec, order.orig_qty, None, reject=False)
        else:
            self._run_limit(order, spec)

    def on_bar(self, bar: Bar) -> list[TradeRecord]:
        """Move the price to the bar's close and fill resting orders the bar traded through."""
        self.prices[bar.symbol] = bar.close
        if not self.open.get(bar.symbol):
            return []
        spec = self.specs[bar.symbol]
        out: list[TradeRecord] = []
        triggered: set[int] = set()
        for order in [o for o in self.open[bar.symbol] if o.pending]:
            if not order.pending:  # the other leg of an order list that triggered before it in this bar
                continue
            if stop_fires(order.type, order.side, order.stop_price, bar.low, bar.high):
                if order.order_list_id >= 0 and self.contingency is not None:
                    self.contingency.before_trigger(order)  # the other leg expires; its lock moves here
                fills_before = len(order.fills)
                self._trigger(order, spec)
                triggered.add(order.order_id)
                out.extend(order.fills[fills_before:])
        resting = [o for o in self.open[bar.symbol] if not o.pending]
        now = self.clock()

        def low(o: SpotOrder) -> Decimal:
            # a limit order triggered in this bar saw only the part of it after its stop price
            return min(o.stop_price, bar.close) if o.order_id in triggered else bar.low

        def high(o: SpotOrder) -> Decimal:
            return max(o.stop_price, bar.close) if o.order_id in triggered else bar.high

        for side in ("BUY", "SELL"):
            if side == "BUY":
                hit = [o for o in resting if o.side == "BUY" and low(o) < o.price]
                hit.sort(key=lambda o: (-o.price, o.time, o.order_id))
            else:
                hit = [o for o in resting if o.side == "SELL" and high(o) > o.price]
                hit.sort(key=lambda o: (o.price, o.time, o.order_id))
            volume = bar.volume * self.participation
            for order in hit:
                qty = floor_to(min(order.remaining, volume), spec.step_size)
                if qty <= 0:
                    break
                volume -= qty
                out.append(self._fill(order, spec, order.price, qty, maker=True, now=now))
                if order.remaining <= 0:
                    self._finish(order, now)
        return out
