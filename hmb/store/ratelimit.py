"""Fixed-window rate limits in Redis, with a per-worker fallback while Redis is down."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from hmb.store import cache_keys
from hmb.store.redis import Redis, RedisDown, Script

LOCAL_MAX_KEYS = 50_000


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # seconds until the window resets

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_s),
        }


class RateLimiter:
    def __init__(self, redis: Redis):
        self.redis = redis
        # Used only while Redis is unreachable: weaker (per worker) but never wide open.
        self._local: OrderedDict[str, int] = OrderedDict()

    async def hit(self, scope: str, subject: str, limit: int, window_s: int = 60) -> Verdict:
        now = time.time()
        window = int(now // window_s)
        reset_s = max(1, int((window + 1) * window_s - now))
        key = cache_keys.rate_limit(scope, subject, window)
        try:
            count = int(await self.redis.run_script(_INCR_WITH_TTL, [key], window_s + 1))
        except RedisDown:
            count = self._local_incr(key)
        remaining = max(0, limit - count)
        return Verdict(count <= limit, limit, remaining, reset_s)

    async def reset(self, scope: str, subject: str, window_s: int = 60) -> None:
        key = cache_keys.rate_limit(scope, subject, int(time.time() // window_s))
        self._local.pop(key, None)
        try:
            await self.redis.call(lambda r: r.delete(key))
        except RedisDown:
            pass

    def _local_incr(self, key: str) -> int:
        count = self._local.get(key, 0) + 1
        self._local[key] = count
        self._local.move_to_end(key)
        while len(self._local) > LOCAL_MAX_KEYS:
            self._local.popitem(last=False)
        return count


# INCR and EXPIRE, atomically, as one command (a MULTI/EXEC pipeline is four).
_INCR_WITH_TTL = Script("""
local count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return count
""")
