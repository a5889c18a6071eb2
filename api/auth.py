"""Bearer-token authentication and scopes.

Tokens are kept as SHA-256 digests only and compared in constant time. A request without a valid
token gets 401; a valid token without the scope a route needs gets 403. Either way the route does
not run, so nothing is posted.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Callable

from fastapi import HTTPException, Request

from api.settings import Scope, TokenEntry

_RANK = {"read": 0, "operator": 1}


@dataclass(frozen=True, slots=True)
class Caller:
    name: str
    scope: Scope

    @property
    def user(self) -> str:
        """Who the audit says sent a command."""
        return f"api:{self.name}"


class TokenStore:
    def __init__(self, entries: list[TokenEntry]) -> None:
        self._entries = list(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def identify(self, token: str) -> Caller | None:
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for e in self._entries:  # every entry is compared: the time does not tell which matched
            if hmac.compare_digest(digest, e.digest):
                found = Caller(e.name, e.scope)
        return found


def _unauthorized(why: str) -> HTTPException:
    return HTTPException(401, why, headers={"WWW-Authenticate": "Bearer"})


def require(scope: Scope) -> Callable[[Request], Caller]:
    """A FastAPI dependency: the caller, if its token is valid and has ``scope`` (or more)."""

    def dependency(request: Request) -> Caller:
        header = request.headers.get("authorization", "")
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise _unauthorized("missing or malformed Authorization header: send 'Authorization: Bearer <token>'")
        caller = request.app.state.tokens.identify(token.strip())
        if caller is None:
            raise _unauthorized("unknown token")
        request.state.caller = caller  # for the access log
        if _RANK[caller.scope] < _RANK[scope]:
            raise HTTPException(403, f"token {caller.name!r} has scope {caller.scope!r}; this needs {scope!r}")
        return caller

    return dependency


read_scope = require("read")
operator_scope = require("operator")
