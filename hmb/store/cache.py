"""The two-level cache: L1 in this worker, L2 in Redis, Postgres behind both.

Values are bytes (usually an encoded response body), so a hit does no JSON work.
L2 entries carry a "fresh until" stamp ahead of the body and live past it for a
grace period: once stale, one worker (holding a short Redis lock) recomputes it in
the background while every caller, the one that took the lock included, is served
the previous value, so a hot key's expiry never stampedes the database nor puts its
latency on a reader. Concurrent misses in one worker share one load.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable

from hmb import aio
from hmb.config import CacheSettings
from hmb.store import cache_keys
from hmb.store.cache_keys import Key
from hmb.store.invalidation import Invalidations
from hmb.store.l1 import L1
from hmb.store.redis import Redis, RedisDown

log = logging.getLogger("hmb.cache")

_STAMP = struct.Struct("!d")  # wall-clock "fresh until", shared by every pod
GRACE = 0.5  # stale entries stay in L2 for this fraction of their TTL
# Each entry is fresh for its TTL less up to this fraction, at random: entries loaded together
# (a warm-up, a deploy, 500 readers' first pages) then go stale over a tenth of their TTL
# rather than in one second, which put all their recomputes in one window of the database.
TTL_JITTER = 0.1
LOCK_MS = 10_000
# How long a worker keeps a stale entry in L1 while it is refreshed: its reads then wait on no
# Redis round trip each, and the refreshed value reaches every worker's L1 this soon after.
STALE_L1_S = 1.0
# L1 is bounded in bytes as well as entries: 20,000 feed pages of ~9 KB would be 180 MB a worker.
L1_MAX_BYTES = 64 * 1024 * 1024
# Background recomputes of stale entries running at once in a worker: when many entries go stale
# together (a feed page per reader, loaded in the same minute), the rest queue rather than
# crowding the pool and the loop at the moment they expire.
REFRESH_CONCURRENCY = 4
# Locally trusted generations renewed by one MGET (see Cache._reread_generations).
REREAD_CHUNK = 1000
# How long after its last read such a generation is still renewed: a reader back within this
# (scrolling, switching tabs) reads it from L1; each read costs at most this / round MGET entries.
REREAD_KEEP_S = 5.0

Loader = Callable[[], Awaitable[bytes]]
PageLoader = Callable[[int | None], Awaitable[bytes]]


class Cache:
    def __init__(self, redis: Redis, settings: CacheSettings, settle_s: float = 6.0):
        self.redis = redis
        self.settings = settings
        self._refreshes: set[asyncio.Task] = set()  # stale entries being recomputed in the background
        self._refresh_slots = asyncio.Semaphore(REFRESH_CONCURRENCY)
        # Locally trusted generations read in the last REREAD_KEEP_S -> (local_s, when last read).
        self._gens_read: dict[str, tuple[float, float]] = {}
        self._gen_rereader: asyncio.Task | None = None
        self.l1 = L1()
        self.counts: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        self._flights: dict[str, asyncio.Future[bytes]] = {}
        # A write's cache work, after it committed (hmb.store.invalidation): it drops this L1's copies.
        self.invalidations = Invalidations(redis, self.l1, settle_s)

    # --- reads -------------------------------------------------------------

    async def get_or_load(self, key: Key, loader: Loader) -> tuple[bytes, str]:
        """The value and the level that served it: "l1", "l2" or "miss"."""
        value = self.l1_hit(key)
        if value is not None:
            return value, "l1"
        self.counts[(key.namespace, "l1", "miss")] += 1
        now = time.time()
        flight = self._flights.get(key.name)
        if flight is not None:
            return await asyncio.shield(flight), "shared"  # another request of this worker loaded it
        flight = asyncio.get_running_loop().create_future()
        self._flights[key.name] = flight
        try:
            value, level = await self._from_l2_or_load(key, loader, now)
        except BaseException as exc:
            flight.set_exception(exc)
            flight.exception()  # mark retrieved: waiters may be none
            raise
        else:
            flight.set_result(value)
            return value, level
        finally:
            del self._flights[key.name]

    def l1_hit(self, key: Key) -> bytes | None:
        """The value if this worker holds it fresh (counted as a hit); else None, not counted as a
        miss: the load that follows counts it."""
        entry = self.l1.get(key.name)
        if entry is not None and time.time() < entry[0]:
            self.counts[(key.namespace, "l1", "hit")] += 1
            return entry[1]
        return None

    async def by_generation(
        self, gen_key: Key, key_for: Callable[[int], Key], load: PageLoader, floor: int | None, local_s: float | None
    ) -> tuple[bytes, str]:
        """A page of a group cached under the group's generation (`key_for(gen)`), and the level
        that served it ("bypass": not cached, Redis could not say which generation is current).

        `load(floor)` reads with `floor` as its read-your-writes position, so a lagging replica
        cannot refill the new generation with data from before the write that bumped it.

        Generations are WAL positions, so a caller whose read position `floor` is past this
        worker's copy may have moved it itself: Redis is asked, and its own write shows at once.
        `local_s` caps how long the copy is trusted, for groups bumped without a broadcast (feeds);
        such a copy is re-read in the background while it is being read (`_reread_generations`),
        so a reader who keeps reading never waits on Redis for it.
        """
        now = time.time()
        gen = self._local_generation(gen_key, now, floor, local_s)
        if gen is not None:
            # The page too from L1, if it is there: the hot path awaits nothing (one coroutine,
            # not three) and builds no loader.
            key = key_for(gen)
            page = self.l1.get(key.name)
            if page is not None and now < page[0]:
                self.counts[(key.namespace, "l1", "hit")] += 1
                return page[1], "l1"
        else:
            gen = await self._generation_from_redis(gen_key, now, local_s)
            if gen is None:
                return await load(None), "bypass"
            key = key_for(gen)
        return await self.get_or_load(key, lambda: load(gen))

    async def _from_l2_or_load(self, key: Key, loader: Loader, now: float) -> tuple[bytes, str]:
        try:
            raw = await self.redis.get(key.name)
        except RedisDown:
            # No L2: serve from the database, and keep it in L1 only briefly.
            self.counts[(key.namespace, "l2", "error")] += 1
            value = await loader()
            self._l1_put(key.name, now + key.ttl, value)  # for at most l1_ttl_s, as every L1 entry
            return value, "miss"
        if raw is not None:
            fresh_until = _STAMP.unpack_from(raw)[0]
            value = raw[_STAMP.size :]
            if fresh_until > now:
                self._l1_put(key.name, fresh_until, value)
            else:
                # Stale: every caller gets it at once rather than the database's latency (a stale
                # feed page: 3-35 ms) in the read's tail, and this worker's next ones from L1 until
                # the refresh lands (within STALE_L1_S in every worker, from Redis).
                self._l1_put(key.name, now + STALE_L1_S, value)
                if await self._won_refresh(key):  # this worker holds the lock: it recomputes the value
                    self._spawn_refresh(key, loader)
            self.counts[(key.namespace, "l2", "hit")] += 1
            return value, "l2"
        self.counts[(key.namespace, "l2", "miss")] += 1
        value = await loader()
        await self.put(key, value, now)
        return value, "miss"

    def _spawn_refresh(self, key: Key, loader: Loader) -> None:
        task = asyncio.get_running_loop().create_task(self._refresh(key, loader))
        self._refreshes.add(task)
        task.add_done_callback(self._refreshes.discard)

    async def _refresh(self, key: Key, loader: Loader) -> None:
        """Recompute a stale entry; a failure leaves the stale value to the grace period's end (or
        the lock's: another request tries again after LOCK_MS)."""
        try:
            async with self._refresh_slots:
                value = await loader()
        except Exception as exc:  # noqa: BLE001 - a background refresh has no caller to fail
            self.counts[(key.namespace, "refresh", "error")] += 1
            log.warning("refreshing a stale cache entry failed", extra={"key": key.name, "error": repr(exc)})
            return
        await self.put(key, value)
        self.counts[(key.namespace, "refresh", "done")] += 1

    async def _won_refresh(self, key: Key) -> bool:
        try:
            return await self.redis.command("SET", cache_keys.lock(key), b"1", "NX", "PX", LOCK_MS) is not None
        except RedisDown:
            return False

    async def put(self, key: Key, value: bytes, now: float | None = None) -> None:
        now = time.time() if now is None else now
        ttl = key.ttl * (1 - TTL_JITTER * random.random())
        fresh_until = now + ttl
        self._l1_put(key.name, fresh_until, value)
        hard_ttl = max(1, int(ttl * (1 + GRACE)))
        try:
            await self.redis.command("SET", key.name, _STAMP.pack(fresh_until) + value, "EX", hard_ttl)
        except RedisDown:
            self.counts[(key.namespace, "l2", "error")] += 1

    def _local_generation(self, key: Key, now: float, floor: int | None, local_s: float | None) -> int | None:
        """This worker's copy of a generation, when it is fresh and not behind `floor`."""
        name = key.name
        if local_s is not None:
            self._gens_read[name] = (local_s, now)  # renewed in the background while it is read
            if self._gen_rereader is None:
                self._start_rereading(local_s)
        entry = self.l1.get(name)
        if entry is not None and now < entry[0]:
            gen = int(entry[1])
            if floor is None or floor <= gen:
                self.counts[(key.namespace, "l1", "hit")] += 1
                return gen
        self.counts[(key.namespace, "l1", "miss")] += 1
        return None

    async def _generation_from_redis(self, key: Key, now: float, local_s: float | None) -> int | None:
        """The group's current generation, kept in L1 (for `local_s` if given); None when Redis is down."""
        try:
            raw = await self.redis.get(key.name)
        except RedisDown:
            return None
        gen = int(raw or 0)
        self._l1_put(key.name, now + (key.ttl if local_s is None else local_s), str(gen).encode())
        return gen

    def _start_rereading(self, local_s: float) -> None:
        # Every half trust period, so a copy is renewed before it expires.
        task = asyncio.get_running_loop().create_task(self._reread_generations(local_s / 2))
        self._gen_rereader = task

    async def _reread_generations(self, period_s: float) -> None:
        """Renew the locally trusted generations read in the last REREAD_KEEP_S, one MGET a chunk.

        A reader reading at least once every REREAD_KEEP_S is always served from L1, for at most
        REREAD_KEEP_S / period_s renewed names per read (MGET entries, not a request's round trip);
        names nobody read for that long are dropped. A renewed copy is trusted for local_s from
        before its MGET was sent, so none is older than a copy a request read itself.
        """
        while True:
            await asyncio.sleep(period_s)
            kept_since = time.time() - REREAD_KEEP_S
            gone = [name for name, (_, read_at) in self._gens_read.items() if read_at < kept_since]
            for name in gone:
                del self._gens_read[name]
            try:
                await self._reread({name: local_s for name, (local_s, _) in self._gens_read.items()})
            except RedisDown:
                # The copies expire; reads then ask Redis themselves (and cache nothing while it is down).
                self.counts[("gen", "reread", "error")] += 1
            except Exception as exc:  # noqa: BLE001 - the next round tries again; reads still ask Redis
                self.counts[("gen", "reread", "error")] += 1
                log.warning("re-reading generations failed", extra={"error": repr(exc)})

    async def _reread(self, read: dict[str, float]) -> None:
        names = list(read)
        for i in range(0, len(names), REREAD_CHUNK):
            chunk = names[i : i + REREAD_CHUNK]
            sent = time.time()
            raws = await self.redis.command("MGET", *chunk)
            for name, raw in zip(chunk, raws):
                gen = int(raw or 0)
                entry = self.l1.get(name)
                if entry is None or int(entry[1]) <= gen:  # a request may have read a newer one meanwhile
                    self._l1_put(name, sent + read[name], str(gen).encode())
            self.counts[("gen", "reread", "done")] += len(chunk)

    async def close(self) -> None:
        await aio.stop([*self._refreshes, *filter(None, [self._gen_rereader])])
        await self.invalidations.close()

    # --- L1 ----------------------------------------------------------------

    def _l1_put(self, name: str, fresh_until: float, value: bytes) -> None:
        # Kept while fresh, and at most l1_ttl_s: the one time a hit compares (read inline, without
        # a method call, by get_or_load and _local_generation). An entry past it stays
        # until it is put again or is the oldest when L1 is full.
        self.l1[name] = (min(time.time() + self.settings.l1_ttl_s, fresh_until), value)
        self.l1.move_to_end(name)
        while len(self.l1) > self.settings.l1_max_entries or self.l1.nbytes > L1_MAX_BYTES:
            self.l1.popitem(last=False)

    def stats(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for (namespace, level, outcome), n in self.counts.items():
            out.setdefault(namespace, {})[f"{level}_{outcome}"] = n
        return out
