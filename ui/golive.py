"""The go-live protocol on the dashboard: each live bot's stage with its evidence (Live tab), the
three-step approval (review → risk acknowledgement → TOTP code), the code asked for any other live
action in the confirmation dialog, and TOTP enrolment (QR code and secret shown once).

This process only reads state and posts commands; the worker checks every code (``engine.live_auth``)
and moves the stages (``engine.golive``). A TOTP secret exists here only while its QR code is on the
enrolment form; once a code proves it, it goes to the users file and leaves the session.
"""
from __future__ import annotations

import json
import time

import pandas as pd
import streamlit as st

import auth.totp as totp
from auth.users import UsersFile, users_path
from risk.stages import GoLiveConfig, Stage, effective_cap, requirements
from state import golive_store
from state.commands import new_command, post_command
from state.models import BotMeta
from state.reader import StateReader
from ui import login
from ui.common import get_redis, redis_url, reader, ts


@st.cache_data(ttl=30, show_spinner=False)
def _cfg() -> GoLiveConfig:
    from settings import ConfigError, load_config

    try:
        return load_config().golive
    except ConfigError:
        return GoLiveConfig()


def _send(cmd: str, target: str, label: str, *, value: str = "", payload: str = "", otp: str = "",
          scope: str = "bot") -> None:
    command = new_command(cmd, scope, target, user=login.sender(), value=value, payload=payload, otp=otp)  # type: ignore[arg-type]
    entry = post_command(get_redis(redis_url()), command)
    st.session_state["last_sent"] = {"nonce": command.nonce, "label": label, "entry": entry,
                                     "at": int(time.time() * 1000)}


def guarded(r: StateReader, names: list[str] | None = None) -> list[str]:
    """Live bots under the protocol (the worker's records say so), optionally among ``names``."""
    metas = r.bots()
    out = []
    for name, m in metas.items():
        if m.mode != "live" or (names is not None and name not in names):
            continue
        rec = golive_store.load(r.r, name)
        if rec is not None and rec.enforced:
            out.append(name)
    return out


def needs_code(c: dict[str, str], r: StateReader) -> bool:
    """Does the confirmation ``c`` (ui.controls) send a live action, which needs a TOTP code?"""
    cmd, scope, target = c["cmd"], c["scope"], c["target"]
    if cmd in ("adopt", "ignore_drift") or (cmd == "resume" and scope == "bot"):
        return bool(guarded(r, [target]))
    if cmd == "resume_all" or (cmd == "resume" and (scope == "global" or target == "live")):
        return bool(guarded(r))
    return False


def code_steps(c: dict[str, str], r: StateReader) -> tuple[bool, str]:
    """Steps 2 and 3 of a live action in the confirmation dialog (step 1 is the effect it describes):
    the risk acknowledged and a fresh code. Returns (ready to send, the code)."""
    if not needs_code(c, r):
        return True, ""
    st.warning("This is a **live action**: a live bot may place real orders afterwards.")
    ack = st.checkbox("I have reviewed the bot's parameters and limits, and I accept the losses they allow",
                      key="live_ack")
    code = st.text_input("Step 3 — TOTP code from your authenticator", max_chars=6, key="live_code",
                         disabled=not ack)
    return bool(ack and len(code.strip()) == 6), code.strip()


# ---- the stage panel of the Live tab ----------------------------------------------------------
REFRESH_S = 5.0  # evidence (round trips, days in a stage) moves with trading: shown fresh without a click


def render(metas: list[BotMeta]) -> None:
    cfg = _cfg()
    st.markdown("### Go-live stages")
    st.caption(f"unapproved: places nothing · first_trade: one position, at most {cfg.first_trade_cap:g} · "
               f"scaling (after {cfg.trades_to_scale} winning live round trips): at most {cfg.scaling_cap:g} · "
               f"full (after a profitable {cfg.profitable_days}-day week): the configured limits. A loss-limit "
               "breach drops a bot back one stage.")

    @st.fragment(run_every=REFRESH_S)
    def stages() -> None:
        _stages(metas, cfg)

    stages()


def _stages(metas: list[BotMeta], cfg: GoLiveConfig) -> None:
    r = reader()
    snaps = r.snapshots([m.name for m in metas])
    for m in metas:
        rec = golive_store.load(r.r, m.name)
        with st.container(key=f"golive_{m.name}", border=True):
            if rec is None:
                st.caption(f"**{m.name}**: no go-live record yet (the worker makes it when it starts the bot).")
                continue
            cap = "places nothing" if rec.stage is Stage.UNAPPROVED else (
                f"position cap {rec.cap:,.2f}" if rec.cap is not None else "the configured limits")
            st.markdown(f"**{m.name}** · stage **{rec.stage.value}** ({cap}) since {ts(rec.since)}"
                        + (f" · approved by {rec.approved_by}" if rec.approved_by else "")
                        + ("" if rec.enforced else " · *not enforced: a live bot on the local exchange "
                                                    "(`golive.stages: on` rehearses the protocol here)*"))
            snap = snaps.get(m.name)
            ev = golive_store.collect(r.r, rec, snap.last_candle_time if snap else 0)
            nxt = rec.stage.next()
            if nxt is not None:
                reqs = requirements(nxt, ev, cfg)
                st.markdown(f"Evidence for **{nxt.value}**:")
                st.dataframe(pd.DataFrame([{"requirement": q.name, "met": "✓" if q.ok else "✗", "measured": q.detail}
                                           for q in reqs]), hide_index=True, key=f"golive_reqs_{m.name}")
            if rec.history:
                with st.expander(f"Stage history ({len(rec.history)})"):
                    st.dataframe(pd.DataFrame([{"when": ts(t.time), "who": t.who, "from": t.from_stage,
                                                "to": t.to_stage, "why": t.reason, "evidence": t.evidence}
                                               for t in reversed(rec.history)]), hide_index=True)
            if rec.enforced and login.can_operate():
                _actions(m, rec, nxt, cfg)


def _actions(m: BotMeta, rec: golive_store.GoLiveRecord, nxt: Stage | None, cfg: GoLiveConfig) -> None:
    name = m.name
    if rec.stage is not Stage.UNAPPROVED:
        prev = rec.stage.previous()
        st.button(f"Move back to {prev.value}", key=f"golive_down_{name}", on_click=_send,
                  args=("golive", name, f"go-live {name} -> {prev.value}"), kwargs={"value": prev.value})
    if nxt is None:
        return
    who = login.current()
    step_key = f"golive_step_{name}"
    step = st.session_state.get(step_key, 0)
    if who.name and who.role != "live-operator":
        st.caption(f"Approving {nxt.value} needs a live-operator with TOTP (you are {who.role}).")
        return
    if step == 0:
        st.button(f"Approve {nxt.value}…", key=f"golive_start_{name}", type="primary",
                  on_click=lambda: st.session_state.__setitem__(step_key, 1))
        return
    cap = effective_cap(nxt, cfg, rec.configured_cap)  # as the worker computes it
    if step == 1:
        st.markdown(f"**Step 1 of 3 — review {name}**: {m.kind} bot, strategy **{m.strategy}** on "
                    f"{', '.join(m.symbols or [m.symbol])} ({m.market}), sizing {m.sizing}, parameters "
                    f"`{json.dumps(m.params, default=str)}`. At **{nxt.value}** its position is capped at "
                    + (f"**{cap:,.2f}**" if cap is not None else "its configured limits") + ".")
        c = st.columns(2)
        c[0].button("Parameters and limits reviewed", key=f"golive_reviewed_{name}",
                    on_click=lambda: st.session_state.__setitem__(step_key, 2))
        c[1].button("Cancel", key=f"golive_cancel1_{name}", on_click=lambda: st.session_state.pop(step_key, None))
        return
    max_loss = cap
    st.markdown(f"**Step 2 of 3 — the risk.** {name} will place real orders. The most it can lose at this stage is "
                + (f"**{max_loss:,.2f}** (its whole position cap)" if max_loss is not None else "its configured "
                   "limits") + ". The kill switch (Close all positions) closes it at market at any time.")
    ack = st.checkbox(f"I accept losing up to {max_loss:,.2f}" if max_loss is not None else "I accept the risk",
                      key=f"golive_ack_{name}")
    typed = st.text_input(f"Type the bot's name ({name}) to confirm", key=f"golive_typed_{name}")
    code = st.text_input("Step 3 of 3 — TOTP code", max_chars=6, key=f"golive_code_{name}")
    ready = ack and typed.strip() == name and len(code.strip()) == 6
    payload = json.dumps({"confirm": typed.strip(), "max_loss": max_loss})
    c = st.columns(2)
    if c[0].button(f"Approve {nxt.value}", key=f"golive_approve_{name}", type="primary", disabled=not ready):
        _send("golive", name, f"go-live {name} -> {nxt.value}", value=nxt.value, payload=payload, otp=code.strip())
        for k in (step_key, f"golive_ack_{name}", f"golive_typed_{name}", f"golive_code_{name}"):
            st.session_state.pop(k, None)
        st.rerun()
    c[1].button("Cancel", key=f"golive_cancel2_{name}", on_click=lambda: st.session_state.pop(step_key, None))


# ---- TOTP enrolment -------------------------------------------------------------------------
def enrolment() -> None:
    """For a signed-in user: set up (or replace) their authenticator. The secret lives in this session
    only until a code proves it. One container, so what shows inside never shifts the tabs below
    (Streamlit resets the selected tab when the elements before it change)."""
    with st.container(key="totp_box"):
        _enrolment()


def _enrolment() -> None:
    who = login.current()
    path = users_path()
    if not who.name or path is None:
        return
    users = UsersFile(path)
    user = users.get(who.name)
    if user is None:
        return
    if st.session_state.pop("totp_done", False):
        st.success("Two-factor enrolled: live actions now ask for a code from your app.")
    label = "Replace two-factor authenticator (TOTP)" if user.totp_secret else "Set up two-factor (TOTP)"
    with st.expander(label, expanded=not user.totp_secret and who.role == "live-operator"):
        pending = st.session_state.get("totp_pending")
        if not pending:
            st.button("Show a new QR code", key="totp_new",
                      on_click=lambda: st.session_state.__setitem__("totp_pending", totp.new_secret()))
            return
        uri = totp.provisioning_uri(pending, who.name)
        st.image(totp.qr_png(uri), caption="Scan with your authenticator app", width=220)
        st.markdown(f"Or type this secret (shown only now): `{pending}`")
        code = st.text_input("Code from the app", max_chars=6, key="totp_enrol_code")
        if st.button("Confirm", key="totp_confirm", type="primary"):
            res = totp.check(pending, code, None)
            if not res.ok:
                st.error(f"Refused: {res.reason}")
                return
            users.enrol_totp(who.name, pending)
            st.session_state.pop("totp_pending", None)
            st.session_state.pop("totp_enrol_code", None)
            try:
                post_command(get_redis(redis_url()), new_command("auth", "bot", who.name, user=login.sender(),
                                                                 value="totp_enrolled"))
            except Exception:  # noqa: BLE001 - Redis down: the enrolment itself is done
                pass
            st.session_state["totp_done"] = True
            st.rerun()
