"""The DCA tab: create or edit a DCA bot with a live ladder preview, each bot's active deals with
their ladder on the price chart, and closed deals."""
from __future__ import annotations

import json
import re

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from core.validation import error_lines
from settings import BotConfig
from strategy.dca_settings import DcaConfig
from state.models import BotMeta
from strategy.dca import ladder
from ui import bot_view, fmt, records_panel
from ui.common import duration, reader, short_ts
from ui.controls import _open, bot_controls, state_lines


def preview_frame(cfg: DcaConfig, price: float) -> tuple[pd.DataFrame, str]:
    """The same ladder as `bot_manager.py dca-preview`, as a table plus its totals."""
    lad = ladder(cfg.params(), price)
    rows = [{
        "order": lv.name, "step %": None if lv.step_pct is None else float(lv.step_pct),
        "cum. dev %": float(lv.cum_deviation_pct), "price": float(lv.price), "size (quote)": float(lv.quote_size),
        "size (base)": float(lv.base_qty), "cum. cost": float(lv.cum_cost), "cum. qty": float(lv.cum_qty),
        "average": float(lv.avg_price), "take profit": float(lv.tp_price),
    } for lv in lad.levels]
    totals = f"max funds {float(lad.max_funds):,.2f} · max deviation covered {float(lad.max_deviation_pct):.2f}%"
    if lad.liquidation_price is not None:
        totals += f" · liquidation ≈ {float(lad.liquidation_price):,.2f} (x{cfg.leverage:g} isolated)"
    if lad.warnings:
        totals += " · ⚠ " + "; ".join(lad.warnings)
    return pd.DataFrame(rows), totals


# (widget key suffix, setting, label, type, default): the form's fields, in order
FIELDS = [
    ("bo", "base_order", "Base order (quote)", float, 100.0),
    ("so", "safety_order", "Safety order (quote)", float, 200.0),
    ("dev", "deviation_pct", "Deviation %", float, 1.0),
    ("ss", "step_scale", "Step scale", float, 1.5),
    ("vs", "volume_scale", "Volume scale", float, 1.5),
    ("n", "max_safety_orders", "Max safety orders", int, 4),
    ("a", "active_safety_orders", "Active safety orders", int, 2),
    ("tp", "take_profit_pct", "Take profit %", float, 1.0),
    # a stop by default: without one a safety order is judged at its whole notional and the default
    # per-trade loss limit (1 % of the balance) refuses the default ladder (settings.BotConfig.dca_problem)
    ("sl", "stop_loss_pct", "Stop loss % (0 = none)", float, 10.0),
    ("cd", "cooldown_s", "Cooldown (s)", float, 300.0),
]
NAME_RULE = "letters, digits, '-' and '_' only, 1 to 40 characters"


def parse_number(text: str, kind: type) -> tuple[float | int | None, str]:
    """(value, '') or (None, what is wrong): the text on screen is the value, or an error — never a
    clamped or rounded stand-in."""
    raw = text.strip().replace(",", "").replace("_", "")
    if not raw:
        return None, "required"
    try:
        value = float(raw)
    except ValueError:
        return None, f"not a number: {text!r}"
    if value != value or value in (float("inf"), float("-inf")):
        return None, "must be a finite number"
    if kind is int:
        if value != int(value):
            return None, f"must be a whole number (got {text.strip()})"
        return int(value), ""
    return value, ""


def field_errors(values: dict[str, object]) -> tuple[DcaConfig | None, dict[str, list[str]]]:
    """The settings, or the errors by setting (``setting: rule``; a rule spanning several settings is
    put under the one it names first)."""
    try:
        return DcaConfig(**values), {}
    except ValidationError as exc:
        out: dict[str, list[str]] = {}
        for line in error_lines(exc):
            loc, _, rule = line.partition(": ")
            # the ladder's rules come joined as "a: rule; b: rule" (a rule may hold "; " itself)
            parts = [rule] if loc != "(top level)" else re.split(r"; (?=[a-z_]+: )", rule)
            for part in parts:
                name = loc if loc != "(top level)" else part.partition(": ")[0]
                out.setdefault(name if name in DcaConfig.model_fields else "", []).append(
                    part if loc == "(top level)" else f"{loc}: {rule}")
        return None, out


def name_error(name: str, existing: dict[str, BotMeta], others: set[str], is_new: bool) -> str:
    """What is wrong with a new bot's name ('' when fine)."""
    if not (1 <= len(name) <= 40) or not all(ch.isalnum() or ch in "-_" for ch in name):
        return f"name: {NAME_RULE}"
    if is_new and name in others:
        return f"name: {name} is already a bot of config.yaml or a live bot; pick another name"
    if is_new and name in existing:
        return f"name: {name} already exists; pick it in 'Bot' above to edit it"
    return ""


@st.cache_data(ttl=30, show_spinner=False)
def _paper_account() -> tuple[float, float, float]:
    """(starting balance, fee %, slippage bps) of the paper account: what the worker judges a new
    DCA bot against (engine.fleet.Fleet.dynamic_config)."""
    from settings import ConfigError, load_config

    try:
        paper = load_config().paper
        return float(paper.starting_balance), float(paper.fee_pct), float(paper.slippage_bps)
    except ConfigError:
        return 10_000.0, 0.1, 5.0


def _paper_balance() -> float:
    return _paper_account()[0]


def placement_problem(name: str, payload: str) -> str:
    """Why the worker would refuse this bot as sent (its base order or SO1 could never pass the
    per-trade loss limit, or the bot as a whole is not valid), by the worker's own rule; '' when none."""
    try:
        cfg = BotConfig.model_validate({**json.loads(payload), "name": name})
    except ValidationError as exc:
        return "\n\n".join(error_lines(exc))
    return cfg.dca_problem(*_paper_account()) or ""


def funds_warnings(cfg: DcaConfig, equity: float, risk: dict[str, object], quote: str) -> tuple[list[str], bool]:
    """(warnings, whether the ladder needs more than the balance): the ladder's maximum against the
    bot's balance and its risk limits (the risk engine denies what goes past them)."""
    need = float(ladder(cfg.params(), 100.0).max_funds) * cfg.max_active_deals
    out: list[str] = []
    over = need > equity
    if over:
        out.append(f"The ladder needs up to {need:,.2f} {quote} ({cfg.max_active_deals} deal(s) × max funds) but the "
                   f"bot's balance is {equity:,.2f} {quote}: safety orders past the balance will be refused.")
    for limit in ("max_position_pct", "max_bot_exposure_pct"):
        pct = risk.get(limit)
        if isinstance(pct, (int, float)) and need > equity * float(pct) / 100:
            out.append(f"Risk limit {limit} = {float(pct):g}% allows {equity * float(pct) / 100:,.2f} {quote}; the ladder "
                       f"needs up to {need:,.2f} {quote}: orders beyond it will be denied by the risk engine.")
    return out, over


def editor(metas: list[BotMeta], symbols: list[str], all_bots: dict[str, BotMeta] | None = None) -> None:
    """Create or edit a DCA bot. Every field is checked as it is typed (the error under the field),
    Save stays disabled while anything is invalid, and what Save sends is exactly what is on screen."""
    # Live DCA bots are edited in config.yaml only (the two-key switch), never from here.
    existing = {m.name: m for m in metas if m.mode != "live"}
    others = {n for n, m in (all_bots or {}).items() if n not in existing}
    with st.expander("Create or edit a DCA bot", expanded=not metas):
        pick = st.selectbox("Bot", ["(new bot)", *existing], key="dca_edit_pick")
        is_new = pick not in existing
        seed = existing[pick].params if not is_new else {}
        c = st.columns(4)
        if is_new:
            name = c[0].text_input("Name", "dca-new", key="dca_name", max_chars=40, help=NAME_RULE)
        else:
            name = pick
            c[0].text_input("Name", pick, key=f"dca_name_{pick}", disabled=True)
        mode = (existing[pick].mode if not is_new else c[1].selectbox("Mode", ["paper", "ghost"], key="dca_mode"))
        if not is_new:
            c[1].text_input("Mode", mode, key=f"dca_mode_{pick}", disabled=True)
        pair = (existing[pick].symbol if not is_new else c[2].selectbox("Pair", symbols, key="dca_pair"))
        if not is_new:
            c[2].text_input("Pair", pair, key=f"dca_pair_{pick}", disabled=True)
        side = c[3].selectbox("Side", ["long", "short"], index=0 if seed.get("side", "long") == "long" else 1,
                              key=f"dca_side_{pick}")
        errors: dict[str, list[str]] = {}
        bad_name = name_error(name, existing, others, is_new)
        if bad_name:
            c[0].error(bad_name)
        typed: dict[str, object] = {}
        cells = [*st.columns(5), *st.columns(5)]
        for cell, (suffix, setting, label, kind, default) in zip(cells, FIELDS):
            start = seed.get(setting)
            start = default if start is None else start
            text = cell.text_input(label, f"{start:g}" if isinstance(start, (int, float)) else str(start),
                                   key=f"dca_{suffix}_{pick}")
            value, problem = parse_number(text, kind)
            if problem:
                errors.setdefault(setting, []).append(f"{setting}: {problem}")
            typed[setting] = value
        typed["stop_loss_pct"] = typed["stop_loss_pct"] or None  # 0 = no stop
        typed["side"] = side
        cfg = None
        if not errors:
            # The form shows the common settings; every other stored setting (take-profit steps,
            # trailing, price range, pairs, ...) is kept as it was, not reset to a default.
            values = {**{k: v for k, v in seed.items() if k in DcaConfig.model_fields}, **typed}
            cfg, errors = field_errors(values)
        for cell, (_, setting, _, _, _) in zip(cells, FIELDS):
            if errors.get(setting):
                cell.error("\n\n".join(errors[setting]))
        rest = [e for k, lines in errors.items() if k not in {f[1] for f in FIELDS} for e in lines]
        if rest:
            st.error("\n\n".join(rest))
        if cfg is None:
            st.button("Save DCA bot", key="dca_save", type="primary", disabled=True,
                      help="fix the fields in red first")
            return
        candles = reader().candles(pair, 1)
        price = candles[-1].c if candles else 100.0
        frame, totals = preview_frame(cfg, price)
        st.caption(f"Preview at the last price {price:,.2f} — {totals}")
        st.dataframe(frame, hide_index=True, key=f"dca_preview_{pick}")
        stored = reader().dynamic_bot(name) if not is_new else None
        risk = (stored or {}).get("risk") or {"max_position_pct": 50, "max_bot_exposure_pct": 50}
        snap = reader().snapshots([name]).get(name) if not is_new else None
        quote = fmt.quote(pair)
        warnings, over = funds_warnings(cfg, snap.equity if snap else _paper_balance(), risk, quote)  # type: ignore[arg-type]
        for w in warnings:
            st.warning(w)
        ack = st.checkbox("I know the ladder needs more than the balance", key=f"dca_ack_{pick}") if over else True
        dca = cfg.model_dump(exclude_defaults=True)
        payload = json.dumps({"mode": mode, "kind": "dca", "symbol": pair, "dca": dca, "risk": risk})
        shown = ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else f"{k} {v}"
                          for k, v in dca.items())
        summary = f"{side} {pair} in {mode}: {shown}; {totals}"
        refused = "" if bad_name else placement_problem(name, payload)
        if refused:  # the worker would refuse it: say why here, before anything is sent
            st.error(f"The worker would refuse this bot: {refused}")
        st.button("Save DCA bot", key="dca_save", type="primary", on_click=_open,
                  disabled=bad_name != "" or not ack or refused != "",
                  args=("upsert_dca_bot", "bot", name, payload, summary))


def render(metas: list[BotMeta], symbols: list[str], refresh_s: float) -> None:
    try:
        all_bots = reader().bots()
    except Exception:  # noqa: BLE001 - Redis down: the panel below says so
        all_bots = {}
    editor(metas, symbols, all_bots)

    @st.fragment(run_every=max(refresh_s, 2.0))
    def panel() -> None:
        r = reader()
        # Re-read the bots: one created from another page or the shell appears without a reload.
        names = [m.name for m in r.bots().values() if m.kind == "dca"]
        if not names:
            st.info("No DCA bots yet: create one above, or add one to config.yaml with `kind: dca`.")
            return
        snaps = r.snapshots(names)
        state_lines(list(snaps.values()), "dca")
        for name in names:
            s = snaps.get(name)
            if s is None:
                continue
            dca = s.dca or {}
            deals = dca.get("deals", [])  # type: ignore[union-attr]
            closed = r.deals(name, 50)
            st.markdown(f"**{name}** · equity {s.equity:,.2f} {s.quote_asset} ({s.pnl:+,.2f}) · active deals {len(deals)} · "
                        f"closed deals {len(closed)} · resting orders {len(dca.get('resting', []))}")  # type: ignore[arg-type]
            for deal in deals:  # type: ignore[union-attr]
                sym = str(deal["symbol"])
                qty, cost = float(deal.get("quantity") or 0), float(deal.get("cost") or 0)
                st.caption(f"Deal {deal['id']} on {sym}: {deal['status']} · {fmt.qty(qty, sym)} at average "
                           f"{fmt.price(cost / qty if qty else 0.0, sym, True)} · safety orders filled "
                           f"{deal.get('safety_filled')} · opened {short_ts(int(deal.get('opened_at') or 0))} (market)")
                if deal.get("blocked"):  # a safety order a risk rule holds back: placed when the rule lets it
                    st.warning(f"{sym} deal {deal['id']}: {deal['blocked']} (placed when the rule lets it)")
            if closed:
                st.dataframe(pd.DataFrame([{
                    "deal": d["id"], "pair": d["symbol"], "result": d["status"], "reason": d["close_reason"],
                    "opened": short_ts(int(d["opened_at"])), "duration": duration(int(d["closed_at"]) - int(d["opened_at"])),
                    "P&L": round(float(d["realized_pnl"]), 2), "safety orders used": d["safety_filled"],
                    "max floating drawdown %": round(float(d["max_drawdown_pct"]), 2),
                } for d in closed]), hide_index=True, key=f"closed_{name}")

    panel()
    st.markdown("**Kill switches**")
    bot_controls(metas, "dca")
    st.markdown("**Charts** (the ladder: resting safety orders and take-profits dashed, filled ones dotted, the "
                "average and the stop solid)")
    bot_view.charts(metas, "dca", refresh_s)
    records_panel.exports([m.name for m in metas], "dca", kinds=("deals", "trades", "fills", "orders", "equity"))
