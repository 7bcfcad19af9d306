"""Per-minute rate limits for routes: 429 with Retry-After and X-RateLimit-* past the limit."""

from __future__ import annotations

from aiohttp import web

from hmb.appkeys import LIMITER
from hmb.errors import RateLimited
from hmb.store.ratelimit import Verdict


async def throttle(request: web.Request, scope: str, subject: str, limit: int, message: str) -> Verdict:
    """Count this request against `scope`/`subject`; the verdict's headers go on the answer."""
    verdict = await request.app[LIMITER].hit(scope, subject, limit)
    if not verdict.allowed:
        raise RateLimited(verdict.reset_s, message, verdict.headers())
    return verdict
