"""The local exchange's accounts on disk (``--state-file``): what a restart must not change.

Users rehearse live trading against this exchange, so a restart has to behave like a real venue's:
balances, open and past orders with their fills, trade ids, order/trade id counters, the USD-M
wallet, positions with leverage and margin type, and algo (conditional) orders all survive.
Prices are *not* stored here: the market continues through ``--resume`` / ``--start-ms``, and the
restored resting orders simply match against the bars that follow.

File format (JSON, UTF-8): ``{"format": FORMAT, "version": VERSION, "saved_at": ms, "spot": ...,
"futures": ..., "algo": ...}``. Every Decimal is a string (``str(Decimal)``, exact). Trades are
stored once per engine and orders name their fills by trade id, so a restored order and the
trade history share the same records, as they do in memory. Listen keys are dropped (clients
create a new one, as after a Binance listen-key expiry).

Loading is strict: a corrupt, truncated or incompatible file raises ``StateFileError`` naming the
file and the problem. Starting empty instead would silently wipe an account a bot relies on.

Saving: ``StateSaver`` marks the state dirty on every order/fill event, every non-GET request and
every bar that moves an open trailing stop, and writes at most every ``SAVE_INTERVAL_S`` (temp file
+ fsync + ``os.replace``, so a reader or a crash sees either the old or the new file, never half of
one). The state is captured on the event loop between requests, so a snapshot never catches an
order halfway through matching; encoding and writing it happen on a worker thread, one at a time.
"""
from __future__ import annotations

import asyncio
import json
import logging
import operator
import os
import threading
import time
import types
from dataclasses import MISSING, dataclass, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, TypeVar

from exchange.sim.accounts import Balance
from exchange.sim.algo import AlgoOrder
from exchange.sim.futures import FuturesOrder, FuturesTrade, Position
from exchange.sim.matching import OPEN_STATUSES, SpotOrder, TradeRecord
from exchange.sim.prices import Bar

if TYPE_CHECKING:
    from aiohttp import web

    from exchange.sim.state import SimExchange

log = logging.getLogger(__name__)

FORMAT = "exchange.sim-state"
VERSION = 1
SAVE_INTERVAL_S = 0.2  # a SIGKILL loses at most this much (plus one write)

T = TypeVar("T")


class StateFileError(Exception):
    """The state file cannot be used; the message names the file and what is wrong."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"state file {path}: {problem}")
        self.path = Path(path)
        self.problem = problem


class _Bad(Exception):
    """A problem inside the document; wrapped into StateFileError with the path by ``load``."""


# -- generic dataclass <-> JSON ----------------------------------------------------------------------

_SKIP = ("fills",)  # stored as trade ids, resolved against the trade history


class _Codec:
    """One stored dataclass: its field names (``fills`` excepted) and a C-speed getter of their values.

    The values of every stored class are immutable scalars (Decimal, int, str, bool, None: ``_scalar``
    refuses anything else), so a tuple of them is a copy that later changes cannot reach."""

    __slots__ = ("names", "values")

    def __init__(self, cls: type) -> None:
        self.names = tuple(f.name for f in fields(cls) if f.name not in _SKIP)  # type: ignore[arg-type]
        if len(self.names) < 2:  # attrgetter of one name returns the value, not a tuple
            raise TypeError(f"persist: {cls.__name__} needs at least two stored fields")
        self.values: Callable[[object], tuple[Any, ...]] = operator.attrgetter(*self.names)

    def encode(self, values: tuple[Any, ...]) -> dict[str, Any]:
        return {n: str(v) if isinstance(v, Decimal) else v for n, v in zip(self.names, values)}


_BALANCE, _TRADE, _ORDER = _Codec(Balance), _Codec(TradeRecord), _Codec(SpotOrder)
_F_TRADE, _F_ORDER, _POSITION, _ALGO = _Codec(FuturesTrade), _Codec(FuturesOrder), _Codec(Position), _Codec(AlgoOrder)


def _type_name(t: object) -> str:
    # the sim modules use ``from __future__ import annotations`` (field types are strings); accept
    # real types too so the codec keeps working if that ever changes
    if isinstance(t, str):
        return t
    if isinstance(t, types.UnionType):
        return str(t).replace("NoneType", "None")
    return getattr(t, "__name__", str(t))


def _scalar(type_name: str, raw: object, where: str) -> object:
    if type_name.endswith(" | None"):
        return None if raw is None else _scalar(type_name[: -len(" | None")], raw, where)
    if type_name == "Decimal":
        if not isinstance(raw, str):
            raise _Bad(f"{where}: expected a decimal string, got {raw!r}")
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise _Bad(f"{where}: not a decimal number: {raw!r}") from None
        if not value.is_finite():
            raise _Bad(f"{where}: not a finite number: {raw!r}")
        return value
    if type_name == "int":
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise _Bad(f"{where}: expected an integer, got {raw!r}")
        return raw
    if type_name == "bool":
        if not isinstance(raw, bool):
            raise _Bad(f"{where}: expected true/false, got {raw!r}")
        return raw
    if type_name == "str":
        if not isinstance(raw, str):
            raise _Bad(f"{where}: expected a string, got {raw!r}")
        return raw
    raise TypeError(f"persist: no codec for field type {type_name!r} ({where})")  # a code bug, not a bad file


def _decode(cls: type[T], raw: object, where: str, extra: tuple[str, ...] = ()) -> T:
    """Build ``cls`` from its ``_Codec.encode`` form. Missing fields take the dataclass default (if any);
    unknown keys are refused, since they mean the file was written by other code."""
    obj = _obj(raw, where)
    kwargs: dict[str, object] = {}
    known = set(extra)
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name in _SKIP:
            continue
        known.add(f.name)
        if f.name not in obj:
            if f.default is MISSING and f.default_factory is MISSING:
                raise _Bad(f"{where}: missing field {f.name!r}")
            continue
        kwargs[f.name] = _scalar(_type_name(f.type), obj[f.name], f"{where}.{f.name}")
    unknown = sorted(set(obj) - known)
    if unknown:
        raise _Bad(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}")
    return cls(**kwargs)


def _obj(raw: object, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _Bad(f"{where}: expected an object, got {type(raw).__name__}")
    return raw


def _list(raw: object, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise _Bad(f"{where}: expected a list, got {type(raw).__name__}")
    return raw


def _int(raw: object, where: str) -> int:
    return _scalar("int", raw, where)  # type: ignore[return-value]


def _dec(raw: object, where: str) -> Decimal:
    return _scalar("Decimal", raw, where)  # type: ignore[return-value]


def _known_symbol(symbol: str, listed: dict[str, Any], where: str) -> None:
    if symbol not in listed:
        raise _Bad(
            f"{where}: symbol {symbol} is not listed by this exchange (it lists {', '.join(listed)}); "
            "start it with the same symbols, or move the file away to start with fresh accounts"
        )


# -- snapshot ------------------------------------------------------------------------------------------


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
    }


def snapshot(ex: SimExchange, saved_at: int | None = None) -> dict[str, Any]:
    """Everything account-related in ``ex`` as a JSON-ready dict (Decimals as strings)."""
    return render(capture(ex, saved_at))


def dumps(ex: SimExchange) -> str:
    return _dumps(snapshot(ex))


_SEPARATORS = (",", ":")
_CHUNK = 256  # records per json.dumps call (~1-2 ms each)


def _dumps(doc: object) -> str:
    """``json.dumps(doc, separators=(",", ":"))``, the same text, but a long list is encoded a slice at
    a time. The C encoder holds the GIL for a whole call (~40 ms for 5k orders), which would stall the
    event loop although the save runs on a worker thread; between slices the loop gets its turn."""
    parts: list[str] = []

    def enc(value: object) -> None:
        if isinstance(value, dict):
            parts.append("{")
            for i, (key, item) in enumerate(value.items()):
                parts.append(("," if i else "") + json.dumps(key) + ":")
                enc(item)
            parts.append("}")
        elif isinstance(value, list) and len(value) > _CHUNK:
            parts.append("[")
            for i in range(0, len(value), _CHUNK):
                parts.append(("," if i else "") + json.dumps(value[i:i + _CHUNK], separators=_SEPARATORS)[1:-1])
            parts.append("]")
        else:
            parts.append(json.dumps(value, separators=_SEPARATORS))

    enc(doc)
    return "".join(parts)


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
    spot = _decode_spot(ex, _obj(top["spot"], "spot"))
    futures = _decode_futures(ex, _obj(top["futures"], "futures"))
    algo = _decode_algo(ex, _obj(top["algo"], "algo"))
    spot()
    futures()
    algo()


def _decode_spot(ex: SimExchange, raw: dict[str, Any]) -> Callable[[], None]:
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

    return apply


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


# -- files ------------------------------------------------------------------------------------------------


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` so that ``path`` is always either the old or the new file: temp file in the
    same directory (same filesystem, so the rename is atomic), fsync, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save(ex: SimExchange, path: Path | str) -> None:
    write_atomic(Path(path), dumps(ex))


def load(ex: SimExchange, path: Path | str) -> bool:
    """Restore ``ex``'s accounts from ``path``. False if there is no file yet (``ex`` unchanged);
    ``StateFileError`` if the file cannot be read or used."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StateFileError(p, f"cannot read it ({exc.strerror or exc})") from None
    if not data.strip():
        raise StateFileError(p, "the file is empty (expected a saved exchange state)")
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise StateFileError(p, "not UTF-8 text (corrupt?)") from None
    except json.JSONDecodeError as exc:
        raise StateFileError(p, f"not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg}); "
                                "corrupt or truncated?") from None
    try:
        restore(ex, doc)
    except _Bad as exc:
        raise StateFileError(p, str(exc)) from None
    return True


class StateSaver:
    """Keeps ``path`` up to date with ``ex``: marks dirty on changes, writes every ``interval`` s.

    A save captures the state on the event loop (``capture``: copies only, ~10 ms at 5k orders) and
    encodes and writes it on a worker thread, so a big account does not stall every REST answer for
    the whole ``json.dumps`` + fsync. One write at a time (they share the ``.tmp`` file), never an
    older state over a newer one. The next save waits at least as long as the last one took: the
    worker thread shares the interpreter (GIL) with the loop, so saving a very large account takes
    at most about half of the time instead of all of it (below ~10k orders a save takes less than
    ``SAVE_INTERVAL_S`` and the spacing is unchanged)."""

    def __init__(self, ex: SimExchange, path: Path | str, interval: float = SAVE_INTERVAL_S) -> None:
        self.ex = ex
        self.path = Path(path)
        self.interval = interval
        self.dirty = False
        self.saves = 0
        self._write_lock = threading.Lock()  # one write at a time: they share the .tmp path
        self._captured = 0  # sequence number of the last capture (event loop)
        self._written = 0  # ... and of the capture on disk (under _write_lock)
        self._pending: asyncio.Future[None] | None = None  # the background write in progress
        self._trailing: dict[int, tuple[bool, Decimal]] = {}  # open trailing stop -> (activated, extreme) seen
        ex.engine.listeners.append(lambda order, trade: self.mark())
        ex.futures.listeners.append(lambda order, trade: self.mark())
        ex.algo.listeners.append(self._on_algo)
        ex.change_listeners.append(self.mark)
        ex.bar_listeners.append(self._on_bar)

    def mark(self) -> None:
        self.dirty = True

    def _on_algo(self, a: AlgoOrder) -> None:
        if a.is_open and a.type == "TRAILING_STOP_MARKET":
            self._trailing[a.algo_id] = (a.activated, a.extreme)  # what this change's save will hold
        else:
            self._trailing.pop(a.algo_id, None)
        self.dirty = True

    def _on_bar(self, bar: Bar) -> None:
        # a trailing stop moves its extreme (or activates) on a bar without an event: mark dirty when
        # one did (a stop restored from the file counts once); other bar effects (fills, triggers,
        # liquidations) emit events and are marked by the listeners
        for a in self.ex.algo.orders.values():
            if a.type == "TRAILING_STOP_MARKET" and a.is_open and a.symbol == bar.symbol:
                seen = (a.activated, a.extreme)
                if self._trailing.get(a.algo_id) != seen:
                    self._trailing[a.algo_id] = seen
                    self.dirty = True

    def _capture(self) -> tuple[int, dict[str, Any]]:
        """On the event loop: clear the dirty flag and copy the state (changes after this mark again)."""
        self.dirty = False
        self._captured += 1
        return self._captured, capture(self.ex)

    def _write(self, seq: int, cap: dict[str, Any]) -> None:
        """Any thread: encode and write a capture, unless a newer one is already on disk."""
        text = _dumps(render(cap))
        with self._write_lock:
            if seq < self._written:
                return
            write_atomic(self.path, text)
            self._written = seq
            self.saves += 1

    def save_now(self) -> None:
        """Save right here, synchronously (start-up check, final save); waits for a write in progress."""
        seq, cap = self._capture()
        try:
            self._write(seq, cap)
        except BaseException:
            self.dirty = True  # try again next tick
            raise

    async def run(self) -> None:
        """Save whenever dirty, at most every ``interval`` seconds, until cancelled."""
        loop = asyncio.get_running_loop()
        wait = self.interval
        while True:
            await asyncio.sleep(wait)
            wait = self.interval
            if not self.dirty:
                continue
            started = time.monotonic()
            seq, cap = self._capture()
            self._pending = loop.run_in_executor(None, self._write, seq, cap)
            try:
                # shielded: a cancel (shutdown) must not abandon the write; context() waits for it
                await asyncio.shield(self._pending)
            except OSError:
                self.dirty = True
                log.exception("saving the exchange state to %s failed; retrying", self.path)
            wait = max(self.interval, time.monotonic() - started)

    async def context(self, app: web.Application) -> AsyncIterator[None]:
        """aiohttp cleanup context: run the saver, and save once more on shutdown (SIGTERM/SIGINT)."""
        task = asyncio.create_task(self.run())
        yield
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        if self._pending is not None:
            try:
                await self._pending  # let a write in progress finish first (save_now would block on it)
            except Exception:  # noqa: BLE001 - the final save below writes everything again
                log.exception("saving the exchange state to %s failed; saving once more", self.path)
        self.save_now()
        log.info("exchange state saved to %s", self.path)
