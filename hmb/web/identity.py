"""Who is calling: the bearer access token, verified and checked against revoked sessions."""

from __future__ import annotations

from aiohttp import web

from hmb.appkeys import REVOKED, TOKENS
from hmb.errors import Unauthorized
from hmb.security import Principal

_KEY = web.RequestKey("principal", Principal | None)


def caller(request: web.Request) -> Principal:
    """The authenticated caller, or 401."""
    principal = optional_caller(request)
    if principal is None:
        raise Unauthorized("sign in first: send Authorization: Bearer <access token>")
    return principal


def optional_caller(request: web.Request) -> Principal | None:
    if _KEY in request:
        return request[_KEY]
    header = request.headers.get("Authorization")
    principal = None
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("use Authorization: Bearer <access token>")
        principal = request.app[TOKENS].verify_access(token.strip())
        if principal.session_id in request.app[REVOKED]:
            raise Unauthorized("this session has ended; sign in again")
    request[_KEY] = principal
    return principal
