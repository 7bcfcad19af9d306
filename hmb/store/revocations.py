"""Revoked login sessions, known to every worker at once so access tokens die with them.

Signed access tokens cannot be recalled, so each worker keeps the set of revoked
session ids in memory: the worker that revokes adds it before answering, Redis
pub/sub tells every other worker within milliseconds, and a once-a-second poll
of Postgres covers a missed message or a Redis outage. Checking a token costs
a set lookup, no round trip.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta, timezone

from hmb.store import cache_keys, pg, sessions
from hmb.store.redis import Redis, RedisDown
from hmb.store.router import Databases

log = logging.getLogger("hmb.auth")
PREFIX = cache_keys.revoked_session(0)[:-1]
OVERLAP = timedelta(seconds=30)


class RevokedSessions:
    def __init__(self, access_ttl_s: int):
        self.access_ttl_s = access_ttl_s
        self._until: dict[int, float] = {}  # session id -> when its last access token expires

    def __contains__(self, session_id: int) -> bool:
        return session_id in self._until

    def add(self, session_id: int) -> None:
        self._until[session_id] = time.time() + self.access_ttl_s

    def on_broadcast(self, names: list[str]) -> None:
        for name in names:
            if name.startswith(PREFIX):
                self.add(int(name[len(PREFIX) :]))

    async def announce(self, redis: Redis, session_id: int) -> None:
        self.add(session_id)
        try:
            await redis.call(lambda r: r.publish(cache_keys.INVALIDATION_CHANNEL, cache_keys.revoked_session(session_id)))
        except RedisDown:
            pass  # the other workers' poll of Postgres catches it within a second

    async def poll(self, db: Databases, interval_s: float = 1.0) -> None:
        """Follow revocations in Postgres for the worker's life."""
        since = datetime.now(timezone.utc) - timedelta(seconds=self.access_ttl_s)
        while True:
            try:
                # Overlap the window: now() is each transaction's start, so commits land out of order.
                for row in await db.strong_read(sessions.revoked_since, since - OVERLAP):
                    self.add(row["id"])
                    since = max(since, row["revoked_at"])
            except Exception as exc:  # noqa: BLE001 - the poll must outlive any outage
                if pg.translate(exc) is None:
                    log.exception("revocation poll failed")
            self._forget_expired()
            await asyncio.sleep(interval_s)

    def _forget_expired(self) -> None:
        now = time.time()
        for session_id in [s for s, until in self._until.items() if until < now]:
            del self._until[session_id]
