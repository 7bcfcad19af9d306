"""Who is calling: the bearer access token, verified and checked against revoked sessions."""

from __future__ import annotations

from aiohttp import hdrs, web

from hmb.appkeys import REVOKED, TOKENS
from hmb.errors import Unauthorized
from hmb.security import Principal, Tokens
from hmb.store.revocations import RevokedSessions


def caller(request: web.Request) -> Principal:
    """The authenticated caller, or 401."""
    principal = optional_caller(request)
    if principal is None:
        raise Unauthorized("sign in first: send Authorization: Bearer <access token>")
    return principal


def optional_caller(request: web.Request) -> Principal | None:
    """The caller, None without an Authorization header, or 401 for a header that cannot be trusted.

    Asked by the handler, not by the core for every request: a route that never asks (a probe,
    trending) answers as if no header had been sent. Not remembered on the request: a verified
    token is a dict lookup (Tokens.verify_access), and remembering costs more (a missing request
    key is a KeyError inside Mapping.__contains__)."""
    header = request.headers.get(hdrs.AUTHORIZATION)
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("use Authorization: Bearer <access token>")
    app = request.app
    return verified(token, app[TOKENS], app[REVOKED])


def verified(token: str, tokens: Tokens, revoked: RevokedSessions) -> Principal:
    """The caller an access token names, or 401: it is forged, expired, or of an ended session.
    The one check, for the Authorization header and for a WebSocket's first frame alike."""
    principal = tokens.verify_access(token)
    if principal.session_id in revoked:
        raise Unauthorized("this session has ended; sign in again")
    return principal
