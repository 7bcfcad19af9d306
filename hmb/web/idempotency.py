"""Creates that honour Idempotency-Key: a retry by the same user returns the first response."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from hmb.appkeys import CORE, DB
from hmb.errors import BadRequest, Invalid
from hmb.security import Principal
from hmb.store import idempotency
from hmb.store.router import Write
from hmb.web.http import body_response, dumps

HEADER = "Idempotency-Key"
_SANE_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


async def create_once(
    request: web.Request,
    principal: Principal,
    create: Callable[[Write], Awaitable[Any]],
    status: int = 201,
    fingerprint: bytes | None = None,
    one_statement: bool = False,
) -> web.Response:
    """Run `create(write)` in one transaction and answer its result as JSON.

    With an Idempotency-Key, the key, the create and the stored response commit
    together. `fingerprint` identifies the request (default: method, route and body).
    `one_statement`: `create` runs a single statement, so without a key it needs no transaction.
    """
    db = request.app[DB]
    key = request.headers.get(HEADER)
    if key is None:
        async with db.write(transaction=not one_statement) as w:
            data = await create(w)
        return body_response(dumps(data), status)
    if not _SANE_KEY.match(key):
        raise BadRequest(f"{HEADER} must be 1-255 printable ASCII characters")
    route = request.app[CORE].route_name(request) or request.path
    if fingerprint is None:
        fingerprint = hashlib.sha256(request.method.encode() + b" " + route.encode() + b"\n" + await request.read()).digest()
    async with db.write() as w:
        prior = await idempotency.claim(w.conn, principal.user_id, key, route, fingerprint)
        if prior is None:
            body = dumps(await create(w))
            await idempotency.record(w.conn, principal.user_id, key, status, body)
    if prior is None:
        return body_response(body, status)
    if prior["route"] != route or bytes(prior["request_hash"]) != fingerprint:
        raise Invalid(f"this {HEADER} was already used for a different request", {HEADER: "reused with another request"})
    return body_response(bytes(prior["body"]), prior["status"], headers={"Idempotent-Replayed": "true"})
