"""A live DCA deal on the local exchange: the worker as a real subprocess, the exchange as a real
server (its market paused; the test moves the price), a real redis-server, python-binance unmodified.

The base order fills at market, the safety orders and the take-profit rest on the exchange as GTC
LIMIT orders; a dip trades through SO1 and SO2 and the worker books them from the user-data stream
within 2 s and re-places the ladder (SO4, a new take-profit); a rise fills the take-profit and
every other resting order is canceled on the exchange. The same deal with a SIGKILL of the worker
while its orders rest (and fill while it is dead) ends the same way after a restart: no order
sent twice, the venue's holding equal to the bot's, no reconciliation drift.
"""
from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from sim_process import SimProcess
from state import keys
from state.intents import RedisIntentStore
from state.reader import StateReader
from support import WorkerProcess, start_worker, wait_for, write_config

BOT = "live-dca"
SYMBOL = "BTCUSDT"
# BO 20, SO 20 at -1 %, -2 %, -3 %, -4 %; three resting; TP 1 % over the average; SL 10 % (live
# needs a stop: the per-trade loss ceiling is judged at it).
DCA = {"base_order": 20, "safety_order": 20, "deviation_pct": 1, "step_scale": 1, "volume_scale": 1,
       "max_safety_orders": 4, "active_safety_orders": 3, "take_profit_pct": 1, "stop_loss_pct": 10,
       "side": "long", "cooldown_s": 10_000_000}
RISK = {"blackout_hours_utc": None, "max_position_value": 200, "max_mode_exposure_value": 400,
        "max_orders_per_minute": 60, "max_loss_per_trade_value": 50, "daily_loss_value": 100}


@pytest.fixture
def venue(tmp_path: Path):
    sim = SimProcess(tmp_path / "exchange.log", "--source", "synthetic", "--symbols", SYMBOL, "--seed", "8",
                     "--speed", "0", "--warmup", "60")
    yield sim
    sim.close()


def config(tmp_path: Path, redis_url: str, venue_url: str, market: str = "spot", side: str = "long") -> Path:
    return write_config(tmp_path / "config.yaml", {
        "redis": {"url": redis_url, "embedded": False},
        "market": {"source": "exchange", "symbols": [SYMBOL], "warmup_candles": 30},
        "exchange": {"venue": "local", "local_url": venue_url, "reconcile_every_s": 1},
        "worker": {"heartbeat_ttl_s": 3, "heartbeat_every_s": 0.3},
        "bots": [{"name": BOT, "mode": "live", "kind": "dca", "market": market, "symbol": SYMBOL,
                  "dca": {**DCA, "side": side}, "risk": RISK}],
    })


def start(cfg: Path, log: Path, r) -> WorkerProcess:
    return start_worker(cfg, log, r, env={
        "BOT_RISK_OVERRIDE": "live DCA test: more orders per minute, no blackout hours"})


def tags_of(r, orders) -> list[str]:  # noqa: ANN001
    """The bot's tag (SO2, TP1) of each order on the venue; an order without an intent shows as
    'stray:<id>', so a stray order fails a comparison instead of being skipped."""
    recs = {i.client_order_id: i for i in RedisIntentStore(r).all(BOT)}  # read after the orders: intent first
    return sorted(recs[o.client_order_id].tag if o.client_order_id in recs else f"stray:{o.client_order_id}"
                  for o in orders)


def open_tags(r, sim: SimProcess) -> list[str]:
    return tags_of(r, sim.client().open_orders(SYMBOL))


def snap(r):
    return StateReader(r).snapshots([BOT]).get(BOT)


def deal(r) -> dict | None:
    s = snap(r)
    return s.dca["deals"][0] if s is not None and s.dca and s.dca["deals"] else None


def closed_deals(r) -> list[dict]:
    return [json.loads(f[b"data"]) for _, f in r.xrange(keys.deals(BOT))]


def open_deal(sim: SimProcess, r) -> tuple[dict, Decimal]:
    """Close candles until the bot opens its deal (start condition: at once)."""
    def opened():
        sim.admin("POST", "/admin/advance", {"steps": 1})
        return deal(r)

    d = wait_for(opened, 30, "the deal to open", every=0.3)
    wait_for(lambda: open_tags(r, sim) == ["SO1", "SO2", "SO3", "TP1"], 10,
             "SO1-3 and the take-profit resting on the exchange")
    return d, Decimal(str(d["base_price"]))


def assert_deal_closed_on_the_venue(r, sim: SimProcess) -> dict:
    (done,) = closed_deals(r)
    assert done["status"] == "CLOSED" and done["close_reason"] == "take profit"
    assert done["safety_filled"] == 2 and [t["tag"] for t in done["tranches"]] == ["BO", "SO1", "SO2"]
    assert done["realized_pnl"] > 0
    assert sim.client().open_orders(SYMBOL) == []                      # SO3, SO4 canceled on the exchange
    intents = RedisIntentStore(r).all(BOT)
    by_tag = Counter((i.tag, i.status) for i in intents if i.order_type == "LIMIT")
    assert by_tag[("SO1", "FILLED")] == 1 and by_tag[("SO2", "FILLED")] == 1
    assert by_tag[("SO3", "CANCELED")] == 1 and by_tag[("SO4", "CANCELED")] == 1
    assert by_tag[("TP1", "FILLED")] == 1
    orders = sim.client().raw.get_all_orders(symbol=SYMBOL)
    ids = [o["clientOrderId"] for o in orders]
    assert len(ids) == len(set(ids)), "an order was sent twice"
    assert {i.client_order_id for i in intents if i.status == "FILLED"} == {
        o["clientOrderId"] for o in orders if o["status"] == "FILLED"}
    s = snap(r)
    assert s.positions == [] and s.dca["resting"] == [] and s.trade_count >= 1
    held = sim.client().balances().get("BTC")
    baseline = Decimal((r.hget(keys.recon_baseline(BOT), "BTC") or b"0").decode())
    assert held is not None and abs(held.total - baseline) < Decimal("0.00001")  # only the written-off dust
    return done


def test_live_dca_deal_rests_on_the_exchange_and_books_fills_from_the_stream(venue, r, redis_server, tmp_path):
    w = start(config(tmp_path, redis_server.url, venue.url), tmp_path / "w.log", r)
    try:
        d, p0 = open_deal(venue, r)
        assert [t["tag"] for t in d["tranches"]] == ["BO"]
        # A dip through SO1 (-1 %) and SO2 (-2 %), not SO3 (-3 %).
        venue.set_price(SYMBOL, str((p0 * Decimal("0.975")).quantize(Decimal("0.01"))))
        wait_for(lambda: (x := deal(r)) and x["safety_filled"] == 2, 2.0,
                 "both safety fills booked within 2 s of the trade (user-data stream, no candle needed)")
        wait_for(lambda: open_tags(r, venue) == ["SO3", "SO4", "TP1"], 5,
                 "SO4 and the new take-profit resting")
        d = deal(r)
        avg = d["cost"] / d["quantity"]  # fees included: the take-profit covers them
        tp_price = float(Decimal(next(i.price for i in RedisIntentStore(r).open(BOT) if i.tag == "TP1")))
        assert tp_price == pytest.approx(avg * 1.01, rel=1e-3)   # re-placed for the new average
        venue.set_price(SYMBOL, str((p0 * Decimal("1.01")).quantize(Decimal("0.01"))))
        wait_for(lambda: closed_deals(r), 5, "the take-profit fill to close the deal")
        wait_for(lambda: open_tags(r, venue) == [], 5, "every other resting order canceled")
        assert_deal_closed_on_the_venue(r, venue)
        seen = json.loads(r.get(keys.venue_view(BOT)) or b'{"time": 0}')["time"]
        venue.admin("POST", "/admin/advance", {"steps": 3})
        view = wait_for(lambda: (v := r.get(keys.venue_view(BOT))) and (j := json.loads(v))["time"] > seen and j, 5,
                        "a reconciliation after the deal closed")
        assert view["ok"], view
        assert w.alive(), w.log()
    finally:
        w.stop()


def test_live_dca_deal_survives_sigkill_while_its_orders_rest(venue, r, redis_server, tmp_path):
    cfg = config(tmp_path, redis_server.url, venue.url)
    w = start(cfg, tmp_path / "w1.log", r)
    try:
        d, p0 = open_deal(venue, r)
        w.kill9()
    finally:
        w.stop()
    # While the worker is dead the dip fills SO1 and SO2 on the exchange.
    venue.set_price(SYMBOL, str((p0 * Decimal("0.975")).quantize(Decimal("0.01"))))
    assert deal(r)["safety_filled"] == 0
    w2 = start(cfg, tmp_path / "w2.log", r)
    try:
        wait_for(lambda: (x := deal(r)) and x["safety_filled"] == 2, 10, "the fills booked after the restart")
        wait_for(lambda: open_tags(r, venue) == ["SO3", "SO4", "TP1"], 10, "the ladder re-placed")
        venue.set_price(SYMBOL, str((p0 * Decimal("1.01")).quantize(Decimal("0.01"))))
        wait_for(lambda: closed_deals(r), 5, "the take-profit fill to close the deal")
        wait_for(lambda: open_tags(r, venue) == [], 5, "every other resting order canceled")
        done = assert_deal_closed_on_the_venue(r, venue)
        assert done["id"] == d["id"]
        assert "reconciliation drift" not in w2.log(), w2.log()
        assert w2.alive(), w2.log()
    finally:
        w2.stop()



def test_close_all_positions_cancels_the_ladder_on_the_exchange_and_shows_it(venue, r, redis_server, tmp_path):
    from state.commands import new_command, post_command

    w = start(config(tmp_path, redis_server.url, venue.url), tmp_path / "w.log", r)
    try:
        _, p0 = open_deal(venue, r)
        venue.set_price(SYMBOL, str((p0 * Decimal("0.985")).quantize(Decimal("0.01"))))   # SO1 fills
        wait_for(lambda: (x := deal(r)) and x["safety_filled"] == 1, 2.0, "SO1 booked")
        post_command(r, new_command("flatten", "bot", BOT, user="test"))
        wait_for(lambda: closed_deals(r), 5, "the deal closed by the kill switch")
        assert venue.client().open_orders(SYMBOL) == []                 # every resting order canceled
        # The Live tab's venue view is refreshed by the command itself, not 30 s later.
        view = wait_for(lambda: (v := r.get(keys.venue_view(BOT))) and not json.loads(v)["open_orders"]
                        and json.loads(v), 3, "the venue view without open orders")
        assert view["ok"], view["summary"]
        s = snap(r)
        assert s.positions == [] and s.control.state.value == "PAUSED"
        held = venue.client().balances().get("BTC")
        baseline = Decimal((r.hget(keys.recon_baseline(BOT), "BTC") or b"0").decode())
        assert held is not None and abs(held.total - baseline) < Decimal("0.00001")
        intents = RedisIntentStore(r).all(BOT)
        assert not [i for i in intents if i.order_type == "LIMIT" and i.status in ("NEW", "PARTIALLY_FILLED")]
    finally:
        w.stop()


def test_short_dca_deal_on_usdm_futures_rests_reduce_only_take_profits(venue, r, redis_server, tmp_path):
    """A short deal on USD-M futures: the base order sells, safety orders rest above, the take-profit
    rests reduce-only below; the deal ends flat on the venue's position."""
    # USD-M BTCUSDT: steps of 0.001 BTC and a 100 USDT minimum notional: orders of 200 USDT, limits to match.
    cfg = config(tmp_path, redis_server.url, venue.url, market="futures", side="short")
    cfg.write_text(cfg.read_text().replace("base_order: 20", "base_order: 200").replace("safety_order: 20",
                   "safety_order: 200").replace("max_position_value: 200", "max_position_value: 1500")
                   .replace("max_mode_exposure_value: 400", "max_mode_exposure_value: 2000"))
    fut = venue.client("futures")

    def tags() -> list[str]:
        return tags_of(r, fut.open_orders(SYMBOL))

    w = start(cfg, tmp_path / "w.log", r)
    try:
        def opened():
            venue.admin("POST", "/admin/advance", {"steps": 1})
            return deal(r)

        try:
            d = wait_for(opened, 30, "the short deal to open", every=0.3)
        except AssertionError:
            s = snap(r)
            risk = [f[b"data"] for _, f in r.xrange(keys.risk_decisions(BOT))][-3:]
            raise AssertionError(f"no deal: denials {s.denials if s else None} seen {s.candles_seen if s else None} state {s.effective_state if s else None} {risk} {[(i.status, i.reason) for i in RedisIntentStore(r).all(BOT)][:3]}\n{w.log()[-3000:]}") from None
        assert d["side"] == "short"
        wait_for(lambda: tags() == ["SO1", "SO2", "SO3", "TP1"], 10, "the ladder resting on the futures book")
        tp = next(o for o in fut.open_orders(SYMBOL)
                  if RedisIntentStore(r).get(BOT, o.client_order_id).tag == "TP1")
        assert tp.side == "BUY" and tp.reduce_only                     # can only close, never open
        p0 = Decimal(str(d["base_price"]))
        venue.set_price(SYMBOL, str((p0 * Decimal("1.025")).quantize(Decimal("0.01"))))   # through SO1 and SO2
        wait_for(lambda: (x := deal(r)) and x["safety_filled"] == 2, 2.0, "both safety sells booked")
        wait_for(lambda: tags() == ["SO3", "SO4", "TP1"], 5, "SO4 and the new take-profit resting")
        pos = next(p for p in fut.positions() if p.symbol == SYMBOL)
        assert pos.amount < 0 and abs(float(pos.amount) + deal(r)["quantity"]) < 1e-9   # venue == bot
        venue.set_price(SYMBOL, str((p0 * Decimal("0.99")).quantize(Decimal("0.01"))))
        wait_for(lambda: closed_deals(r), 5, "the take-profit to close the short deal")
        wait_for(lambda: tags() == [], 5, "the other safety orders canceled")
        assert fut.open_orders(SYMBOL) == []
        (done,) = closed_deals(r)
        assert done["close_reason"] == "take profit" and done["realized_pnl"] > 0
        assert all(p.amount == 0 for p in fut.positions() if p.symbol == SYMBOL)
        assert "reconciliation drift" not in w.log(), w.log()
    finally:
        w.stop()


def test_a_ladder_the_venue_would_refuse_does_not_start(venue, r, redis_server, tmp_path):
    """20 USDT orders on USD-M BTCUSDT (minimum notional 100): refused at start with the reason."""
    w = start(config(tmp_path, redis_server.url, venue.url, market="futures", side="short"), tmp_path / "w.log", r)
    try:
        pre = wait_for(lambda: (s := snap(r)) and s.effective_state.value == "HALTED" and s, 15, "the refusal")
        assert "BO of 20 USDT" in pre.control.reason and "minNotional 100" in pre.control.reason
        assert venue.client("futures").raw.futures_get_all_orders(symbol=SYMBOL) == []
    finally:
        w.stop()

