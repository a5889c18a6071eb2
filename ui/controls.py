"""Kill switches: per-bot Pause entries / Close all positions / Resume, global Emergency stop and
Resume all. Each opens a confirmation that says exactly what will happen, then XADDs a command.

The dialog's open state lives in st.session_state (set by on_click callbacks) so it survives
the periodic fragment reruns; the buttons live outside the auto-refreshing fragments.
"""
from __future__ import annotations

import time

import streamlit as st

from core.types import TradingState
from state.commands import await_result, new_command, post_command
from state.models import AUTOMATIC, BotMeta, BotSnapshot
from state.reader import StateReader
from ui import golive, login
from ui.common import get_redis, redis_url, short_ts, state_badge, ts

ANSWER_WAIT_S = 1.5  # how long a confirmed command waits for the worker before the page is drawn again

LABELS = {
    "pause": "Pause entries",
    "flatten": "Close all positions",
    "resume": "Resume",
    "upsert_dca_bot": "Save DCA bot",
    "adopt": "Adopt the venue's position",
    "ignore_drift": "Ignore the difference",
    "emergency_stop": "Emergency stop",
    "resume_all": "Resume all",
}


def _open(cmd: str, scope: str, target: str = "", payload: str = "", summary: str = "") -> None:
    st.session_state["confirm"] = {"cmd": cmd, "scope": scope, "target": target, "payload": payload,
                                   "summary": summary}


def _close() -> None:
    for k in ("confirm", "live_ack", "live_code"):  # a used TOTP code is not offered again
        st.session_state.pop(k, None)


def _position_text(s: BotSnapshot | None) -> str:
    if s is not None and s.open_signals:
        return f"{len(s.open_signals)} open hypothetical signal trade(s) (nothing is on any venue)"
    if s is None or not s.open_positions:
        return "no open position"
    return " and ".join(f"a {p.side.lower()} position of {abs(p.quantity):.6g} {p.symbol} "
                        f"(≈ {abs(p.quantity) * p.mark:,.2f} {s.quote_asset}, unrealized {p.unrealized_pnl:+,.2f})"
                        for p in s.open_positions)


def describe(cmd: str, scope: str, target: str, reader: StateReader, summary: str = "") -> str:
    """The plain-language effect of a command, with the numbers as they are right now."""
    if cmd == "upsert_dca_bot":
        exists = target in reader.bots()
        return (f"**{target} will be {'updated' if exists else 'created'}** with these settings: {summary}. "
                + ("Running deals keep the settings they started with; new deals use these." if exists
                   else "It starts its first deal when its start condition is met."))
    if cmd == "adopt":
        return (f"**{target} will take what the venue holds as its position** (the bot's own record is replaced). "
                "It stays paused until you press **Resume**.")
    if cmd == "ignore_drift":
        return (f"**The difference between {target} and the venue will no longer be flagged**: it is treated as "
                "holdings that are not the bot's. The bot stays paused until you press **Resume**.")
    snaps = reader.snapshots()
    if cmd == "emergency_stop":
        open_pos = [s for s in snaps.values() if s.open_positions or s.open_signals]
        lines = "\n".join(f"- **{s.name}** ({s.mode}): {_position_text(s)}" for s in open_pos)
        return (f"**Every bot in every mode ({len(snaps)} bots) will close its positions at market now and be "
                f"paused.** {len(open_pos)} bot(s) hold something:\n\n{lines or '- none'}\n\n"
                "No bot opens a new position until you press **Resume all**. Live bots' positions are closed with "
                "reduce-only market orders.")
    if cmd == "resume_all":
        kept = [s for s in snaps.values() if s.control.state is not TradingState.ACTIVE
                and s.control.set_by in AUTOMATIC]
        text = (f"**The global stop is lifted and {len(snaps) - len(kept)} of {len(snaps)} bots return to ACTIVE**: "
                "they may open new positions on their next signal.")
        if kept:
            text += ("\n\nThese stay stopped, because a rule stopped them (resume each on its own once you have "
                     "looked):\n\n" + "\n".join(f"- **{s.name}**: {s.control.state.value} by {s.control.set_by}: "
                                                 f"{s.control.reason}" for s in kept))
        return text
    s = snaps.get(target)
    if cmd == "pause":
        return (f"**{target} will open no new positions.** It keeps {_position_text(s)}; its exits "
                "(stop-loss, take-profit, opposite signal, time horizon) keep running. **Resume** undoes this.")
    if cmd == "flatten":
        after = "stay **HALTED**" if s is not None and s.control.state is TradingState.HALTED else "be paused"
        return (f"**{target} will close {_position_text(s)} at market now** and then {after} "
                "(no new entries) until you press **Resume**. Until the venue confirms it flat the bot is "
                "FLATTEN: only orders that shrink its position, retried every step.")
    extra = ""
    g = reader.control("global")
    if g.state is not TradingState.ACTIVE:
        extra = f" Note: the global state is **{g.state.value}** ({g.reason}); it stays paused until **Resume all**."
    return f"**{target} returns to ACTIVE**: it may open new positions on its next signal.{extra}"


@st.dialog("Confirm", on_dismiss=_close)
def _confirm_dialog(reader: StateReader) -> None:
    c = st.session_state.get("confirm")
    if not c:
        return
    label = LABELS[c["cmd"]]
    st.markdown(f"### {label}{' — ' + c['target'] if c['target'] else ''}")
    st.markdown(describe(c["cmd"], c["scope"], c["target"], reader, c.get("summary", "")))
    ready, otp = golive.code_steps(c, reader)  # a live action: the risk acknowledged and a TOTP code
    left, right = st.columns(2)
    if left.button(f"Yes, {label.lower()}", key="confirm_send", type="primary", disabled=not ready):
        command = new_command(c["cmd"], c["scope"], c["target"], user=login.sender(), payload=c.get("payload", ""),
                              otp=otp)
        r = get_redis(redis_url())
        entry = post_command(r, command)
        st.session_state["last_sent"] = {"nonce": command.nonce, "label": f"{label} {c['target']}".strip(),
                                         "entry": entry, "at": int(time.time() * 1000)}
        # The worker answers a kill switch in a few hundred ms: the page drawn next shows its effect
        # (states, the answer) instead of "waiting" until the next refresh; a silent worker costs 1.5 s.
        with st.spinner("Waiting for the worker's answer…"):
            await_result(r, command.nonce, ANSWER_WAIT_S)
        _close()
        st.rerun()
    if right.button("Cancel", key="confirm_cancel"):
        _close()
        st.rerun()


def global_controls(reader: StateReader) -> None:
    if not login.can_operate():  # a viewer: no kill switches (the worker refuses a viewer's commands too)
        return
    cols = st.columns([1.2, 1, 4])
    cols[0].button("Emergency stop", key="emergency_stop", type="primary", on_click=_open,
                   args=("emergency_stop", "global"), help="Close every position in every mode and pause all bots")
    cols[1].button("Resume all", key="resume_all", on_click=_open, args=("resume_all", "global"))
    if st.session_state.get("confirm"):
        _confirm_dialog(reader)


def bot_controls(metas: list[BotMeta], tab: str) -> None:
    """One row of kill switches per bot (the state itself is shown in the refreshing panel). A bot may
    be drawn on two tabs (a live DCA bot: Live and DCA), so every key carries the tab's name."""
    if not login.can_operate():
        return
    for m in metas:
        with st.container(key=f"{tab}_controls_{m.name}", horizontal=True, vertical_alignment="center"):
            st.markdown(f"**{m.name}** · {m.symbol} · {m.strategy}")
            for cmd in ("pause", "flatten", "resume"):
                st.button(LABELS[cmd], key=f"{tab}_{cmd}_{m.name}", on_click=_open, args=(cmd, "bot", m.name))


def state_lines(snaps: list[BotSnapshot], tab: str) -> None:
    """Each bot's effective trading state, who set it, when and why (plain text, one line a bot)."""
    for s in snaps:
        c = s.control
        held = "" if s.effective_state == c.state else f" (bot: {c.state.value}, held by a wider state)"
        who = f" — set by {c.set_by} at {ts(c.set_at)}" if c.set_at else ""
        why = f": {c.reason}" if c.reason else ""
        with st.container(key=f"{tab}_state_{s.name}"):
            st.markdown(f"**{s.name}** {state_badge(s.effective_state)}{held}{who}{why}")
            if c.state is TradingState.FLATTEN:
                st.error(close_pending_text(s.name, c.set_at, c.then))


def close_pending_text(name: str, since: int, then: TradingState | None) -> str:
    return (f"**{name}: close NOT confirmed yet** (asked at {ts(since)}). The bot places only orders that shrink "
            f"its position and retries every step until the venue confirms it flat; then it is "
            f"{(then or TradingState.PAUSED).value}.")


def last_command_note(reader: StateReader) -> None:
    sent = st.session_state.get("last_sent")
    if not sent:
        return
    result = reader.command_result(sent["nonce"])
    if result is None:
        st.info(f"Sent **{sent['label']}** at {short_ts(sent['at'])} — waiting for the worker…")
    elif result.status == "applied":
        st.success(f"**{sent['label']}** applied: {result.message}")
    elif result.status == "pending":
        st.error(f"**{sent['label']}** applied but NOT complete: {result.message}")
    else:
        st.error(f"**{sent['label']}** {result.status}: {result.message}")
