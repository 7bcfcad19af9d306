"""The error envelope: every failure becomes {"error": {code, message, request_id}}, never a traceback."""

from __future__ import annotations

import logging

from aiohttp import web

from hmb import errors
from hmb.store import pg
from hmb.web.http import json_response

log = logging.getLogger("hmb.web")

STATUS = {
    errors.BadRequest: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.Invalid: 422,
    errors.RateLimited: 429,
    errors.Overloaded: 503,
    errors.Unavailable: 503,
}

# aiohttp's own HTTP exceptions (no route, wrong method, body too big) keep their status.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
}


def envelope(status: int, code: str, message: str, request_id: str, **extra: object) -> web.Response:
    error = {"code": code, "message": message, "request_id": request_id, **extra}
    return json_response({"error": error}, status=status)


def render(exc: BaseException, request: web.Request, request_id: str) -> web.Response:
    """The response for an exception raised by a handler."""
    if isinstance(exc, errors.HmbError):
        return _domain(exc, request_id)
    if isinstance(exc, web.HTTPException):
        return _http(exc, request_id)
    domain = pg.translate(exc)
    if domain is not None:
        return _domain(domain, request_id)
    log.exception("unhandled error", extra={"request_id": request_id, "path": request.path})
    return envelope(500, "internal_error", "something went wrong on our side", request_id)


def _domain(exc: errors.HmbError, request_id: str) -> web.Response:
    status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)
    extra: dict[str, object] = {}
    if isinstance(exc, errors.Invalid):
        extra["fields"] = exc.fields
    elif exc.details:
        extra["details"] = exc.details
    response = envelope(status, exc.code, exc.message, request_id, **extra)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    response.headers.update(getattr(exc, "headers", {}))
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="hmb"'
    return response


def _http(exc: web.HTTPException, request_id: str) -> web.Response:
    status = exc.status
    if status < 400:
        raise exc  # redirects and 204s are answers, not errors
    code = HTTP_CODES.get(status, "error")
    message = exc.reason.lower() if status != 413 else "the request body is too large"
    response = envelope(status, code, message, request_id)
    for header in ("Allow", "Retry-After"):
        if header in exc.headers:
            response.headers[header] = exc.headers[header]
    return response
