"""USD-M futures: one-way positions, margin, the wallet and LIMIT/MARKET order matching.

Scope (reference/binance-api.md §2.2, §7); specs live in ``futures_specs.py``, order parameters in
``futures_params.py``, funding in ``funding.py``, the wallet's income records in ``income.py``:
* One-way mode only (``positionSide=BOTH``); cross (default) or isolated margin per symbol;
  leverage 1..125 (default 20). The futures wallet (USDT) is separate from the spot balances.
* Prices: mark = last = the price source's price for the symbol (the spot engine's price); the
  index is derived from it by ``funding.py``.
* MARKET walks the synthetic book; LIMIT takes what crosses, then GTC rests, IOC expires,
  FOK is rejected (-5021) unless it fills in full, GTX (post-only) is rejected (-5022) if it would
  take. Resting orders fill at their price when a bar trades through them (participation x volume).
* Fees in USDT (maker 0.02 %, taker 0.04 %); realized PnL on reducing fills goes to the wallet.
  Every wallet change is also an ``IncomeRecord`` (REALIZED_PNL, COMMISSION, INSURANCE_CLEAR, ...).
* Margin check (-2019) on the exposure-increasing part; reduceOnly (-2022).
* Conditional types sent here get -4120; they live in ``algo.py`` (the Algo service).
* Liquidation: when a bar reaches the §7 liquidation price (exact for isolated; for cross the
  one-position form with the whole wallet, i.e. exact only with a single cross position), the
  position is closed there by a LIQUIDATION order and the remaining maintenance margin is lost.
* Not implemented: hedge mode, GTD, priceMatch, leverage brackets beyond one tier, MARGIN_CALL
  warnings.
"""
from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Callable

from simulator import errors
from simulator.book import BookConfig, SyntheticBook, floor_to
from simulator.errors import ApiError
from simulator.filters import is_multiple
from simulator.futures_specs import DEFAULT_FUTURES_SPECS, FuturesSpec, futures_spec_for  # noqa: F401 (re-exported)
from simulator.futures_params import CONDITIONAL_TYPES, FuturesNewOrder, parse_futures_order  # noqa: F401 (re-exported)
from simulator.income import IncomeLedger
from simulator.prices import Bar

from simulator.futures_models import (  # noqa: F401 (re-exported)
    OPEN_STATUSES,
    ZERO,
    FuturesOrder,
    FuturesTrade,
    Position,
    sign,
)


class FuturesEngine:
    def __init__(
        self,
        specs: dict[str, FuturesSpec],
        wallet: Decimal,
        price_of: Callable[[str], Decimal],
        clock: Callable[[], int],
        book_config: BookConfig = BookConfig(),
        participation: Decimal = Decimal("0.5"),
        maker_rate: Decimal = Decimal("0.0002"),
        taker_rate: Decimal = Decimal("0.0004"),
    ) -> None:
        self.specs = specs
        self.wallet = wallet
        self.price_of = price_of
        self.clock = clock
        self.book_config = book_config
        self.participation = participation
        self.maker_rate, self.taker_rate = maker_rate, taker_rate
        self.positions: dict[str, Position] = {s: Position(s) for s in specs}
        self.orders: dict[tuple[str, int], FuturesOrder] = {}
        self.by_client_id: dict[tuple[str, str], FuturesOrder] = {}
        self.open: dict[str, list[FuturesOrder]] = {s: [] for s in specs}
        self.trades: dict[str, list[FuturesTrade]] = {s: [] for s in specs}
        self._next_order_id = 4_000_000_000
        self._next_trade_id = 100_000
        # A funded wallet has a last-change time, as on Binance (ccxt reads a balance with
        # updateTime 0 as never funded and shows it empty).
        self.update_time = clock()
        self.income = IncomeLedger()
        if wallet:
            self.income.add("TRANSFER", "", wallet, self.update_time)
        self.listeners: list[Callable[[FuturesOrder, FuturesTrade | None], None]] = []

    # -- money ------------------------------------------------------------------------------------

    def mark(self, symbol: str) -> Decimal:
        return self.price_of(symbol)

    def upnl(self, pos: Position) -> Decimal:
        return pos.amt * (self.mark(pos.symbol) - pos.entry) if pos.amt else ZERO

    def position_im(self, pos: Position) -> Decimal:
        return abs(pos.amt) * self.mark(pos.symbol) / pos.leverage

    def maint_margin(self, pos: Position) -> Decimal:
        return abs(pos.amt) * self.mark(pos.symbol) * self.specs[pos.symbol].maint_margin_ratio

    def open_order_im(self, symbol: str) -> Decimal:
        lev = self.positions[symbol].leverage
        return sum((o.remaining * o.price / lev for o in self.open[symbol]), ZERO)

    def open_notional(self, symbol: str) -> tuple[Decimal, Decimal]:
        """(bid, ask) notional of the open orders, remaining x price per side (bidNotional/askNotional)."""
        bids = sum((o.remaining * o.price for o in self.open[symbol] if o.side == "BUY"), ZERO)
        asks = sum((o.remaining * o.price for o in self.open[symbol] if o.side == "SELL"), ZERO)
        return bids, asks

    def cross_upnl(self) -> Decimal:
        return sum((self.upnl(p) for p in self.positions.values() if p.margin_type == "CROSSED"), ZERO)

    def available(self) -> Decimal:
        used = ZERO
        for p in self.positions.values():
            used += p.isolated_wallet if p.margin_type == "ISOLATED" else self.position_im(p)
            used += self.open_order_im(p.symbol)
        return self.wallet + self.cross_upnl() - used

    def liquidation_price(self, pos: Position) -> Decimal:
        """§7 one-position formula (isolated: WB = isolated wallet; cross: WB = wallet)."""
        if not pos.amt:
            return ZERO
        q, ep = abs(pos.amt), pos.entry
        mmr = self.specs[pos.symbol].maint_margin_ratio
        wb = pos.isolated_wallet if pos.margin_type == "ISOLATED" else self.wallet
        if pos.amt > 0:
            lp = (q * ep - wb) / (q * (1 - mmr))
        else:
            lp = (q * ep + wb) / (q * (1 + mmr))
        return max(lp, ZERO)

    # -- orders -----------------------------------------------------------------------------------

    def book(self, symbol: str) -> SyntheticBook:
        return SyntheticBook(self.mark(symbol), self.specs[symbol], self.book_config)

    def _check_filters(self, spec: FuturesSpec, req: FuturesNewOrder, ref_price: Decimal) -> None:
        if req.quantity <= 0:
            raise ApiError(-4003, "Quantity less than or equal to zero.")
        if req.quantity < spec.min_qty:
            raise ApiError(-4004, "Quantity less than min qty.")
        max_qty = spec.market_max_qty if req.type == "MARKET" else spec.max_qty
        if req.quantity > max_qty:
            raise ApiError(-4005, "Quantity greater than max qty.")
        if not is_multiple(req.quantity, spec.step_size):
            raise ApiError(-4023, "Qty not increased by step size.")
        if req.price is not None:
            if req.price <= 0:
                raise ApiError(-4001, "Price less than 0.")
            if req.price < spec.min_price:
                raise ApiError(-4013, "Price less than min price.")
            if req.price > spec.max_price:
                raise ApiError(-4016, f"Limit price can't be higher than {spec.max_price}.")
            if not is_multiple(req.price, spec.tick_size):
                raise ApiError(-4014, "Price not increased by tick size.")
            mark = self.mark(req.symbol)
            if req.side == "BUY" and req.price > mark * spec.multiplier_up:
                raise ApiError(-4016, f"Limit price can't be higher than {spec.fmt_price(mark * spec.multiplier_up)}.")
            if req.side == "SELL" and req.price < mark * spec.multiplier_down:
                raise ApiError(-4024, f"Limit price can't be lower than {spec.fmt_price(mark * spec.multiplier_down)}.")
        if not req.reduce_only and req.quantity * ref_price < spec.min_notional:
            raise ApiError(
                -4164,
                f"Order's notional must be no smaller than {format(spec.min_notional.normalize(), 'f')} "
                "(unless you choose reduce only).",
            )
        if req.type == "LIMIT" and len(self.open[req.symbol]) >= spec.max_num_orders:
            raise errors.filter_failure("MAX_NUM_ORDERS")

    def place(self, req: FuturesNewOrder) -> tuple[FuturesOrder, dict[str, object]]:
        """Place an order; returns (order, snapshot at acceptance for ACK responses)."""
        spec = self.specs.get(req.symbol)
        if spec is None:
            raise errors.invalid_symbol()
        book = self.book(req.symbol)
        ref = req.price if req.price is not None else (book.best_ask if req.side == "BUY" else book.best_bid)
        self._check_filters(spec, req, ref)
        if req.client_order_id is not None:
            prev = self.by_client_id.get((req.symbol, req.client_order_id))
            if prev is not None and prev.is_open:
                raise ApiError(-4116, "ClientOrderId is duplicated.")
        pos = self.positions[req.symbol]
        qty = req.quantity
        if req.reduce_only:
            closing = pos.amt != 0 and sign(pos.amt) != (1 if req.side == "BUY" else -1)
            if not closing:
                raise ApiError(-2022, "ReduceOnly Order is rejected.")
            qty = min(qty, abs(pos.amt))
        # margin for the exposure-increasing part
        signed = qty if req.side == "BUY" else -qty
        closing_part = min(qty, abs(pos.amt)) if pos.amt and sign(pos.amt) != sign(signed) else ZERO
        increase = qty - closing_part
        if increase > 0:
            needed = increase * ref / pos.leverage + increase * ref * self.taker_rate
            if needed > self.available():
                raise ApiError(-2019, "Margin is insufficient.")
        if req.type == "MARKET":
            fills = book.walk(req.side, qty=qty)
        else:
            assert req.price is not None
            fills = book.walk(req.side, qty=qty, limit_price=req.price)
            if req.time_in_force == "GTX" and fills:
                raise ApiError(-5022, "Due to the order could not be executed as maker, the Post Only order will be "
                                      "rejected. The order will not be recorded in the order history")
            if req.time_in_force == "FOK" and sum((f.qty for f in fills), ZERO) < qty:
                raise ApiError(-5021, "Due to the order could not be filled immediately, the FOK order has been "
                                      "rejected. The order will not be recorded in the order history")
        now = self.clock()
        self._next_order_id += 1
        order = FuturesOrder(
            symbol=req.symbol, order_id=self._next_order_id,
            client_order_id=req.client_order_id or "web_" + secrets.token_hex(10),
            side=req.side, type=req.type, time_in_force=req.time_in_force if req.type == "LIMIT" else "GTC",
            price=req.price or ZERO, orig_qty=qty, reduce_only=req.reduce_only, time=now, update_time=now,
        )
        self.orders[(order.symbol, order.order_id)] = order
        self.by_client_id[(order.symbol, order.client_order_id)] = order
        self._emit(order, None)
        ack = {"status": "NEW", "executedQty": ZERO, "cumQuote": ZERO}
        for lvl in fills:
            self._fill(order, lvl.price, lvl.qty, maker=False, now=now)
        if order.remaining > 0:
            if req.type == "MARKET" or req.time_in_force in ("IOC", "FOK"):
                order.status = "EXPIRED"
                self._emit(order, None)
            else:
                self.open[order.symbol].append(order)
        return order, ack

    def _fill(self, order: FuturesOrder, price: Decimal, qty: Decimal, maker: bool, now: int) -> FuturesTrade:
        pos = self.positions[order.symbol]
        signed = qty if order.side == "BUY" else -qty
        realized = ZERO
        if pos.amt == 0 or sign(pos.amt) == sign(signed):
            new_amt = pos.amt + signed
            pos.entry = (abs(pos.amt) * pos.entry + qty * price) / abs(new_amt)
            pos.amt = new_amt
            if pos.margin_type == "ISOLATED":
                pos.isolated_wallet += qty * price / pos.leverage
        else:
            close = min(qty, abs(pos.amt))
            realized = close * (price - pos.entry) * sign(pos.amt)
            if pos.margin_type == "ISOLATED":
                pos.isolated_wallet -= pos.isolated_wallet * close / abs(pos.amt)
            pos.amt += signed
            if pos.amt == 0:
                pos.entry = ZERO
                pos.isolated_wallet = ZERO
            elif sign(pos.amt) == sign(signed):  # flipped: the rest opens at this price
                pos.entry = price
                if pos.margin_type == "ISOLATED":
                    pos.isolated_wallet = abs(pos.amt) * price / pos.leverage
        fee = qty * price * (self.maker_rate if maker else self.taker_rate)
        self.wallet += realized - fee
        pos.update_time = self.update_time = now
        self._next_trade_id += 1
        trade = FuturesTrade(order.symbol, self._next_trade_id, order.order_id, order.side, price, qty, qty * price,
                             fee, realized, now, maker)
        if realized:
            self.income.add("REALIZED_PNL", order.symbol, realized, now, trade.id)
        self.income.add("COMMISSION", order.symbol, -fee, now, trade.id)
        order.executed_qty += qty
        order.cum_quote += qty * price
        order.fills.append(trade)
        order.update_time = now
        order.status = "FILLED" if order.remaining <= 0 else "PARTIALLY_FILLED"
        self.trades[order.symbol].append(trade)
        if not order.is_open and order in self.open[order.symbol]:
            self.open[order.symbol].remove(order)
        self._emit(order, trade)
        return trade

    def _emit(self, order: FuturesOrder, trade: FuturesTrade | None) -> None:
        for listener in self.listeners:
            listener(order, trade)

    def find(self, symbol: str, order_id: int | None, client_order_id: str | None) -> FuturesOrder | None:
        if order_id is not None:
            return self.orders.get((symbol, order_id))
        if client_order_id is not None:
            return self.by_client_id.get((symbol, client_order_id))
        return None

    def cancel(self, symbol: str, order_id: int | None, client_order_id: str | None) -> FuturesOrder:
        order = self.find(symbol, order_id, client_order_id)
        if order is None or not order.is_open:
            raise errors.unknown_order_cancel()
        order.status = "CANCELED"
        order.update_time = self.clock()
        self.open[symbol].remove(order)
        self._emit(order, None)
        return order

    def cancel_all(self, symbol: str) -> None:
        for order in list(self.open[symbol]):
            self.cancel(symbol, order.order_id, None)

    def open_orders(self, symbol: str | None = None) -> list[FuturesOrder]:
        if symbol is not None:
            return list(self.open[symbol])
        return [o for lst in self.open.values() for o in lst]

    # -- settings -----------------------------------------------------------------------------------

    def set_leverage(self, symbol: str, leverage: int) -> None:
        if not 1 <= leverage <= 125:
            raise ApiError(-4028, f"Leverage {leverage} is not valid")
        pos = self.positions[symbol]
        if pos.amt and leverage < pos.leverage:
            old = pos.leverage
            pos.leverage = leverage
            if self.available() < 0:
                pos.leverage = old
                raise ApiError(-4161, "Leverage reduction is not supported in Isolated Margin Mode with open positions"
                               if pos.margin_type == "ISOLATED" else "Margin is insufficient.")
        pos.leverage = leverage

    def set_margin_type(self, symbol: str, margin_type: str) -> None:
        if margin_type not in ("ISOLATED", "CROSSED"):
            raise errors.illegal_param("Invalid marginType.")
        pos = self.positions[symbol]
        if pos.margin_type == margin_type:
            raise ApiError(-4046, "No need to change margin type.")
        if self.open[symbol]:
            raise ApiError(-4047, "Margin type cannot be changed if there exists open orders.")
        if pos.amt:
            raise ApiError(-4048, "Margin type cannot be changed if there exists position.")
        pos.margin_type = margin_type

    # -- the price path -------------------------------------------------------------------------------

    def on_bar(self, bar: Bar) -> list[FuturesTrade]:
        """Fill resting orders the bar traded through, then liquidate if the bar reached the
        position's liquidation price."""
        out = self._fill_resting(bar)
        self._check_liquidation(bar)
        return out

    def _check_liquidation(self, bar: Bar) -> None:
        pos = self.positions[bar.symbol]
        if not pos.amt:
            return
        lp = self.liquidation_price(pos)
        if lp <= 0:
            return
        if (pos.amt > 0 and bar.low <= lp) or (pos.amt < 0 and bar.high >= lp):
            self.liquidate(bar.symbol, lp)

    def liquidate(self, symbol: str, price: Decimal) -> FuturesOrder:
        """Close the whole position at ``price`` with a LIQUIDATION order (client id
        ``autoclose-...``): open orders of the symbol are cancelled first, the realized loss and a
        taker fee hit the wallet, and what maintenance margin is left goes to the insurance fund
        (so an isolated position loses its whole isolated wallet, as on Binance)."""
        spec = self.specs[symbol]
        pos = self.positions[symbol]
        for order in list(self.open[symbol]):
            self.cancel(symbol, order.order_id, None)
        now = self.clock()
        price = max(spec.tick_size, floor_to(price, spec.tick_size))
        qty = abs(pos.amt)
        self._next_order_id += 1
        order = FuturesOrder(
            symbol=symbol, order_id=self._next_order_id, client_order_id=f"autoclose-{now}",
            side="SELL" if pos.amt > 0 else "BUY", type="LIQUIDATION", time_in_force="IOC",
            price=price, orig_qty=qty, reduce_only=True, time=now, update_time=now,
        )
        self.orders[(symbol, order.order_id)] = order
        self.by_client_id[(symbol, order.client_order_id)] = order
        clearance = qty * price * spec.maint_margin_ratio
        trade = self._fill(order, price, qty, maker=False, now=now)
        clear_fee = max(ZERO, clearance - trade.commission)
        self.wallet -= clear_fee
        if clear_fee:
            self.income.add("INSURANCE_CLEAR", symbol, -clear_fee, now)
        return order

    def _fill_resting(self, bar: Bar) -> list[FuturesTrade]:
        resting = self.open.get(bar.symbol)
        if not resting:
            return []
        spec = self.specs[bar.symbol]
        now = self.clock()
        out: list[FuturesTrade] = []
        for side in ("BUY", "SELL"):
            if side == "BUY":
                hit = sorted((o for o in resting if o.side == "BUY" and bar.low < o.price),
                             key=lambda o: (-o.price, o.time, o.order_id))
            else:
                hit = sorted((o for o in resting if o.side == "SELL" and bar.high > o.price),
                             key=lambda o: (o.price, o.time, o.order_id))
            volume = bar.volume * self.participation
            for order in hit:
                qty = floor_to(min(order.remaining, volume), spec.step_size)
                if order.reduce_only:
                    pos = self.positions[order.symbol]
                    closing = pos.amt != 0 and sign(pos.amt) != (1 if order.side == "BUY" else -1)
                    qty = min(qty, abs(pos.amt)) if closing else ZERO
                    if not closing:  # nothing left to reduce: Binance expires it
                        order.status = "EXPIRED"
                        self.open[order.symbol].remove(order)
                        self._emit(order, None)
                        continue
                if qty <= 0:
                    break
                volume -= qty
                out.append(self._fill(order, order.price, qty, maker=True, now=now))
        return out
