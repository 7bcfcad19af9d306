"""Invalidation: a committed write's cache work, and every worker's L1 kept in step with it.

A write deletes keys from L2 (and again once replicas have settled) and moves groups to a new
generation, in one Redis script that also announces the names on a pub/sub channel; every worker
of every pod listens there and drops its L1 copies. Work that cannot reach Redis is kept and
replayed when Redis is back. Call only after the write committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence

from hmb import aio
from hmb.store import cache_keys
from hmb.store.cache_keys import Key
from hmb.store.l1 import L1
from hmb.store.redis import Redis, RedisDown, Script, make_client

log = logging.getLogger("hmb.cache")

# Names kept while Redis is down, to replay (deletes, and bumped names apart), each write's whole
# or not at all: past this many, a long outage's writes are bounded by their TTLs instead of by
# this worker's memory.
MAX_PENDING = 10_000
REDELETE_BATCH_S = 0.25


class Invalidations:
    """One worker's side of invalidation: its writes' cache work, and its L1's copies dropped."""

    def __init__(self, redis: Redis, l1: L1, settle_s: float):
        self.redis = redis
        self.l1 = l1  # this worker's, shared with the cache that reads it
        # A read that started before a write may refill a key from a lagging replica
        # after we deleted it; replicas past this lag are not read, so a second delete
        # this long after the first bounds that staleness.
        self.settle_s = settle_s
        self._redeletes: set[asyncio.Task] = set()
        self._redelete_batch: set[str] | None = None
        # Invalidations that could not reach Redis, replayed when it is back.
        self._pending_deletes: set[str] = set()
        self._pending_bumps: dict[tuple[str, ...], int] = {}  # a write's groups -> its generation
        self._pending_bumped = 0  # names in _pending_bumps: counted, not summed, as every write checks it
        redis.breaker.on_close.append(self._schedule_replay)
        self._replay_task: asyncio.Task | None = None

    async def apply(self, lsn: int, deletes: list[str], bumps: list[str], quiet_bumps: Sequence[str] = ()) -> None:
        """A committed write's cache work (key names), in one or two Redis round trips.

        Deletes `deletes` (from L2, and later once more: see `settle_s`) and moves the groups
        `bumps` to generation `lsn`, the WAL position of the write that changed them, telling
        every worker in every pod to drop its L1 copies; then moves `quiet_bumps`, groups too
        many to announce (a post's followers' feeds), without telling: other workers' copies
        age out within their `by_generation(local_s=)`. Old generations' entries are orphaned
        (they expire); a reader of the new one reads with `lsn` as its floor, so no lagging
        replica can refill the group with data from before the write. That second round trip is made even with no
        quiet bumps when keys were deleted: Redis answers it only once it has written the
        first one's announcement to every worker (its answer to the first can leave before),
        so when the write has answered, no pod is left serving a deleted key from L1 while a
        slow announcement is on its way. (Generations need no such wait: a reader whose read
        position is past a worker's copy asks Redis.)
        """
        announced = [*deletes, *bumps]
        if announced:
            await self._send(announced, len(deletes), len(announced), lsn)
        if quiet_bumps or deletes:
            await self._send(list(quiet_bumps), 0, 0, lsn)
        if deletes:
            self._delete_later(deletes)

    async def invalidate(self, *keys: Key) -> None:
        """Delete from L2, then tell every worker in every pod to drop its L1 copy."""
        await self.apply(0, [k.name for k in keys], [])

    async def _send(self, names: list[str], deletes: int, announced: int, lsn: int) -> None:
        """names[:deletes] are deleted, the rest raised to `lsn`; names[:announced] are broadcast."""
        self.drop_local(names)
        args = [cache_keys.INVALIDATION_CHANNEL, lsn, cache_keys.TTL["gen"], deletes, announced]
        try:
            await self.redis.run_script(_APPLY, names, *args)
        except RedisDown:
            self._remember_deletes(names[:deletes])
            if len(names) > deletes:
                self._remember_bumps(tuple(names[deletes:]), lsn)

    def _delete_later(self, names: list[str]) -> None:
        """Delete `names` again settle_s to settle_s + REDELETE_BATCH_S from now, with the other
        writes' names of that batch: one round trip (and one broadcast) per batch, not per write."""
        if self._redelete_batch is None:
            self._redelete_batch = set()
            task = asyncio.get_running_loop().create_task(self._delete_again(self._redelete_batch))
            self._redeletes.add(task)
            task.add_done_callback(self._redeletes.discard)
        self._redelete_batch.update(names)

    async def _delete_again(self, batch: set[str]) -> None:
        try:
            await asyncio.sleep(REDELETE_BATCH_S)
        finally:
            self._redelete_batch = None  # later deletes start the next batch
        await asyncio.sleep(self.settle_s)
        await self._send(list(batch), len(batch), len(batch), 0)

    async def close(self) -> None:
        await aio.stop([*self._redeletes, *filter(None, [self._replay_task])])

    def drop_local(self, names: Iterable[str]) -> None:
        l1 = self.l1
        for name in names:  # a post's fan-out: hundreds of names, most of them not here
            if name in l1:
                del l1[name]
            elif name.endswith("*"):
                self._drop_pattern(name)

    def _drop_pattern(self, name: str) -> None:
        if name == "*":
            self.l1.clear()
        elif name.endswith(":*"):
            prefix = name[:-1]
            for key in [k for k in self.l1 if k.startswith(prefix)]:
                del self.l1[key]

    def _remember_deletes(self, names: list[str]) -> None:
        if len(self._pending_deletes) + len(names) <= MAX_PENDING:
            self._pending_deletes.update(names)

    def _remember_bumps(self, bumped: tuple[str, ...], lsn: int) -> None:
        if bumped in self._pending_bumps:
            self._pending_bumps[bumped] = max(lsn, self._pending_bumps[bumped])
        elif self._pending_bumped + len(bumped) <= MAX_PENDING:
            self._pending_bumps[bumped] = lsn
            self._pending_bumped += len(bumped)

    def _schedule_replay(self) -> None:
        if (self._pending_deletes or self._pending_bumps) and not self._replay_task:
            self._replay_task = asyncio.get_running_loop().create_task(self._replay())

    async def _replay(self) -> None:
        deletes, bumps = list(self._pending_deletes), dict(self._pending_bumps)
        self._pending_deletes.clear()
        self._pending_bumps.clear()
        self._pending_bumped = 0
        try:
            if deletes:
                await self._send(deletes, len(deletes), len(deletes), 0)
            for names, lsn in bumps.items():
                await self._send(list(names), 0, len(names), lsn)
        finally:
            self._replay_task = None


# Deletes, bumps and their announcement are one command to encode, however many keys (a per-key
# EVALSHA pipeline + SCRIPT EXISTS + PUBLISH: POST /api/posts 2.4-2.6 -> 1.6-1.75 ms CPU; then one
# script for deletes and bumps, not one each, and the fan-out's bumps in the same script:
# 1.07 -> 0.51 ms with the rest of that change).
# KEYS[1..ARGV[4]] are deleted, the rest raised to generation ARGV[2]: generations only move
# forward, even when two writers' bumps arrive out of order. KEYS[1..ARGV[5]] are then
# published on the invalidation channel ARGV[1], in one message.
_APPLY = Script("""
local deletes, announced, lsn = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  if i <= deletes then
    redis.call('DEL', key)
  elseif lsn > tonumber(redis.call('GET', key) or '0') then
    redis.call('SET', key, ARGV[2], 'EX', ARGV[3])
  end
end
if announced > 0 then redis.call('PUBLISH', ARGV[1], table.concat(KEYS, '\\n', 1, announced)) end
""")


async def listen_for_invalidations(invalidations: Invalidations, on_message: Callable[[list[str]], None] | None = None) -> None:
    """Drop L1 entries other workers invalidated. Runs for the worker's life.

    After a lost subscription we may have missed messages, so L1 is emptied.
    """
    settings = invalidations.redis.settings
    client = make_client(settings, socket_timeout=None)
    backoff = 0.1
    try:
        while True:
            try:
                async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(cache_keys.INVALIDATION_CHANNEL)
                    invalidations.drop_local(["*"])
                    backoff = 0.1
                    last_ping = time.monotonic()
                    while True:
                        message = await pubsub.get_message(timeout=1.0)
                        if message is not None:
                            names = message["data"].decode().split("\n")
                            invalidations.drop_local(names)
                            if on_message:
                                on_message(names)
                        elif time.monotonic() - last_ping > 5:
                            # A hung Redis never closes the socket: ping to find out.
                            async with asyncio.timeout(2 * settings.timeout_s + 1):
                                await pubsub.ping()
                            last_ping = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means resubscribe
                log.warning("invalidation listener lost Redis, retrying", extra={"error": str(exc)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
    finally:
        await client.aclose()
