"""Route metadata: one declaration per route feeds routing, admission, auth and OpenAPI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Under pressure, sheddable reads are refused first and critical writes last (DESIGN §6).
CRITICAL, NORMAL, SHEDDABLE = "critical", "normal", "sheddable"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    name: str
    summary: str
    status: int = 200
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    auth: bool = False
    priority: str = NORMAL
    idempotent: bool = False  # a create that honours Idempotency-Key
    rate_limited: bool = False
    long_lived: bool = False  # a WebSocket: not counted as in flight once admitted
    body_type: str = "application/json"  # the request body's media type in OpenAPI
    response_type: str = "application/json"  # the success answer's media type in OpenAPI
    streams_body: bool = False  # the handler streams its body and enforces its own size limit
    description: str = ""
    tag: str = ""
