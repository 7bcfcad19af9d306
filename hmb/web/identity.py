"""Who is calling: the bearer access token, verified and checked against revoked sessions.

The core (hmb.web.middlewares) reads a request's Authorization header once, before its handler
runs, and leaves the outcome in a context variable: the caller, or why the header cannot be
trusted. Each request runs in its own task on a copy of the connection's context, so one request's
caller is never the next one's. A handler asks with `caller` or `optional_caller`; a route that
never asks answers as if no header had been sent, so a stale token breaks only what needs it.
"""

from __future__ import annotations

from contextvars import ContextVar

from aiohttp import web

from hmb.errors import Unauthorized
from hmb.security import Principal, Tokens
from hmb.store.revocations import RevokedSessions

# This request's caller, or the 401's message when its header cannot be trusted; None: no header.
_caller: ContextVar[Principal | str | None] = ContextVar("hmb_caller", default=None)


def authenticate(header: str, tokens: Tokens, revoked: RevokedSessions) -> None:
    """The core's step, for a request with a non-empty Authorization header."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        _caller.set("use Authorization: Bearer <access token>")
        return
    try:
        _caller.set(verified(token, tokens, revoked))
    except Unauthorized as exc:
        _caller.set(exc.message)


def verified(token: str, tokens: Tokens, revoked: RevokedSessions) -> Principal:
    """The caller an access token names, or 401: it is forged, expired, or of an ended session."""
    principal = tokens.verify_access(token)
    if principal.session_id in revoked:
        raise Unauthorized("this session has ended; sign in again")
    return principal


def caller(request: web.Request) -> Principal:
    """The authenticated caller of `request` (the one this task serves), or 401."""
    found = _caller.get()
    if type(found) is Principal:
        return found
    raise Unauthorized(found or "sign in first: send Authorization: Bearer <access token>")


def optional_caller(request: web.Request) -> Principal | None:
    """The caller of `request`, None when it sent no Authorization header, or 401 for one that
    cannot be trusted (a reader who meant to sign in should hear so, not see a signed-out view)."""
    found = _caller.get()
    if type(found) is str:
        raise Unauthorized(found)
    return found
