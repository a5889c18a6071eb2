"""TOTP two-factor codes (RFC 6238 through pyotp: 6 digits, 30 s steps, SHA-1, what every
authenticator app speaks) and the enrolment QR code (segno).

A code is accepted for its own 30 s step and one step either side (clock drift), and only once: a
step at or before the user's last accepted step is refused as reused. The caller keeps that last step
(the worker, in Redis: it is not a secret) and counts failures; the secret itself stays in the users
file.
"""
from __future__ import annotations

import hmac
import io
import time
from dataclasses import dataclass

import pyotp
import segno

STEP_S = 30
DIGITS = 6
WINDOW = 1  # steps accepted either side of now
EXPIRED_LOOKBACK = 20  # an older code than the window, within this many steps, is called expired, not wrong
ISSUER = "Trading bot"


def new_secret() -> str:
    """A fresh base32 secret (160 bits)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, user: str, issuer: str = ISSUER) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user, issuer_name=issuer)


def qr_png(uri: str, scale: int = 6) -> bytes:
    """The ``otpauth://`` URI as a PNG QR code, for the dashboard's enrolment."""
    buf = io.BytesIO()
    segno.make(uri, error="m").save(buf, kind="png", scale=scale, border=2)
    return buf.getvalue()


def qr_terminal(uri: str) -> str:
    """The same QR code drawn with block characters, for ``bot_manager.py user totp``."""
    buf = io.StringIO()
    segno.make(uri, error="m").terminal(out=buf, compact=True)
    return buf.getvalue()


@dataclass(frozen=True, slots=True)
class CodeCheck:
    ok: bool
    step: int | None  # the step the code belongs to (when it matched one)
    reason: str  # why it was refused ("" when ok)


def step_of(now_s: float) -> int:
    return int(now_s // STEP_S)


def check(secret: str, code: str, last_step: int | None, now_s: float | None = None) -> CodeCheck:
    """Is ``code`` a fresh, valid code of ``secret`` at ``now_s``? ``last_step``: the step of the
    user's last accepted code (a code of that step or an earlier one is reused)."""
    now_s = time.time() if now_s is None else now_s
    code = code.strip()
    if len(code) != DIGITS or not code.isdigit():
        return CodeCheck(False, None, f"the code must be {DIGITS} digits")
    totp = pyotp.TOTP(secret)
    here = step_of(now_s)
    for off in (0, -1, 1) + tuple(range(-2, -EXPIRED_LOOKBACK - 1, -1)):
        if hmac.compare_digest(totp.at(now_s, counter_offset=off), code):
            step = here + off
            if abs(off) > WINDOW:
                return CodeCheck(False, step, f"expired code (from about {-off * STEP_S} s ago)")
            if last_step is not None and step <= last_step:
                return CodeCheck(False, step, "code already used: wait for the next one")
            return CodeCheck(True, step, "")
    return CodeCheck(False, None, "wrong code")


def code_at(secret: str, now_s: float) -> str:
    """The code of ``secret`` at ``now_s`` (the CLI's self-check; tests compute codes the same way)."""
    return pyotp.TOTP(secret).at(now_s)
