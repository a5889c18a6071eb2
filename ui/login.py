"""Signing in to the dashboard: who is at the keyboard, and what they may do.

With a users file (``BOT_USERS_FILE``, ``auth.users``) every page asks for a name and password; the
session is a server-side record (``auth.sessions``) named by a signed cookie, so a reload keeps it, a
tampered cookie is refused and recorded, and it expires (8 h, or 30 min unused). Sign-in events go
to the worker as ``auth`` commands (the only thing this process writes is the command stream), which
records them in the audit and counts failed passwords: five in a row lock the user.

Without a users file there is no login; the dashboard then serves 127.0.0.1 only (started with any
other address it refuses to render) and commands go out as ``dashboard``.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import streamlit as st
import streamlit.components.v1 as components

from auth.sessions import COOKIE, SessionBook, load_key
from auth.users import UsersFile, UsersFileError, users_path
from state import auth_store
from state.commands import new_command, post_command
from ui.common import get_redis, redis_url

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True, slots=True)
class Who:
    name: str  # "" without a users file
    role: str  # viewer | operator | live-operator

    @property
    def sender(self) -> str:
        """The ``user`` field of the commands this person sends: the worker checks it against the file."""
        return f"dashboard:{self.name}" if self.name else "dashboard"


@st.cache_resource
def _book() -> SessionBook:
    path = users_path()
    assert path is not None
    return SessionBook(load_key(path.with_name("session.key")))


def _now() -> int:
    return int(time.time() * 1000)


def _event(user: str, event: str, detail: str = "", signed_in: bool = False) -> None:
    """An ``auth`` command: the worker records it (and counts a failed password). ``signed_in``: sent
    as the user themself (a sign-in that succeeded, a sign-out), else as the anonymous dashboard."""
    sender = f"dashboard:{user}" if signed_in else "dashboard"
    try:
        post_command(get_redis(redis_url()), new_command("auth", "bot", user[:64] or "?", user=sender[:64],
                                                         value=event, reason=detail[:300]))
    except Exception:  # noqa: BLE001 - Redis down: the page says so elsewhere; signing in still works
        pass


def _set_cookie(value: str, max_age_s: int) -> None:
    """Store the session cookie in the browser (Streamlit has no response headers to set it in)."""
    js = json.dumps(f"{COOKIE}={value}; Path=/; Max-Age={max_age_s}; SameSite=Strict")
    components.html(f"<script>window.parent.document.cookie = {js};</script>", height=0)


def current() -> Who:
    return st.session_state.get("who") or Who("", "live-operator")


def can_operate() -> bool:
    return current().role in ("operator", "live-operator")


def sender() -> str:
    return current().sender


def gate() -> bool:
    """True when the page may be drawn for this browser; otherwise draws the sign-in form (or why not)."""
    path = users_path()
    if path is None:
        address = str(st.get_option("server.address") or "")
        if address not in LOOPBACK:
            st.error(f"No users file (BOT_USERS_FILE) and the dashboard is bound to {address or 'every address'}: "
                     "refused. Add users with `bot_manager.py user add NAME --role ROLE`, or bind 127.0.0.1.")
            return False
        st.caption("No users file: no login, this dashboard serves 127.0.0.1 only (see docs/going-live.md).")
        st.session_state.pop("who", None)
        return True
    if st.session_state.pop("signed_out", False):
        _set_cookie("", 0)
    book = _book()
    sid = st.session_state.get("sid")
    if sid:
        res = book.touch(sid, _now())
        if res.session is not None:
            return True
        st.session_state.pop("sid", None)
        st.session_state.pop("who", None)
        st.warning(f"Signed out: {res.detail}.")
    else:
        cookie = st.context.cookies.get(COOKIE, "")
        if cookie and not st.session_state.get("cookie_seen") == cookie:
            st.session_state["cookie_seen"] = cookie
            res = book.resolve(cookie, _now())
            if res.session is not None:
                st.session_state["sid"] = res.session.sid
                st.session_state["who"] = Who(res.session.user, res.session.role)
                return True
            if res.problem == "tampered":
                _event("?", "session_refused", res.detail)
                st.error("Your session cookie was refused (it was altered); sign in again.")
            _set_cookie("", 0)
    _form(path)
    return False


def _form(path: object) -> None:
    st.subheader("Sign in")
    with st.form("login", clear_on_submit=True):
        name = st.text_input("User", key="login_user")
        password = st.text_input("Password", type="password", key="login_password")
        sent = st.form_submit_button("Sign in", type="primary")
    if not sent:
        return
    try:
        users = UsersFile(path)  # type: ignore[arg-type]
        locked = auth_store.read(get_redis(redis_url()), name).locked(_now()) if name else False
        user = None if locked else users.authenticate(name.strip(), password)
    except UsersFileError as exc:
        st.error(str(exc))
        return
    if locked:
        _event(name, "login_failed", "user locked after repeated failures")
        st.error(f"{name} is locked after repeated failures; try again later.")
        return
    if user is None:
        _event(name, "login_failed", "wrong user name or password")
        st.error("Wrong user name or password.")
        return
    session, cookie = _book().create(user.name, user.role, _now())
    st.session_state["sid"] = session.sid
    st.session_state["who"] = Who(user.name, user.role)
    st.session_state["cookie_seen"] = cookie
    _set_cookie(cookie, _book().ttl_ms // 1000)
    _event(user.name, "login_ok", f"role {user.role}", signed_in=True)
    st.rerun()


def sign_out() -> None:
    sid = st.session_state.pop("sid", None)
    who = st.session_state.pop("who", None)
    if sid:
        _book().end(sid)
    if who is not None:
        _event(who.name, "logout", signed_in=True)
    st.session_state["signed_out"] = True


def account_bar() -> None:
    """Who is signed in, their role, and Sign out (nothing without a users file)."""
    who = current()
    if not who.name:
        return
    with st.container(key="account", horizontal=True, vertical_alignment="center"):
        st.markdown(f"Signed in as **{who.name}** ({who.role})")
        st.button("Sign out", key="sign_out", on_click=sign_out)
