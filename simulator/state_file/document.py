"""The state file's document: what ``capture``/``render`` store of a running exchange, and ``restore``,
which checks everything before it replaces the accounts."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from simulator.accounts import Balance
from simulator.algo import AlgoOrder
from simulator.futures import FuturesOrder, FuturesTrade, Position
from simulator.matching import OPEN_STATUSES, SpotOrder, TradeRecord
from simulator.state_file.codec import (
    _ALGO, _BALANCE, _F_ORDER, _F_TRADE, _ORDER, _POSITION, _TRADE, _Bad, _decode, _dec, _dumps, _int,
    _known_symbol, _list, _obj,
)

from simulator.state_file.funding_section import capture_funding, decode_funding, render_funding
from simulator.state_file.order_lists_section import capture_order_lists, decode_order_lists, render_order_lists

if TYPE_CHECKING:
    from simulator.state import SimExchange

FORMAT = "simulator-state"
VERSION = 1


def capture(ex: SimExchange, saved_at: int | None = None) -> dict[str, Any]:
    """What ``snapshot`` stores, copied out of ``ex`` as fast as possible (~10 ms at 5k orders): tuples
    of field values and copied lists/dicts, nothing that refers to a live engine object, so it can be
    encoded and written on another thread while the engines keep trading. Take it on the event loop,
    between requests, so it never catches an order halfway through matching."""
    eng, fut, algo = ex.engine, ex.futures, ex.algo
    return {
        "saved_at": ex.now_ms() if saved_at is None else saved_at,
        "spot": {
            "update_time": ex.account.update_time,
            "balances": [(a, _BALANCE.values(b)) for a, b in ex.account.balances.items()],
            "next_order_id": dict(eng._next_order_id),
            "next_trade_id": dict(eng._next_trade_id),
            "trades": [_TRADE.values(t) for lst in eng.trades.values() for t in lst],
            # dict order is registration order: replaying it rebuilds the client-id index exactly
            "orders": [(_ORDER.values(o), [t.id for t in o.fills]) for o in eng.orders.values()],
            "open": {s: [o.order_id for o in lst] for s, lst in eng.open.items() if lst},
        },
        "futures": {
            "wallet": fut.wallet,
            "update_time": fut.update_time,
            "next_order_id": fut._next_order_id,
            "next_trade_id": fut._next_trade_id,
            "positions": [_POSITION.values(p) for p in fut.positions.values()],
            "trades": [_F_TRADE.values(t) for lst in fut.trades.values() for t in lst],
            "orders": [(_F_ORDER.values(o), [t.id for t in o.fills]) for o in fut.orders.values()],
            "open": {s: [o.order_id for o in lst] for s, lst in fut.open.items() if lst},
        },
        "algo": {
            "next_id": algo._next_id,
            "orders": [_ALGO.values(a) for a in algo.orders.values()],
        },
        "funding": capture_funding(ex),
        "order_lists": capture_order_lists(ex),
    }


def render(cap: dict[str, Any]) -> dict[str, Any]:
    """The file document (JSON-ready, Decimals as strings) from a ``capture``; safe on any thread."""
    spot, fut, algo = cap["spot"], cap["futures"], cap["algo"]
    return {
        "format": FORMAT,
        "version": VERSION,
        "saved_at": cap["saved_at"],
        "spot": {
            "update_time": spot["update_time"],
            "balances": {a: _BALANCE.encode(b) for a, b in spot["balances"]},
            "next_order_id": spot["next_order_id"],
            "next_trade_id": spot["next_trade_id"],
            "trades": [_TRADE.encode(t) for t in spot["trades"]],
            "orders": [{**_ORDER.encode(o), "fills": fills} for o, fills in spot["orders"]],
            "open": spot["open"],
        },
        "futures": {
            "wallet": str(fut["wallet"]),
            "update_time": fut["update_time"],
            "next_order_id": fut["next_order_id"],
            "next_trade_id": fut["next_trade_id"],
            "positions": [_POSITION.encode(p) for p in fut["positions"]],
            "trades": [_F_TRADE.encode(t) for t in fut["trades"]],
            "orders": [{**_F_ORDER.encode(o), "fills": fills} for o, fills in fut["orders"]],
            "open": fut["open"],
        },
        "algo": {
            "next_id": algo["next_id"],
            "orders": [_ALGO.encode(a) for a in algo["orders"]],
        },
        "funding": render_funding(cap["funding"]),
        "order_lists": render_order_lists(cap["order_lists"]),
    }


def snapshot(ex: SimExchange, saved_at: int | None = None) -> dict[str, Any]:
    """Everything account-related in ``ex`` as a JSON-ready dict (Decimals as strings)."""
    return render(capture(ex, saved_at))


def dumps(ex: SimExchange) -> str:
    return _dumps(snapshot(ex))


# -- restore -------------------------------------------------------------------------------------------


def restore(ex: SimExchange, doc: object) -> None:
    """Replace ``ex``'s accounts with ``doc`` (a ``snapshot``). Raises ``_Bad`` on any problem;
    everything is decoded and checked before ``ex`` is touched, so a failure leaves it as it was."""
    top = _obj(doc, "file")
    if top.get("format") != FORMAT:
        raise _Bad(f"not a local-exchange state file (format {top.get('format')!r}, expected {FORMAT!r})")
    version = top.get("version")
    if version != VERSION:
        raise _Bad(f"version {version!r} is not supported (this exchange reads version {VERSION})")
    for key in ("spot", "futures", "algo"):
        if key not in top:
            raise _Bad(f"missing section {key!r}")
    spot, spot_orders = _decode_spot(ex, _obj(top["spot"], "spot"))
    futures = _decode_futures(ex, _obj(top["futures"], "futures"))
    algo = _decode_algo(ex, _obj(top["algo"], "algo"))
    funding = decode_funding(ex, top.get("funding"))  # optional: files from before funding lack it
    order_lists = decode_order_lists(ex, top.get("order_lists"), spot_orders)  # optional, as funding
    spot()
    futures()
    algo()
    funding()
    order_lists()


def _decode_spot(ex: SimExchange, raw: dict[str, Any]) -> tuple[Callable[[], None], dict[tuple[str, int], Any]]:
    specs = ex.engine.specs
    balances = {}
    for asset, b in _obj(raw.get("balances"), "spot.balances").items():
        balances[asset] = _decode(Balance, b, f"spot.balances.{asset}")
    update_time = _int(raw.get("update_time"), "spot.update_time")
    h = _decode_history(raw, "spot", specs, TradeRecord, SpotOrder)
    # spot counters are per symbol and hold the NEXT id to hand out (SpotEngine._next_*_id)
    next_order = _counters(raw.get("next_order_id"), "spot.next_order_id", specs)
    next_trade = _counters(raw.get("next_trade_id"), "spot.next_trade_id", specs)
    for (sym, oid) in h.orders:
        if oid >= next_order[sym]:
            raise _Bad(f"spot.next_order_id: {sym} is {next_order[sym]} but order {oid} exists (ids would repeat)")
    for (sym, tid) in h.trades_by_id:
        if tid >= next_trade[sym]:
            raise _Bad(f"spot.next_trade_id: {sym} is {next_trade[sym]} but trade {tid} exists (ids would repeat)")

    def apply() -> None:
        eng = ex.engine
        ex.account.balances.clear()
        ex.account.balances.update(balances)
        ex.account.update_time = update_time
        eng.trades, eng.orders, eng.by_client_id, eng.open = h.trades, h.orders, h.by_client, h.open
        eng._next_order_id, eng._next_trade_id = next_order, next_trade

    return apply, h.orders


@dataclass
class _History:
    """One venue's decoded trades and orders, cross-checked, ready to put into its engine."""

    trades: dict[str, list[Any]]  # symbol -> trades in id order
    trades_by_id: dict[tuple[str, int], Any]
    orders: dict[tuple[str, int], Any]  # registration order
    by_client: dict[tuple[str, str], Any]
    open: dict[str, list[Any]]  # symbol -> open orders in book order


def _decode_history(raw: dict[str, Any], section: str, specs: dict[str, Any], trade_cls: type,
                    order_cls: type) -> _History:
    """``<section>.trades``, ``.orders`` (fills by trade id) and ``.open`` of one venue. The id
    counters differ per venue (spot: next id per symbol; futures: last id, shared), so the caller
    checks them against ``trades_by_id`` and ``orders``."""
    trades: dict[str, list[Any]] = {s: [] for s in specs}
    by_id: dict[tuple[str, int], Any] = {}
    for i, t_raw in enumerate(_list(raw.get("trades"), f"{section}.trades")):
        where = f"{section}.trades[{i}]"
        t = _decode(trade_cls, t_raw, where)
        _known_symbol(t.symbol, specs, where)
        if (t.symbol, t.id) in by_id:
            raise _Bad(f"{where}: duplicate trade id {t.symbol} {t.id}")
        trades[t.symbol].append(t)
        by_id[(t.symbol, t.id)] = t
    orders: dict[tuple[str, int], Any] = {}
    by_client: dict[tuple[str, str], Any] = {}
    for i, o_raw in enumerate(_list(raw.get("orders"), f"{section}.orders")):
        where = f"{section}.orders[{i}]"
        o = _decode(order_cls, o_raw, where, extra=("fills",))
        _known_symbol(o.symbol, specs, where)
        if (o.symbol, o.order_id) in orders:
            raise _Bad(f"{where}: duplicate order id {o.symbol} {o.order_id}")
        for tid in _list(o_raw.get("fills", []), f"{where}.fills"):
            trade = by_id.get((o.symbol, _int(tid, f"{where}.fills")))
            if trade is None:
                raise _Bad(f"{where}: fill {tid!r} is not in {section}.trades")
            o.fills.append(trade)
        orders[(o.symbol, o.order_id)] = o
        by_client[(o.symbol, o.client_order_id)] = o  # the latest order with a client id wins, as live
    open_: dict[str, list[Any]] = {s: [] for s in specs}
    _open_lists(raw.get("open"), f"{section}.open", orders, open_, specs)
    return _History(trades, by_id, orders, by_client, open_)


def _open_lists(raw: object, where: str, orders: dict[tuple[str, int], Any], out: dict[str, list[Any]],
                specs: dict[str, Any]) -> None:
    """Fill ``out`` (symbol -> open orders, in book order) and check it agrees with the statuses."""
    listed: set[tuple[str, int]] = set()
    for sym, ids in _obj(raw if raw is not None else {}, where).items():
        _known_symbol(sym, specs, f"{where}.{sym}")
        for oid in _list(ids, f"{where}.{sym}"):
            key = (sym, _int(oid, f"{where}.{sym}"))
            order = orders.get(key)
            if order is None or key in listed:
                raise _Bad(f"{where}.{sym}: order {oid} is unknown or listed twice")
            if order.status not in OPEN_STATUSES:
                raise _Bad(f"{where}.{sym}: order {oid} is {order.status}, not open")
            listed.add(key)
            out[sym].append(order)
    for key, order in orders.items():
        if order.status in OPEN_STATUSES and key not in listed:
            raise _Bad(f"{where}: order {key[0]} {key[1]} is {order.status} but not in the open list")


def _counters(raw: object, where: str, specs: dict[str, Any]) -> dict[str, int]:
    out = {s: 1 for s in specs}  # a symbol new since the save starts at 1, as on a fresh exchange
    for sym, n in _obj(raw, where).items():
        value = _int(n, f"{where}.{sym}")
        if sym in specs:
            out[sym] = value
        # a symbol no longer listed had no orders/trades (checked above), so its counter can go
    return out


def _default_position(p: Position) -> bool:
    return p.amt == 0 and p.leverage == Position(p.symbol).leverage and \
        p.margin_type == Position(p.symbol).margin_type and p.isolated_wallet == 0


def _decode_futures(ex: SimExchange, raw: dict[str, Any]) -> Callable[[], None]:
    specs = ex.futures.specs
    wallet = _dec(raw.get("wallet"), "futures.wallet")
    update_time = _int(raw.get("update_time"), "futures.update_time")
    next_order = _int(raw.get("next_order_id"), "futures.next_order_id")
    next_trade = _int(raw.get("next_trade_id"), "futures.next_trade_id")
    positions = {s: Position(s) for s in specs}
    for i, p_raw in enumerate(_list(raw.get("positions"), "futures.positions")):
        p = _decode(Position, p_raw, f"futures.positions[{i}]")
        if p.symbol not in specs:
            if _default_position(p):
                continue  # untouched settings of a symbol no longer listed: nothing to lose
            _known_symbol(p.symbol, specs, f"futures.positions[{i}]")
        positions[p.symbol] = p
    h = _decode_history(raw, "futures", specs, FuturesTrade, FuturesOrder)
    # futures counters are shared by all symbols and hold the LAST id handed out (FuturesEngine
    # increments before use), so an id equal to the counter is fine; spot's are next-id, per symbol
    for (_, tid) in h.trades_by_id:
        if tid > next_trade:
            raise _Bad(f"futures.next_trade_id: {next_trade} but trade {tid} exists (ids would repeat)")
    for (_, oid) in h.orders:
        if oid > next_order:
            raise _Bad(f"futures.next_order_id: {next_order} but order {oid} exists (ids would repeat)")

    def apply() -> None:
        f = ex.futures
        f.wallet, f.update_time = wallet, update_time
        f.positions, f.trades, f.orders, f.by_client_id, f.open = positions, h.trades, h.orders, h.by_client, h.open
        f._next_order_id, f._next_trade_id = next_order, next_trade

    return apply


def _decode_algo(ex: SimExchange, raw: dict[str, Any]) -> Callable[[], None]:
    specs = ex.futures.specs
    next_id = _int(raw.get("next_id"), "algo.next_id")
    orders: dict[int, AlgoOrder] = {}
    by_client: dict[str, AlgoOrder] = {}
    for i, a_raw in enumerate(_list(raw.get("orders"), "algo.orders")):
        a = _decode(AlgoOrder, a_raw, f"algo.orders[{i}]")
        _known_symbol(a.symbol, specs, f"algo.orders[{i}]")
        if a.algo_id in orders:
            raise _Bad(f"algo.orders[{i}]: duplicate algo id {a.algo_id}")
        if a.algo_id > next_id:
            raise _Bad(f"algo.next_id: {next_id} but algo order {a.algo_id} exists (ids would repeat)")
        orders[a.algo_id] = a
        by_client[a.client_algo_id] = a

    def apply() -> None:
        ex.algo.orders, ex.algo.by_client_id, ex.algo._next_id = orders, by_client, next_id

    return apply
