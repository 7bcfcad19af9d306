"""The one middleware: request id and timing, admission, errors, read-your-writes, headers, CORS."""

from __future__ import annotations

import itertools
import os
import re
import time

from aiohttp import web

from hmb.appkeys import ACCESS_LOG, LIFECYCLE, METRICS, ROUTES, SETTINGS, TOKENS
from hmb.errors import Overloaded, PayloadTooLarge
from hmb.store.router import read_floor, served_by, written_lsn
from hmb.web import cors, errors
from hmb.web.http import client_ip
from hmb.web.meta import CRITICAL, SHEDDABLE

REQUEST_ID_HEADER = "X-Request-ID"
READ_POSITION = "X-Read-Position"  # API clients echo it back; browsers get the cookie
READ_COOKIE = "hmb_rp"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
_SECURITY_HEADERS = (("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer"))
_PRODUCTION_HEADERS = (*_SECURITY_HEADERS, ("Strict-Transport-Security", "max-age=63072000; includeSubDomains"))


@web.middleware
async def core(request: web.Request, handler) -> web.StreamResponse:
    """Everything each request needs once: id, timing, admission, error envelope, headers, one log line."""
    started = time.perf_counter()
    app = request.app
    settings = app[SETTINGS]
    life = app[LIFECYCLE]
    incoming = request.headers.get(REQUEST_ID_HEADER)
    request_id = incoming if incoming and _SANE_ID.match(incoming) else new_request_id()
    served: list[str] = []
    served_by.set(served)
    written_lsn.set(None)
    read_floor.set(_read_position(request))
    route = app[ROUTES].get(request.match_info.route.name or "")
    origin_allowed = "Origin" in request.headers and cors.origin_allowed(request, settings.web.cors_origins)
    # In flight is a plain int: the metrics gauge is set from it when sampled, not on every request.
    life.in_flight += 1
    counted = True
    try:
        if cors.is_preflight(request):
            response = cors.preflight(request, origin_allowed)
        else:
            _admit(request, route, life.in_flight, settings.web)
            if route is not None and route.long_lived:
                # An open WebSocket is admitted like any request, then is no request in flight.
                counted = False
                life.in_flight -= 1
            response = await handler(request)
    except Exception as exc:  # noqa: BLE001 - every failure gets the envelope
        response = errors.render(exc, request, request_id)
    finally:
        if counted:
            life.in_flight -= 1
    if not response.prepared:
        if origin_allowed:
            cors.add_headers(request, response)
        _finish_headers(request, response, route, served, settings, request_id, started)
        if life.draining:
            # Hand no connection back to the balancer's idle pool while draining: one it reused
            # just as this worker closed it at exit would answer nothing (a 502 or a reset).
            response.force_close()
    route_name = route.name if route else None
    status = response.status
    elapsed = time.perf_counter() - started
    access = app[ACCESS_LOG]
    if access.enabled:
        access.log({
            "request_id": request_id,
            "method": request.method,
            "path": request.raw_path.partition("?")[0],  # as sent; the query may hold personal data
            "route": route_name,
            "status": status,
            "ms": round(elapsed * 1000, 2),
            "db": ", ".join(served) or None,
            "remote": client_ip(request, settings.web.trusted_proxies),
        })
    app[METRICS].finished(route_name, request.method, status, elapsed)
    return response


def new_request_id() -> str:
    """32 hex digits, unique per process: a random prefix and a counter (uuid4 reads urandom each time)."""
    return f"{_id_prefix}{next(_id_counter):016x}"


def _new_id_prefix() -> None:
    global _id_prefix, _id_counter
    _id_prefix, _id_counter = os.urandom(8).hex(), itertools.count()


_id_prefix, _id_counter = "", itertools.count()
_new_id_prefix()
os.register_at_fork(after_in_child=_new_id_prefix)  # forked workers must not share a prefix


def _admit(request: web.Request, route, in_flight: int, web_settings) -> None:
    limit = web_settings.max_in_flight
    priority = route.priority if route else SHEDDABLE
    if priority == CRITICAL:
        limit += web_settings.shed_reserve
    elif priority == SHEDDABLE:
        limit -= web_settings.shed_reserve
    if in_flight > limit:
        raise Overloaded(retry_after=web_settings.retry_after_s)
    length = request.content_length
    streams = route is not None and route.streams_body  # uploads check their own, larger limits
    if length is not None and length > request.app._client_max_size and not streams:
        raise PayloadTooLarge("the request body is too large")


def _read_position(request: web.Request) -> int | None:
    """The furthest write position the caller has seen: the header API clients echo, or the cookie."""
    headers = request.headers
    header = headers.get(READ_POSITION)
    # Parsing the Cookie header is costly: only when our cookie is in it.
    cookie = request.cookies.get(READ_COOKIE) if READ_COOKIE in headers.get("Cookie", "") else None
    if not header and not cookie:
        return None
    tokens = request.app[TOKENS]
    positions = [_unsigned_position(tokens, signed) for signed in (header, cookie) if signed]
    return max((p for p in positions if p is not None), default=None)


def _unsigned_position(tokens, signed: str) -> int | None:
    value = tokens.unsign(signed)
    if value is None:
        return None  # a forged or stale-key position is ignored, never trusted
    try:
        return int(value, 16)
    except ValueError:
        return None


def _finish_headers(request, response, route, served, settings, request_id, started) -> None:
    headers = response.headers
    headers[REQUEST_ID_HEADER] = request_id
    headers.extend(_PRODUCTION_HEADERS if settings.production else _SECURITY_HEADERS)
    headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")  # pages like /docs set their own
    if not settings.production:
        headers["X-DB-Route"] = ", ".join(served) or "none"
    # Authenticated answers and the ones carrying tokens (register, login, refresh: RFC 6749 §5.1).
    if "Authorization" in request.headers or (route is not None and route.tag == "auth"):
        headers["Cache-Control"] = "no-store"
    lsn = written_lsn.get()
    if lsn is not None:
        position = request.app[TOKENS].sign(f"{lsn:x}")
        headers[READ_POSITION] = position
        response.set_cookie(
            READ_COOKIE, position, max_age=300, httponly=True, samesite="Lax", secure=settings.production
        )
    if (
        isinstance(response, web.Response)
        and response.body is not None
        and len(response.body) > 1024
        and "gzip" in request.headers.get("Accept-Encoding", "")
    ):
        response.enable_compression(web.ContentCoding.gzip)
    headers["X-Process-Time"] = f"{(time.perf_counter() - started) * 1000:.2f}ms"
