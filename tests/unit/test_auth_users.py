"""Dashboard users (argon2 hashes, roles, 0600 file), TOTP codes (fresh, once, window) and signed
session cookies: the rules of ``auth/`` on their own."""
from __future__ import annotations

import json
import os
import stat

import pyotp
import pytest

from auth import sessions, totp
from auth.users import UsersFile, UsersFileError

PW = "correct horse battery"


def test_add_writes_0600_with_an_argon2_hash_and_never_the_password(tmp_path) -> None:
    f = UsersFile(tmp_path / "sub" / "users.json")
    f.add("alice", "live-operator", PW)
    mode = stat.S_IMODE(os.stat(f.path).st_mode)
    assert mode == 0o600
    body = f.path.read_text()
    assert PW not in body
    assert json.loads(body)["users"]["alice"]["password_hash"].startswith("$argon2id$")
    assert f.authenticate("alice", PW).role == "live-operator"
    assert f.authenticate("alice", PW + "x") is None
    assert f.authenticate("nobody", PW) is None


@pytest.mark.parametrize("name,role,pw,field", [
    ("Alice", "viewer", PW, "user name"), ("bob", "admin", PW, "role"), ("bob", "viewer", "short", "password"),
])
def test_bad_input_names_the_field_and_writes_nothing(tmp_path, name, role, pw, field) -> None:
    f = UsersFile(tmp_path / "users.json")
    with pytest.raises(ValueError, match=field):
        f.add(name, role, pw)
    assert not f.path.exists()


def test_a_users_file_others_can_read_is_refused(tmp_path) -> None:
    f = UsersFile(tmp_path / "users.json")
    f.add("alice", "viewer", PW)
    os.chmod(f.path, 0o644)
    with pytest.raises(UsersFileError, match="chmod 600"):
        f.load()


def test_passwd_role_totp_and_remove(tmp_path) -> None:
    f = UsersFile(tmp_path / "users.json")
    f.add("alice", "operator", PW)
    f.set_password("alice", PW + "!")
    assert f.authenticate("alice", PW) is None and f.authenticate("alice", PW + "!") is not None
    f.set_role("alice", "viewer")
    assert not f.get("alice").can_operate
    secret = totp.new_secret()
    f.enrol_totp("alice", secret)
    assert f.get("alice").totp_secret == secret
    assert "totp_secret" not in f.get("alice").public() and "password_hash" not in f.get("alice").public()
    with pytest.raises(UsersFileError, match="exists already"):
        f.add("alice", "viewer", PW)
    f.remove("alice")
    assert f.get("alice") is None


def test_totp_fresh_once_window_and_expired() -> None:
    secret = totp.new_secret()
    now = 1_800_000_000.0
    code = pyotp.TOTP(secret).at(now)
    ok = totp.check(secret, code, None, now)
    assert ok.ok and ok.step == totp.step_of(now)
    again = totp.check(secret, code, ok.step, now + 1)
    assert not again.ok and "already used" in again.reason
    assert totp.check(secret, pyotp.TOTP(secret).at(now - 30), None, now).ok  # one step of drift
    old = totp.check(secret, pyotp.TOTP(secret).at(now - 120), None, now)
    assert not old.ok and "expired" in old.reason
    wrong = totp.check(secret, "000000" if code != "000000" else "111111", None, now)
    assert not wrong.ok and wrong.reason == "wrong code"
    assert "6 digits" in totp.check(secret, "12ab", None, now).reason


def test_qr_is_a_png() -> None:
    uri = totp.provisioning_uri(totp.new_secret(), "alice")
    assert uri.startswith("otpauth://totp/")
    assert totp.qr_png(uri)[:8] == b"\x89PNG\r\n\x1a\n"


def test_session_cookie_tampered_expired_idle(tmp_path) -> None:
    key = sessions.load_key(tmp_path / "session.key")
    assert stat.S_IMODE(os.stat(tmp_path / "session.key").st_mode) == 0o600
    book = sessions.SessionBook(key, ttl_s=100, idle_s=10)
    s, cookie = book.create("alice", "operator", 0)
    assert book.resolve(cookie, 5_000).session is s
    sid, _, sig = cookie.partition(".")
    assert book.resolve(f"{sid}.{sig[:-1]}{'A' if sig[-1] != 'A' else 'B'}", 5_000).problem == "tampered"
    assert book.resolve(f"{sid[:-1]}x.{sig}", 5_000).problem == "tampered"
    assert book.resolve("garbage", 5_000).problem == "tampered"
    assert book.resolve(cookie, 16_000).problem == "expired"  # idle > 10 s
    s2, c2 = book.create("bob", "viewer", 0)
    for t in range(9_000, 100_000, 9_000):
        assert book.resolve(c2, t).session is s2
    assert book.resolve(c2, 101_000).problem == "expired"  # older than the TTL
    other = sessions.SessionBook(sessions.load_key(tmp_path / "other.key"))
    assert other.resolve(c2, 0).problem == "tampered"  # signed with another key
