"""The one middleware: request id and timing, admission, errors, read-your-writes, headers, CORS, log."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable
from time import perf_counter

from aiohttp import hdrs, web
from multidict import istr

from hmb.appkeys import ACCESS_LOG, CORE, LIFECYCLE, SETTINGS, TOKENS
from hmb.errors import Overloaded, PayloadTooLarge
from hmb.store.cache import Cache
from hmb.store.router import read_floor, served_by, written_lsn
from hmb.web import compression, cors, errors
from hmb.web.cached import PublicRead
from hmb.web.http import SECURITY_HEADERS, cached_response, client_ip
from hmb.web.meta import CRITICAL, NORMAL, SHEDDABLE, Handler, Route
from hmb.web.paths import LastSegmentResource

# Header names are istr, as aiohttp's own: a plain str name is lowercased and hashed anew
# each time it is added to a response (~0.5 µs for a response's eight).
REQUEST_ID_HEADER = istr("X-Request-ID")
READ_POSITION = istr("X-Read-Position")  # API clients echo it back; browsers get the cookie
READ_COOKIE = "hmb_rp"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
# HSTS only where the caller's connection was HTTPS (RFC 6797 §7.2: never over plain HTTP). TLS ends
# at the platform's proxy, which says so in X-Forwarded-Proto; a forged one only earns an HTTP
# client a header its browser must ignore.
_HSTS = "max-age=63072000; includeSubDomains"
_DB_ROUTE = istr("X-DB-Route")
_PROCESS_TIME = istr("X-Process-Time")


class Core:
    """Wraps every route's handler: request id, timing, admission, error envelope, headers, one log line.

    It is hmb's one middleware, applied when routes are added rather than through aiohttp's
    middleware chain, which costs ~1.8 µs a request (a partial per layer and a current-app
    layer) of a ~30 µs /health. The app's parts and each route's declaration are bound here
    once: on this path an `app[...]` or a route-name lookup costs as much as the work itself.
    """

    def __init__(self, app: web.Application):
        self.app = app
        self._resources: dict[str, web.Resource] = {}
        self.names: dict[web.AbstractRoute, str] = {}
        self.fallback: web.AbstractResource | None = None  # add_fallback's catch-all
        self.cache: Cache | None = None  # set once the cache is open (hmb.app)
        self.gzip = compression.GzipMemo()

    def add(self, router: web.UrlDispatcher, routes: Iterable[Route]) -> None:
        """One resource per path, holding each method's route: aiohttp tries a path's resources
        in turn, so a resource per route made GET /api/jobs/{id} try three before it matched.

        Paths with a variable are added first. aiohttp looks a path up whole, then by ever
        shorter prefixes, trying in order the resources filed under each: /api/jobs/7 finds
        /api/jobs/{id} filed under /api/jobs beside the list /api/jobs, which cannot match it
        (and a fixed path like /api/users/me is found whole, before any variable one). Detail
        reads, the most frequent, then skip a failed try; a list read pays one failed match.
        """
        for route in sorted(routes, key=lambda r: "{" not in r.path):  # stable: the table's order otherwise
            resource = self._resources.get(route.path)
            if resource is None:
                resource = LastSegmentResource.of(route.path)
                if resource is None:
                    resource = router.add_resource(route.path)
                else:
                    router.register_resource(resource)
                self._resources[route.path] = resource
            aio_route = resource.add_route(route.method, self.wrap(route, route.handler))
            self.names[aio_route] = route.name

    def route_name(self, request: web.Request) -> str | None:
        """The declared name of the route that matched (hmb.web.routes), e.g. "jobs.get"."""
        return self.names.get(request.match_info.route)

    def add_fallback(self, router: web.UrlDispatcher) -> None:
        """Every other path or method: 404 or 405, in the envelope, through the same wrapper."""
        fallback = router.add_route("*", "/{unmatched:.*}", self.wrap(None, _unmatched))
        self.fallback = fallback.resource

    def wrap(self, route: Route | None, handler: Handler) -> Handler:
        """`handler` inside the core; `route` is its declaration (None: the fallback)."""
        app = self.app
        settings = app[SETTINGS]
        web_settings = settings.web
        life, access, tokens, gzip = app[LIFECYCLE], app[ACCESS_LOG], app[TOKENS], self.gzip
        production = settings.production
        cors_origins, trusted = web_settings.cors_origins, web_settings.trusted_proxies
        retry_after = web_settings.retry_after_s
        # The route's own facts, read once.
        name = route.name if route else None
        priority = route.priority if route else SHEDDABLE
        limit = web_settings.max_in_flight + {CRITICAL: 1, NORMAL: 0, SHEDDABLE: -1}[priority] * web_settings.shed_reserve
        max_body = None if route and route.streams_body else app._client_max_size  # uploads check their own
        long_lived = bool(route and route.long_lived)
        issues_tokens = bool(route and route.tag == "auth")
        # A public read's fresh L1 copy is answered here, before its handler (hmb.web.cached).
        key_for = handler.key_for if isinstance(handler, PublicRead) else None

        async def serve(request: web.Request) -> web.StreamResponse:
            started = perf_counter()
            headers = request.headers
            incoming = headers.get(REQUEST_ID_HEADER)
            request_id = incoming if incoming and _SANE_ID.match(incoming) else new_request_id()
            # aiohttp runs each request in a task of its own, on a copy of the connection's context
            # (aiohttp #3406): a variable this request does not set is at its default, never at a
            # previous request's value. So only what differs is set (a set costs ~0.1 µs).
            served: list[str] = []
            served_by.set(served)
            if (floor := _read_position(headers, request, tokens)) is not None:
                read_floor.set(floor)
            has_origin = hdrs.ORIGIN in headers
            origin_allowed = has_origin and cors.origin_allowed(request, cors_origins)
            # In flight is a plain int: the metrics gauge is set from it when sampled, not on every request.
            life.in_flight += 1
            counted = True
            try:
                if has_origin and cors.is_preflight(request):  # a preflight always names its origin
                    response = cors.preflight(request, origin_allowed)
                else:
                    if life.in_flight > limit:
                        raise Overloaded(retry_after=retry_after)
                    # The header, not request.content_length: the parser has checked it is a number.
                    if max_body is not None and (length := headers.get(hdrs.CONTENT_LENGTH)) and int(length) > max_body:
                        raise PayloadTooLarge("the request body is too large")
                    if long_lived:
                        # An open WebSocket is admitted like any request, then is no request in flight.
                        counted = False
                        life.in_flight -= 1
                    if key_for is not None and (body := self.cache.l1_hit(key_for(request))) is not None:
                        response = cached_response(body, "l1")
                    else:
                        response = await handler(request)
            except Exception as exc:  # noqa: BLE001 - every failure gets the envelope
                response = errors.render(exc, request, request_id)
            finally:
                if counted:
                    life.in_flight -= 1
            db = ", ".join(served) or None
            if response.prepared:  # a stream or a WebSocket, sent already: its time is its whole life
                elapsed = perf_counter() - started
            else:
                if origin_allowed:
                    cors.add_headers(request, response)
                out = response.headers
                if hdrs.SERVER not in out:  # JSON responses are made with them (hmb.web.http)
                    out.extend(SECURITY_HEADERS)
                out.add(REQUEST_ID_HEADER, request_id)
                if production and (headers.get(hdrs.X_FORWARDED_PROTO) == "https" or request.scheme == "https"):
                    out.add(hdrs.STRICT_TRANSPORT_SECURITY, _HSTS)
                if not production:
                    out.add(_DB_ROUTE, db or "none")
                # Authenticated answers and the ones carrying tokens (register, login, refresh: RFC 6749 §5.1).
                if issues_tokens or hdrs.AUTHORIZATION in headers:
                    out[hdrs.CACHE_CONTROL] = "no-store"
                lsn = written_lsn.get()
                if lsn is not None:
                    position = tokens.sign(f"{lsn:x}")
                    out.add(READ_POSITION, position)
                    response.set_cookie(READ_COOKIE, position, max_age=300, httponly=True, samesite="Lax",
                                        secure=production)
                if (
                    (accepted := headers.get(hdrs.ACCEPT_ENCODING))
                    and "gzip" in accepted
                    and isinstance(response, web.Response)
                    and isinstance(body := response.body, bytes)
                    and len(body) > compression.MIN_BYTES
                    and hdrs.CONTENT_ENCODING not in out
                ):
                    response.body = gzip.get(body)
                    out.add(hdrs.CONTENT_ENCODING, "gzip")
                    out.add(hdrs.VARY, "Accept-Encoding")
                # The same figure in the header and the log line, so a caller's report finds its line.
                elapsed = perf_counter() - started
                out.add(_PROCESS_TIME, _process_time(elapsed))
                if life.draining:
                    # Hand no connection back to the balancer's idle pool while draining: one it reused
                    # just as this worker closed it at exit would answer nothing (a 502 or a reset).
                    response.force_close()
            status = response.status
            # Logged (when the log is on) and counted in the metrics, in batches.
            access.request(request_id, request.method, request.raw_path, name, status, elapsed, db,
                           client_ip(request, trusted))
            return response

        return serve


async def _unmatched(request: web.Request) -> web.StreamResponse:
    """No route has this path (404), or none has it with this method (405, with Allow)."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is not request.app[CORE].fallback:
            allowed |= (await resource.resolve(request))[1]
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


def new_request_id() -> str:
    """32 hex digits, unique per process: a random prefix and a counter (uuid4 reads urandom each time)."""
    return _id_template % next(_id_counter)


def _new_id_prefix() -> None:
    global _id_template, _id_counter
    _id_template, _id_counter = os.urandom(8).hex() + "%016x", itertools.count()


_id_template, _id_counter = "", itertools.count()
_new_id_prefix()
os.register_at_fork(after_in_child=_new_id_prefix)  # forked workers must not share a prefix


_PROCESS_TIMES = [f"{n / 100:.2f}ms" for n in range(1000)]  # below 10 ms: formatted once


def _process_time(seconds: float) -> str:
    n = int(seconds * 100_000)  # in 10 µs, cut as the log line's ms (hmb.logs): the two always agree
    return _PROCESS_TIMES[n] if n < 1000 else f"{n / 100:.2f}ms"


def _read_position(headers, request: web.Request, tokens) -> int | None:
    """The furthest write position the caller has seen: the header API clients echo, or the cookie."""
    header = headers.get(READ_POSITION)
    # Parsing the Cookie header is costly: only when our cookie is in it.
    cookie = request.cookies.get(READ_COOKIE) if READ_COOKIE in headers.get(hdrs.COOKIE, "") else None
    if not header and not cookie:
        return None
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
