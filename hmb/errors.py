"""Domain errors: what went wrong, with no HTTP knowledge (hmb.web.errors renders them)."""

from __future__ import annotations


class HmbError(Exception):
    code = "error"

    def __init__(self, message: str = "", **details: object):
        super().__init__(message or self.code)
        self.message = message or self.code.replace("_", " ")
        self.details = details


class BadRequest(HmbError):
    code = "bad_request"


class Unauthorized(HmbError):
    code = "unauthorized"


class Forbidden(HmbError):
    code = "forbidden"


class NotFound(HmbError):
    code = "not_found"


class Conflict(HmbError):
    code = "conflict"


class PayloadTooLarge(HmbError):
    code = "payload_too_large"


class UnsupportedMediaType(HmbError):
    code = "unsupported_media_type"


class Invalid(HmbError):
    """Validation failed; `fields` maps a field path to its problem."""

    code = "validation_failed"

    def __init__(self, message: str = "request validation failed", fields: dict[str, str] | None = None):
        super().__init__(message)
        self.fields = fields or {}


class RateLimited(HmbError):
    code = "rate_limited"

    def __init__(self, retry_after: int, message: str = "too many requests", headers: dict[str, str] | None = None):
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))
        self.headers = headers or {}


class Overloaded(HmbError):
    """Shed load: no capacity right now; the client should retry shortly."""

    code = "overloaded"

    def __init__(self, message: str = "the service is busy, retry shortly", retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(Overloaded):
    """A dependency the request needs is down."""

    code = "unavailable"
