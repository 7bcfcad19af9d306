"""Request parsing and JSON responses: the one way handlers read input and write output."""

from __future__ import annotations

import functools
from typing import Any, TypeVar

import orjson
from aiohttp import hdrs, web
from aiohttp.compression_utils import MAX_SYNC_CHUNK_SIZE
from multidict import CIMultiDict, istr
from pydantic import BaseModel, ValidationError

from hmb.errors import BadRequest, Invalid, NotFound, UnsupportedMediaType

M = TypeVar("M", bound=BaseModel)
JSON = "application/json"
_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def dumps(data: Any) -> bytes:
    return orjson.dumps(data, option=_OPTIONS)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return body_response(dumps(data), status, headers)


def body_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """An already-encoded JSON body: no encoding work at all."""
    if headers is None:
        return EncodedResponse(body, _JSON_HEADERS, status)
    return web.Response(body=body, status=status, content_type=JSON, headers=headers)


def cached_response(body: bytes, level: str) -> web.Response:
    """A body from the cache, with X-Cache saying which level answered (l1, l2, miss, shared, bypass)."""
    return EncodedResponse(body, _CACHED_HEADERS[level])


class EncodedResponse(web.Response):
    """A web.Response of encoded bytes and a prebuilt header map, made without Response.__init__:
    its checks of text, charset and content_type cost ~0.35 µs of a ~0.8 µs response, on every
    JSON answer, and none applies to bytes with their Content-Type among the headers."""

    # What Response.__init__ sets besides; read only if aiohttp compresses the body (hmb gzips its own).
    _zlib_executor_size, _zlib_executor = MAX_SYNC_CHUNK_SIZE, None

    def __init__(self, body: bytes, headers: CIMultiDict[str], status: int = 200):
        web.StreamResponse.__init__(self, status=status, headers=headers)  # copies the map
        self.body = body


# Every response's fixed headers, added by the core (hmb.web.middlewares) to any response made
# without them: OWASP's REST headers (with CSP frame-ancestors) and a Server header naming no
# versions (aiohttp's names Python's and its own).
SECURITY_HEADERS = CIMultiDict((
    (hdrs.X_CONTENT_TYPE_OPTIONS, "nosniff"), (hdrs.X_FRAME_OPTIONS, "DENY"), (istr("Referrer-Policy"), "no-referrer"),
    (hdrs.CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"), (hdrs.SERVER, "hmb"),
))
# JSON responses are made with them: each Response copies one prebuilt map (its keys hashed once),
# cheaper than its content_type=, a dict, or adding the fixed headers one by one afterwards.
_JSON_HEADERS = CIMultiDict((*SECURITY_HEADERS.items(), (hdrs.CONTENT_TYPE, JSON)))
_CACHED_HEADERS = {
    level: CIMultiDict((*_JSON_HEADERS.items(), (istr("X-Cache"), level))) for level in ("l1", "l2", "miss", "shared", "bypass")
}


def with_flag(body: bytes, name: str, value: bool) -> bytes:
    """A cached, caller-independent JSON object encoded with `name` false as its last field (e.g.
    `is_following`), with the caller's own value, without decoding or re-encoding it. False is the
    body itself: a signed-out reader's hit copies nothing."""
    if not value:
        return body
    false_tail, true_tail = _flag_tails(name)
    if not body.endswith(false_tail):  # a loader that put the flag elsewhere: a bug, never the caller's input
        raise ValueError(f"the cached body does not end with {false_tail!r}")
    return body[: -len(false_tail)] + true_tail


@functools.cache
def _flag_tails(name: str) -> tuple[bytes, bytes]:
    """b',"name":false}' and b',"name":true}'."""
    return tuple(b"," + dumps({name: value})[1:] for value in (False, True))


async def parse_body(request: web.Request, model: type[M]) -> M:
    if request.content_type != JSON:
        raise UnsupportedMediaType(f"send the body as {JSON}")
    raw = await request.read()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not valid JSON") from None
    return validate(model, data)


def parse_query(request: web.Request, model: type[M]) -> M:
    # Most reads send no query: their defaults are validated once per model, and the raw
    # path is checked rather than `request.query` (which parses into a MultiDict first).
    if "?" not in request.raw_path or not request.query:
        return _query_defaults(model)
    return validate(model, dict(request.query))


@functools.cache
def _query_defaults(model: type[M]) -> M:
    return validate(model, {})


def validate(model: type[M], data: Any) -> M:
    if not isinstance(data, dict):
        raise Invalid("the body must be a JSON object", {"body": "expected an object"})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Invalid(fields=field_errors(exc)) from None


def field_errors(exc: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for error in exc.errors(include_url=False, include_input=False):
        path = ".".join(str(p) for p in error["loc"]) or "body"
        fields.setdefault(path, error["msg"])
    return fields


def path_id(request: web.Request, name: str = "id") -> int:
    """An integer id from the path; anything else is a 404 (no such resource)."""
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound()
    return int(raw)


def client_ip(request: web.Request, trusted_proxies: tuple[str, ...]) -> str:
    """The caller's address: X-Forwarded-For is believed only when a trusted proxy sent it."""
    peer = request.remote or ""
    forwarded = request.headers.get(hdrs.X_FORWARDED_FOR)
    if not forwarded or peer not in trusted_proxies:
        return peer
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    # Walk back from the nearest hop; the first address not ours is the client.
    for hop in reversed(hops):
        if hop not in trusted_proxies:
            # The client's own text: kept ASCII (a throttle key, a log field; aiohttp decodes a
            # header's non-UTF-8 bytes to lone surrogates, which no encoder takes) and short.
            return (hop if hop.isascii() else hop.encode("ascii", "backslashreplace").decode())[:64]
    return peer
