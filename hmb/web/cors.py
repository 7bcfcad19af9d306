"""CORS for configured origins only; a preflight from any other origin is refused."""

from __future__ import annotations

from aiohttp import hdrs, web

from hmb.errors import Forbidden

EXPOSED = "X-Request-ID, X-Read-Position, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After"
ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Request-ID, X-Read-Position"


def origin_allowed(request: web.Request, origins: tuple[str, ...]) -> bool:
    origin = request.headers.get(hdrs.ORIGIN)
    return origin is not None and origin in origins


def is_preflight(request: web.Request) -> bool:
    return request.method == "OPTIONS" and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers


def preflight(request: web.Request, allowed: bool) -> web.Response:
    if not allowed:
        raise Forbidden("this origin is not allowed")
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": "600",
        },
    )


def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Access-Control-Allow-Origin"] = request.headers["Origin"]
    response.headers["Access-Control-Allow-Credentials"] = "true"
    response.headers["Access-Control-Expose-Headers"] = EXPOSED
    response.headers["Vary"] = "Origin"
