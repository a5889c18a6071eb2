"""DCA ladder math: the 3Commas worked example (anchors §5.3) and properties of the ladder."""
from __future__ import annotations

import dataclasses
import json
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from strategy.dca import ladder, liquidation_price, stop_loss_price, take_profit_plan, take_profit_price
from strategy.dca_params import DcaParams, DcaParamsError, DealSide, StepMode, TakeProfitType

# anchors.md §5.3: P0=100, BO=10, SO=20, d=1%, SS=2, VS=1.5, N=4, tp=1.5 %, no fees.
# order, step %, cum dev %, price, vol, qty, cum cost, cum qty, avg, TP(total), TP(base)
GOLDEN = [
    ("BO", None, "0", "100.0000", "10.00", "0.100000", "10.00", "0.100000", "100.0000", "101.5000", "101.5000"),
    ("SO1", "1", "1", "99.0000", "20.00", "0.202020", "30.00", "0.302020", "99.3311", "100.8211", "99.8278"),
    ("SO2", "2", "3", "97.0000", "30.00", "0.309278", "60.00", "0.611299", "98.1517", "99.6240", "98.3971"),
    ("SO3", "4", "7", "93.0000", "45.00", "0.483871", "105.00", "1.095170", "95.8756", "97.3137", "96.0125"),
    ("SO4", "8", "15", "85.0000", "67.50", "0.794118", "172.50", "1.889287", "91.3043", "92.6738", "91.3837"),
]


def golden_params(**overrides) -> DcaParams:
    base = dict(base_order=10, safety_order=20, deviation_pct=1, step_scale=2, volume_scale=1.5,
                max_safety_orders=4, take_profit_pct=1.5)
    base.update(overrides)
    return DcaParams(**base)


def q(value: Decimal, text: str) -> str:
    """Round value half-up to as many decimals as the expected text shows."""
    places = len(text.split(".")[1]) if "." in text else 0
    return str(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def test_worked_example_every_cell() -> None:
    lad = ladder(golden_params(), 100)
    assert [lv.name for lv in lad.levels] == [row[0] for row in GOLDEN]
    for lv, row in zip(lad.levels, GOLDEN):
        name, step, cum, price, vol, qty, cost, cqty, avg, tp_total, tp_base = row
        assert lv.step_pct is None if step is None else q(lv.step_pct, step) == step, name
        assert q(lv.cum_deviation_pct, cum) == cum, name
        assert q(lv.price, price) == price, name
        assert q(lv.quote_size, vol) == vol, name
        assert q(lv.base_qty, qty) == qty, name
        assert q(lv.cum_cost, cost) == cost, name
        assert q(lv.cum_qty, cqty) == cqty, name
        assert q(lv.avg_price, avg) == avg, name
        assert q(lv.tp_total, tp_total) == tp_total, name
        assert q(lv.tp_base, tp_base) == tp_base, name
        assert lv.tp_price == lv.tp_total  # default take_profit_type is total


def test_worked_example_totals_are_exact() -> None:
    lad = ladder(golden_params(), 100)
    assert lad.max_funds == Decimal("172.50")
    assert lad.max_deviation_pct == Decimal(15)
    assert lad.liquidation_price is None  # leverage 1
    assert lad.funds_at_open == Decimal(30)  # BO + 1 active SO (default A = 1)
    assert ladder(golden_params(active_safety_orders=3), 100).funds_at_open == Decimal(105)
    # cumulative prices are exact, not merely close
    assert [lv.price for lv in lad.levels] == [Decimal(p) for p in (100, 99, 97, 93, 85)]


def test_tp_type_base_selects_base_column() -> None:
    lad = ladder(golden_params(take_profit_type="base"), 100)
    assert all(lv.tp_price == lv.tp_base for lv in lad.levels)
    assert q(lad.levels[-1].tp_price, "91.3837") == "91.3837"


def test_inputs_accept_float_str_decimal_alike() -> None:
    a = ladder(golden_params(volume_scale=1.5), 100)
    b = ladder(golden_params(volume_scale="1.5"), "100")
    c = ladder(golden_params(volume_scale=Decimal("1.5")), Decimal(100))
    assert a.levels == b.levels == c.levels


def test_to_dict_is_json_safe() -> None:
    lad = ladder(golden_params(leverage=10), 100)
    data = json.loads(json.dumps(lad.to_dict(), allow_nan=False))
    assert data["max_funds"] == 172.5
    assert data["max_deviation_pct"] == 15.0
    assert len(data["levels"]) == 5
    assert data["levels"][0]["step_pct"] is None
    assert data["levels"][4]["price"] == 85.0
    assert data["liquidation_price"] == pytest.approx(float(lad.liquidation_price))
    assert data["params"]["take_profit_type"] == "total"


def test_zero_safety_orders_is_just_the_base_order() -> None:
    lad = ladder(golden_params(max_safety_orders=0), 100)
    assert [lv.name for lv in lad.levels] == ["BO"]
    assert lad.max_funds == 10 and lad.max_deviation_pct == 0 and lad.funds_at_open == 10
    assert lad.params.active_safety_orders == 0


# ---------------------------------------------------------------- formulas


def test_closed_forms_match_the_summed_ladder() -> None:
    p = golden_params(max_safety_orders=10, step_scale=Decimal("1.3"), volume_scale=Decimal("1.7"))
    lad = ladder(p, 100)
    d, ss, vs, n = p.deviation_pct, p.step_scale, p.volume_scale, p.max_safety_orders
    assert lad.max_deviation_pct == pytest.approx(d * (ss**n - 1) / (ss - 1), rel=Decimal("1e-20"))
    assert lad.max_funds == pytest.approx(
        p.base_order + p.safety_order * (vs**n - 1) / (vs - 1), rel=Decimal("1e-20"))
    flat = ladder(golden_params(max_safety_orders=6, step_scale=1, volume_scale=1), 100)
    assert flat.max_deviation_pct == 6 and flat.max_funds == 10 + 6 * 20


def test_take_profit_and_stop_loss_formulas() -> None:
    p = golden_params(stop_loss_pct=20)
    assert take_profit_price(100, 10, "0.1", p) == Decimal("101.5")
    base = dataclasses.replace(p, take_profit_type="base")
    # (C + BO*tp/100) / Q
    assert take_profit_price(0, 60, 2, base) == (Decimal(60) + Decimal("0.15")) / 2
    assert stop_loss_price(90, 100, p) == Decimal(72)  # average reference
    assert stop_loss_price(90, 100, dataclasses.replace(p, stop_loss_reference="base")) == Decimal(80)
    short = dataclasses.replace(p, side="short")
    assert stop_loss_price(90, 100, short) == Decimal(108)
    assert take_profit_price(100, 10, "0.1", short) == Decimal("98.5")
    assert stop_loss_price(90, 100, golden_params()) is None


def test_liquidation_approximation() -> None:
    p = golden_params(leverage=10)
    assert liquidation_price(100, p) == Decimal(100) * (1 - Decimal("0.1") + Decimal("0.004"))
    assert liquidation_price(100, dataclasses.replace(p, side="short")) == Decimal("109.6")
    assert liquidation_price(100, golden_params()) is None
    lad = ladder(p, 100)
    assert lad.liquidation_price == pytest.approx(lad.levels[-1].avg_price * Decimal("0.904"), rel=Decimal("1e-25"))
    assert all(lv.liquidation_price is not None for lv in lad.levels)
    assert ladder(golden_params(leverage=5), 100).warnings == []  # liq after SO3 ~77.1 < SO4 at 85


def test_warns_when_liquidation_comes_before_the_next_safety_order() -> None:
    lad = ladder(golden_params(leverage=10), 100)  # liq after SO3 ~86.7 >= SO4 at 85
    assert len(lad.warnings) == 1 and "before SO4" in lad.warnings[0]
    lad = ladder(golden_params(leverage=20), 100)  # liq after SO2 ~93.6 >= SO3 at 93
    assert len(lad.warnings) == 1 and "before SO3" in lad.warnings[0]


def test_take_profit_plan_single_and_steps() -> None:
    p = golden_params()
    assert take_profit_plan("1.889287", "91.3043", p) == [
        (Decimal("1.889287"), Decimal("91.3043") * Decimal("1.015"))]
    steps = golden_params(take_profit_steps=[(25, 1), (25, 2), (50, 3)])
    plan = take_profit_plan(Decimal("1.00000001"), 100, steps)
    assert [price for _, price in plan] == [Decimal(101), Decimal(102), Decimal(103)]
    # 25 % of 1.00000001 rounds down to 8 decimals; the last step takes the remainder
    assert [qty for qty, _ in plan] == [Decimal("0.25"), Decimal("0.25"), Decimal("0.50000001")]
    lot = take_profit_plan(Decimal("1.05"), 100, steps, qty_step="0.1")
    assert [qty for qty, _ in lot] == [Decimal("0.2"), Decimal("0.2"), Decimal("0.65")]


# ---------------------------------------------------------------- properties

pct = st.decimals(min_value=Decimal("0.1"), max_value=Decimal("5"), places=2)
scale = st.decimals(min_value=Decimal("0.5"), max_value=Decimal("2.5"), places=2)
money = st.decimals(min_value=Decimal("1"), max_value=Decimal("10000"), places=2)
prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100000"), places=4)


@st.composite
def params_st(draw, side: str = "long", mode: str = "cumulative") -> DcaParams:
    kwargs = dict(
        base_order=draw(money), safety_order=draw(money), deviation_pct=draw(pct),
        step_scale=draw(scale), volume_scale=draw(scale),
        max_safety_orders=draw(st.integers(0, 25)), take_profit_pct=draw(pct),
        take_profit_type=draw(st.sampled_from(["total", "base"])), side=side, step_mode=mode,
    )
    try:
        return DcaParams(**kwargs)
    except DcaParamsError:
        assume(False)  # too deep for a long: rejected by validation, tested separately
        raise


@settings(max_examples=150, deadline=None)
@given(params_st(), prices)
def test_long_each_filled_so_lowers_the_average(p: DcaParams, p0: Decimal) -> None:
    lad = ladder(p, p0)
    avgs = [lv.avg_price for lv in lad.levels]
    assert all(b < a for a, b in zip(avgs, avgs[1:]))
    prices_ = [lv.price for lv in lad.levels]
    assert all(b < a for a, b in zip(prices_, prices_[1:]))
    assert all(lv.tp_total > lv.avg_price and lv.tp_base > lv.avg_price for lv in lad.levels)
    # once an SO filled, TP(base) needs less than TP(total) (profit only on BO volume)
    assert all(lv.tp_base < lv.tp_total for lv in lad.levels[1:])


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["long", "short"]).flatmap(lambda s: params_st(side=s)), prices)
def test_cum_cost_never_exceeds_max_funds(p: DcaParams, p0: Decimal) -> None:
    lad = ladder(p, p0)
    costs = [lv.cum_cost for lv in lad.levels]
    assert all(c <= lad.max_funds for c in costs)
    assert costs[-1] == lad.max_funds
    assert all(b > a for a, b in zip(costs, costs[1:]))
    assert lad.funds_at_open <= lad.max_funds


@settings(max_examples=200, deadline=None)
@given(
    position=st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("1e9"), places=8)
    | st.fractions(min_value=Fraction(1, 10**6), max_value=10**6).map(
        lambda f: Decimal(f.numerator) / Decimal(f.denominator)),
    avg=prices,
    amounts=st.lists(st.integers(1, 97), min_size=1, max_size=3),
    profits=st.lists(pct, min_size=4, max_size=4),
    lot=st.none() | st.sampled_from(["0.00000001", "0.001", "1"]),
)
def test_take_profit_plan_adds_up_exactly(position, avg, amounts, profits, lot) -> None:
    assume(sum(amounts) < 100)
    steps = [(a, profits[i]) for i, a in enumerate(amounts)] + [(100 - sum(amounts), profits[-1])]
    p = golden_params(take_profit_steps=steps)
    plan = take_profit_plan(position, avg, p, qty_step=lot)
    assert sum((Fraction(qty) for qty, _ in plan), Fraction(0)) == Fraction(position)
    assert all(qty > 0 for qty, _ in plan)
    assert len(plan) <= len(steps)
    single = take_profit_plan(position, avg, golden_params())
    assert len(single) == 1 and single[0][0] == position


@settings(max_examples=150, deadline=None)
@given(params_st(), prices)
def test_short_mirrors_long(p: DcaParams, p0: Decimal) -> None:
    long_lad = ladder(p, p0)
    short_lad = ladder(dataclasses.replace(p, side=DealSide.SHORT), p0)
    for lg, sh in zip(long_lad.levels, short_lad.levels):
        # same distance from P0 on the other side, same sizes in quote
        assert lg.price + sh.price == pytest.approx(2 * p0, rel=Decimal("1e-25"))
        assert lg.cum_deviation_pct == sh.cum_deviation_pct
        assert lg.quote_size == sh.quote_size
        assert sh.tp_price < sh.avg_price and sh.tp_base < sh.avg_price
    assert all(lv.price > p0 for lv in short_lad.levels[1:])
    avgs = [lv.avg_price for lv in short_lad.levels]
    assert all(b > a for a, b in zip(avgs, avgs[1:]))  # each short SO raises the average
    assert short_lad.max_funds == long_lad.max_funds
    assert short_lad.max_deviation_pct == long_lad.max_deviation_pct


@settings(max_examples=150, deadline=None)
@given(params_st(mode="from_previous"), prices, st.sampled_from(["long", "short"]))
def test_from_previous_is_monotone_and_differs_from_cumulative(p: DcaParams, p0: Decimal, side: str) -> None:
    p = dataclasses.replace(p, side=side)
    prev = ladder(p, p0)
    try:
        cum = ladder(dataclasses.replace(p, step_mode=StepMode.CUMULATIVE), p0)
    except DcaParamsError:
        assume(False)  # a long that only fits from_previous: nothing to compare
        raise
    s = 1 if side == "long" else -1
    levels = prev.levels
    for a, b in zip(levels, levels[1:]):
        assert s * (b.price - a.price) < 0  # strictly further from P0 each time
        # each SO sits step_n % beyond the previous SO, not beyond P0
        assert b.price == pytest.approx(a.price * (1 - s * b.step_pct / 100), rel=Decimal("1e-25"))
        assert b.cum_deviation_pct > a.cum_deviation_pct
    if p.max_safety_orders >= 1:
        assert levels[1].price == cum.levels[1].price  # SO1 is the same in both modes
    for lp, lc in zip(levels[2:], cum.levels[2:]):
        # compounding: long (1-a)(1-b) > 1-a-b sits closer to P0; short (1+a)(1+b) > 1+a+b further
        assert lp.price != lc.price
        assert s * (lp.cum_deviation_pct - lc.cum_deviation_pct) < 0
    assert [lv.step_pct for lv in levels] == [lv.step_pct for lv in cum.levels]


def test_from_previous_example() -> None:
    lad = ladder(golden_params(step_mode="from_previous"), 100)
    assert [lv.price for lv in lad.levels] == [
        Decimal(100), Decimal(99), Decimal("97.02"), Decimal("93.1392"), Decimal("85.688064")]
    assert q(lad.max_deviation_pct, "14.3119") == "14.3119"


# ---------------------------------------------------------------- validation

INVALID = [
    ("base_order", {"base_order": 0}),
    ("base_order", {"base_order": "abc"}),
    ("safety_order", {"safety_order": -5}),
    ("deviation_pct", {"deviation_pct": 0}),
    ("deviation_pct", {"deviation_pct": 100}),
    ("deviation_pct", {"deviation_pct": float("nan")}),
    ("step_scale", {"step_scale": 0}),
    ("volume_scale", {"volume_scale": 11}),
    ("max_safety_orders", {"max_safety_orders": 201}),
    ("max_safety_orders", {"max_safety_orders": -1}),
    ("max_safety_orders", {"max_safety_orders": 2.5}),
    ("max_safety_orders", {"deviation_pct": 10, "max_safety_orders": 5}),  # SO5 at -210 %
    ("max_safety_orders", {"deviation_pct": 60, "step_scale": 2, "max_safety_orders": 2,
                           "step_mode": "from_previous"}),  # step 120 %
    ("active_safety_orders", {"active_safety_orders": 5}),
    ("active_safety_orders", {"active_safety_orders": 0}),
    ("active_safety_orders", {"max_safety_orders": 0, "active_safety_orders": 1}),
    ("take_profit_pct", {"take_profit_pct": 0}),
    ("take_profit_pct", {"take_profit_pct": 100, "side": "short"}),
    ("take_profit_type", {"take_profit_type": "average"}),
    ("take_profit_steps", {"take_profit_steps": [(50, 1), (40, 2)]}),
    ("take_profit_steps", {"take_profit_steps": [(20, 1)] * 5}),
    ("take_profit_steps", {"take_profit_steps": [(100, 0)]}),
    ("take_profit_steps", {"take_profit_steps": [(100,)]}),
    ("stop_loss_pct", {"stop_loss_pct": 0}),
    ("stop_loss_pct", {"stop_loss_pct": 100}),
    ("stop_loss_reference", {"stop_loss_reference": "entry"}),
    ("side", {"side": "up"}),
    ("leverage", {"leverage": "0.5"}),
    ("leverage", {"leverage": 200}),
    ("maintenance_margin_rate", {"leverage": 10, "maintenance_margin_rate": "0.1"}),
    ("maintenance_margin_rate", {"maintenance_margin_rate": -1}),
    ("step_mode", {"step_mode": "geometric"}),
    ("base_order", {"base_order": True}),
]


@pytest.mark.parametrize("field,overrides", INVALID, ids=[f"{f}-{i}" for i, (f, _) in enumerate(INVALID)])
def test_invalid_params_name_the_field(field: str, overrides: dict) -> None:
    with pytest.raises(DcaParamsError) as info:
        golden_params(**overrides)
    assert field in [name for name, _ in info.value.errors]
    assert f"{field}:" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_all_errors_are_reported_together() -> None:
    with pytest.raises(DcaParamsError) as info:
        golden_params(base_order=0, safety_order=0, side="sideways")
    assert [name for name, _ in info.value.errors] == ["base_order", "safety_order", "side"]


def test_from_mapping_forbids_extra_and_requires_fields() -> None:
    data = dict(base_order=10, safety_order=20, deviation_pct=1, step_scale=2, volume_scale=1.5,
                max_safety_orders=4, take_profit_pct=1.5)
    assert DcaParams.from_mapping(data) == golden_params()
    with pytest.raises(DcaParamsError, match="take_profit: unknown field"):
        DcaParams.from_mapping({**data, "take_profit": 2})
    with pytest.raises(DcaParamsError, match="base_order: field required"):
        DcaParams.from_mapping({k: v for k, v in data.items() if k != "base_order"})


def test_params_are_frozen_and_normalised() -> None:
    p = golden_params(side="SHORT", take_profit_type="Base", take_profit_steps=[{"amount_pct": 100, "profit_pct": 2}])
    assert p.side is DealSide.SHORT and p.take_profit_type is TakeProfitType.BASE
    assert p.take_profit_steps == ((Decimal(100), Decimal(2)),)
    assert isinstance(p.base_order, Decimal)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.base_order = Decimal(1)  # type: ignore[misc]


def test_price_must_be_positive() -> None:
    with pytest.raises(ValueError, match="price"):
        ladder(golden_params(), 0)
