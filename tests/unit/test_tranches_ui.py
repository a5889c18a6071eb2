"""The dashboard's position rows show the tranche count and the average entry; the detail lists
the tranches (Paper/Live from the snapshot, Ghost from the open hypothetical trades)."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from state.models import BotSnapshot, PositionView, TrancheView
from ui.common import tranche_frame
from ui.ghost import hypothetical_positions
from ui.ghost import positions_frame as ghost_positions
from ui.paper import positions_frame

T0 = 1_704_067_200_000


def position() -> PositionView:
    ts = [TrancheView(price=100.0, quantity=1.0, time=T0, fee=0.1, order_id="a"),
          TrancheView(price=80.0, quantity=3.0, time=T0 + 60_000, fee=0.24, order_id="b")]
    return PositionView(symbol="BTCUSDT", side="LONG", quantity=4.0, avg_entry=85.0, mark=90.0, unrealized_pnl=20.0,
                        opened_at=T0, entry_fees=0.34, tranches=ts)


def snap(**kw: object) -> BotSnapshot:
    base: dict[str, object] = {"name": "p1", "mode": "paper", "symbol": "BTCUSDT", "strategy": "momentum",
                               "updated_at": T0, "last_price": 90.0}
    return BotSnapshot(**{**base, **kw})  # type: ignore[arg-type]


def test_paper_row_has_tranche_count_and_average_entry() -> None:
    row = positions_frame([snap(position=position())]).iloc[0]
    assert row["tranches"] == 2 and row["avg entry"] == 85.0
    old = position().model_copy(update={"tranches": []})  # an older snapshot: one tranche
    assert positions_frame([snap(position=old)]).iloc[0]["tranches"] == 1


def test_tranche_detail_lists_each_entry_with_its_share() -> None:
    df = tranche_frame(position())
    assert df["price"].tolist() == [100.0, 80.0] and df["share %"].tolist() == [25.0, 75.0]
    assert df["#"].tolist() == [1, 2]


def test_ghost_open_signals_are_one_position_per_side() -> None:
    hs = [{"signal_id": "g:1", "side": "LONG", "quantity": 1.0, "entry_price": 100.0, "entry_time": T0},
          {"signal_id": "g:2", "side": "LONG", "quantity": 3.0, "entry_price": 80.0, "entry_time": T0 + 60_000},
          {"signal_id": "g:3", "side": "SHORT", "quantity": 2.0, "entry_price": 95.0, "entry_time": T0 + 120_000}]
    s = snap(mode="ghost", open_signals=hs)
    long, short = hypothetical_positions(s)
    assert (long.side, long.tranche_count, long.avg_entry, long.quantity) == ("LONG", 2, 85.0, 4.0)
    assert long.unrealized_pnl == 20.0 and long.opened_at == T0
    assert (short.side, short.tranche_count, short.quantity, short.unrealized_pnl) == ("SHORT", 1, -2.0, 10.0)
    rows = ghost_positions([s])
    assert rows["tranches"].tolist() == [2, 1] and rows["avg entry"].tolist() == [85.0, 95.0]


def _app() -> None:
    from state.models import PositionView, TrancheView
    from ui.common import tranche_details

    ts = [TrancheView(price=100.0, quantity=1.0, time=0), TrancheView(price=80.0, quantity=3.0, time=0)]
    p = PositionView(symbol="BTCUSDT", side="LONG", quantity=4.0, avg_entry=85.0, mark=90.0, unrealized_pnl=20.0,
                     opened_at=0, tranches=ts, realized_pnl=1.5)
    tranche_details([("p1", p), ("p2", p.model_copy(update={"tranches": []}))], "paper")


def test_detail_renders_an_expander_per_position_with_tranches() -> None:
    at = AppTest.from_function(_app).run()
    assert not at.exception
    assert [e.label for e in at.expander] == ["Tranches · p1 · BTCUSDT LONG: 2 held, avg entry 85.00 USDT"]
    assert len(at.dataframe) == 1 and "partial exits so far: +1.50" in at.caption[0].value
