"""The two-level cache against real Redis and Postgres: broadcast invalidation, single-flight, Redis loss."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace

from hmb.appkeys import CACHE, DB, REDIS
from hmb.config import Settings
from hmb.store import cache_keys, users
from hmb.store.cache import _STAMP, REFRESH_CONCURRENCY, REREAD_KEEP_S, STALE_L1_S, TTL_JITTER
from hmb.store.invalidation import MAX_PENDING, REDELETE_BATCH_S
from hmb.store.redis import RedisDown
from tests.conftest import wait_for
from tests.factories import register


async def test_write_through_one_instance_drops_l1_in_the_other_within_a_second(make_client):
    a, b = await make_client(), await make_client()
    user = await register(a, name="Before")
    uid = user["user"]["id"]
    path = f"/api/users/{uid}"
    await wait_for(lambda: _name_via(b, path, "Before"))
    assert (await b.get(path)).headers["X-Cache"] == "l1"
    key = cache_keys.user(uid).name
    assert key in b.server.app[CACHE].l1

    response = await a.patch("/api/users/me", json={"name": "After"}, headers=user["headers"])
    assert response.status == 200
    await wait_for(lambda: key not in b.server.app[CACHE].l1, timeout=1.0)
    await wait_for(lambda: _name_via(b, path, "After"), timeout=5)


async def _name_via(client, path, expected) -> bool:
    response = await client.get(path)
    return response.status == 200 and (await response.json())["name"] == expected


async def test_fifty_concurrent_misses_make_one_database_query(client):
    user = await register(client)
    app = client.server.app
    db, cache = app[DB], app[CACHE]
    queries = 0

    async def load() -> bytes:
        nonlocal queries
        queries += 1
        row = await db.strong_read(users.get_public, user["user"]["id"])
        await asyncio.sleep(0)  # let the other 49 arrive while this load is in flight
        return row["name"].encode()

    key = cache_keys.user(user["user"]["id"])
    results = await asyncio.gather(*(cache.get_or_load(key, load) for _ in range(50)))
    assert queries == 1
    assert {value for value, _ in results} == {user["user"]["name"].encode()}


async def test_stale_hot_key_is_recomputed_once_in_the_background_while_every_caller_gets_the_old_value(make_client):
    a, b = await make_client(), await make_client()  # two workers sharing Redis
    key = cache_keys.Key("hmb:v1:trending:test", "trending")
    await a.server.app[CACHE].put(key, b"old", now=0)  # an entry that went stale long ago
    a.server.app[CACHE].l1.clear()
    loads, release = 0, asyncio.Event()

    async def load() -> bytes:
        nonlocal loads
        loads += 1
        await release.wait()  # the database is slow: no caller may wait for it
        return b"new"

    results = await asyncio.wait_for(asyncio.gather(*(  # a caller that waited for the load would time out
        cache.get_or_load(key, load) for cache in (a.server.app[CACHE], b.server.app[CACHE]) for _ in range(3)
    )), timeout=5)
    assert [value for value, _ in results] == [b"old"] * 6  # each worker's first from L2, the rest shared
    assert loads == 1  # one refresh across both workers: the lock
    release.set()
    await wait_for(lambda: a.server.app[CACHE].l1.get(key.name, (0, b""))[1] == b"new")
    # The other worker holds its stale copy in L1 for at most STALE_L1_S, then takes the new one from Redis.
    b_cache = b.server.app[CACHE]
    assert b_cache.l1[key.name][0] <= time.time() + STALE_L1_S
    await wait_for(lambda: key.name not in b_cache.l1 or b_cache.l1[key.name][0] <= time.time(), timeout=STALE_L1_S + 1)
    assert await b_cache.get_or_load(key, load) == (b"new", "l2")
    assert loads == 1


async def test_while_a_stale_entry_is_refreshed_a_worker_reads_it_from_redis_once_a_second_at_most(make_client):
    """Entries read in bursts go stale together (a reader back after their L1 copies lapsed): until
    the refresh lands, their reads must not each be a Redis round trip."""
    cache = (await make_client()).server.app[CACHE]
    key = cache_keys.Key("hmb:v1:trending:burst", "trending")
    await cache.put(key, b"old", now=0)
    cache.l1.clear()
    release = asyncio.Event()

    async def load() -> bytes:
        await release.wait()  # the refresh is slow
        return b"new"

    levels = [(await cache.get_or_load(key, load))[1] for _ in range(20)]
    assert levels == ["l2"] + ["l1"] * 19
    until = cache.l1[key.name][0]
    assert until <= time.time() + STALE_L1_S  # held briefly: other workers take the refresh from Redis soon
    release.set()
    await wait_for(lambda: cache.counts[("trending", "refresh", "done")] == 1)
    assert await cache.get_or_load(key, load) == (b"new", "l1")  # the refresh replaced it in this worker


async def test_entries_gone_stale_together_are_recomputed_a_few_at_a_time(make_client):
    cache = (await make_client()).server.app[CACHE]
    keys = [cache_keys.Key(f"hmb:v1:trending:together-{i}", "trending") for i in range(3 * REFRESH_CONCURRENCY)]
    for key in keys:
        await cache.put(key, b"old", now=0)
    cache.l1.clear()
    running, most = 0, 0

    async def load() -> bytes:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1
        return b"new"

    assert [await cache.get_or_load(key, load) for key in keys] == [(b"old", "l2")] * len(keys)
    await wait_for(lambda: cache.counts[("trending", "refresh", "done")] == len(keys))
    assert most == REFRESH_CONCURRENCY


async def test_entries_put_together_go_stale_spread_over_a_tenth_of_their_ttl(client, redis_client):
    """Entries loaded together (a warm-up, a deploy) must not all be recomputed in the same second."""
    cache = client.server.app[CACHE]
    keys = [cache_keys.Key(f"hmb:v1:feed:together-{i}", "feed") for i in range(50)]
    now = time.time()
    for key in keys:
        await cache.put(key, b"page", now=now)
    # The stamp in Redis, which every worker reads (L1 keeps an entry at most l1_ttl_s anyway).
    spans = [_STAMP.unpack_from(await redis_client.get(key.name))[0] - now for key in keys]
    ttl = keys[0].ttl
    assert all(ttl * (1 - TTL_JITTER) <= span <= ttl for span in spans)
    assert max(spans) - min(spans) > ttl * TTL_JITTER / 2  # spread, not one instant


async def test_a_failed_background_refresh_keeps_the_stale_value_and_is_counted(make_client):
    client = await make_client()
    cache = client.server.app[CACHE]
    key = cache_keys.Key("hmb:v1:trending:failing", "trending")
    await cache.put(key, b"old", now=0)
    cache.l1.clear()

    tries = 0

    async def load() -> bytes:
        nonlocal tries
        tries += 1
        raise ConnectionError("the replica went away")

    assert await cache.get_or_load(key, load) == (b"old", "l2")
    await wait_for(lambda: cache.counts[("trending", "refresh", "error")] == 1)
    assert await cache.get_or_load(key, load) == (b"old", "l1")  # held briefly in L1, as while refreshing
    cache.l1.clear()  # that copy lapsed (or another worker reads it)
    assert await cache.get_or_load(key, load) == (b"old", "l2")
    # A refresh spawned by that read would have run its loader by now: its task's first step was
    # queued before this sleep's wake-up, and the loop runs them in order.
    await asyncio.sleep(0)
    assert tries == 1  # the lock holds: no second try yet


async def feed_generation_served(cache, uid: int) -> int:
    """The generation a feed page read of `uid`'s through `cache` is served under."""
    served = []

    def key_for(gen: int) -> cache_keys.Key:
        served.append(gen)
        return cache_keys.feed(uid, gen, "", 20)

    async def load(floor: int | None) -> bytes:
        return b'{"items":[]}'

    await cache.by_generation(cache_keys.feed_gen(uid), key_for, load, None, cache_keys.FEED_GEN_LOCAL_S)
    return served[0]


async def test_a_reader_s_local_generation_follows_quiet_bumps_without_a_read_waiting_on_redis(make_client):
    """A generation trusted locally for `local_s` (a feed's: its fan-out bumps are not announced)
    is re-read in the background while its reader keeps reading, so every read is an L1 hit and a
    quiet bump still shows within local_s."""
    writer, reader = (await make_client()).server.app[CACHE], (await make_client()).server.app[CACHE]
    uid, local_s = 918_273_645, cache_keys.FEED_GEN_LOCAL_S
    key = cache_keys.feed_gen(uid)

    await writer.invalidations.apply(100, [], [], [key.name])
    assert await feed_generation_served(reader, uid) == 100  # the first read asks Redis
    misses = reader.counts[("gen", "l1", "miss")]
    assert misses == 1

    await writer.invalidations.apply(200, [], [], [key.name])  # quiet: the reader's worker is not told
    bumped = time.monotonic()

    async def reads(gen: int) -> bool:
        return await feed_generation_served(reader, uid) == gen

    await wait_for(lambda: reads(200), timeout=local_s + 1)
    assert time.monotonic() - bumped <= local_s + 0.2
    # Reading on for twice the trust period: still never a read of its own from Redis.
    until = time.monotonic() + 2 * local_s

    async def read_on() -> bool:
        assert await reads(200)
        return time.monotonic() > until

    await wait_for(read_on, timeout=3 * local_s)
    assert reader.counts[("gen", "l1", "miss")] == misses
    assert reader.counts[("gen", "l1", "hit")] > 50
    assert reader.counts[("gen", "reread", "done")] >= 2


async def test_a_reader_reading_less_often_than_the_trust_period_still_reads_its_generation_from_l1(make_client):
    """A reader's generation is renewed for REREAD_KEEP_S after their last read, not only while they
    read every round: someone reading their feed every couple of seconds waits on Redis once, and
    still sees a quiet bump within local_s of it."""
    writer, reader = (await make_client()).server.app[CACHE], (await make_client()).server.app[CACHE]
    uid, local_s = 918_273_646, cache_keys.FEED_GEN_LOCAL_S
    key = cache_keys.feed_gen(uid)
    gap = 1.6 * local_s  # longer than a copy is trusted, and than the trust plus one re-read round
    assert gap < REREAD_KEEP_S

    await writer.invalidations.apply(100, [], [], [key.name])
    assert await feed_generation_served(reader, uid) == 100  # the first read asks Redis
    await writer.invalidations.apply(200, [], [], [key.name])  # quiet: the reader's worker is not told
    for _ in range(2):
        await asyncio.sleep(gap)  # the reader is away: this gap is the behaviour under test
        assert await feed_generation_served(reader, uid) == 200
    assert reader.counts[("gen", "l1", "miss")] == 1
    assert reader.counts[("gen", "l1", "hit")] == 2


async def test_a_bump_never_lowers_a_generation(client, redis_client):
    """Bumps may arrive out of order (two writes' cache work racing): a generation only moves up."""
    cache = client.server.app[CACHE]
    names = [cache_keys.feed_gen(uid).name for uid in (1, 2, 3)]
    await cache.invalidations.apply(300, [], [], names)
    await cache.invalidations.apply(200, [], [], names[:2])  # an earlier write's bump, applied late
    await cache.invalidations.apply(400, [], [], names[:1])
    assert await redis_client.mget(names) == [b"400", b"300", b"300"]
    assert 0 < await redis_client.ttl(names[1]) <= cache_keys.TTL["gen"]


async def test_redis_down_cached_reads_answer_from_the_database_then_hits_recover(make_client, settings, launcher):
    fast_breaker = settings.with_(redis=replace(settings.redis, breaker_cooldown_s=0.2))
    client = await make_client(fast_breaker)
    user = await register(client)
    path = f"/api/users/{user['user']['id']}"
    app = client.server.app
    await asyncio.to_thread(launcher.stop_redis)
    try:
        for _ in range(10):
            app[CACHE].l1.clear()  # force each read past L1 to where Redis would be
            response = await client.get(path)
            assert response.status == 200
            assert response.headers["X-Cache"] == "miss"
        # The breaker opened after a few failures: later reads did not pay Redis's timeout.
        assert app[REDIS].breaker.state in ("open", "half_open")
        assert 3 <= app[REDIS].breaker.errors_total < 10
        assert app[CACHE].counts[("user", "l2", "error")] == 10
    finally:
        await asyncio.to_thread(launcher.start_redis)
    app[CACHE].l1.clear()

    async def l2_serving() -> bool:
        app[CACHE].l1.clear()
        return (await client.get(path)).headers["X-Cache"] == "l2"

    await wait_for(l2_serving, timeout=5)
    assert app[REDIS].breaker.state == "closed"
    assert (await client.get(path)).headers["X-Cache"] == "l1"


async def test_bumps_kept_while_redis_is_down_are_bounded_and_replayed_when_it_is_back(make_client, settings, launcher,
                                                                                        redis_client):
    client = await make_client(settings.with_(redis=replace(settings.redis, breaker_cooldown_s=0.2)))
    app = client.server.app
    writes, per_write = MAX_PENDING // 100 + 50, 100  # a post's fan-out bumps ~100 followers' feeds
    await asyncio.to_thread(launcher.stop_redis)
    try:
        for w in range(writes):
            names = [f"hmb:v1:test-bound:{w}:{i}" for i in range(per_write)]
            await app[CACHE].invalidations.apply(1000 + w, [], [], names)
    finally:
        await asyncio.to_thread(launcher.start_redis)

    async def replayed() -> int:
        with contextlib.suppress(RedisDown):  # a call that lets the breaker close, once it may
            await app[REDIS].get("hmb:v1:test-bound:probe")
        return len([k async for k in redis_client.scan_iter(match="hmb:v1:test-bound:*", count=1000)])

    await wait_for(replayed, timeout=10)
    await wait_for(lambda: app[CACHE].invalidations._replay_task is None, timeout=10)
    # What a long outage keeps is bounded (the rest ages out with its TTL), and what it kept
    # reaches Redis with each group's own generation.
    assert await replayed() == MAX_PENDING
    assert int(await redis_client.get("hmb:v1:test-bound:0:0")) == 1000
    assert int(await redis_client.get(f"hmb:v1:test-bound:{MAX_PENDING // per_write - 1}:0")) == 1000 + MAX_PENDING // per_write - 1


async def test_invalidation_is_dropped_when_the_write_rolls_back(client):
    user = await register(client)
    uid = user["user"]["id"]
    app = client.server.app
    assert (await client.get(f"/api/users/{uid}")).status == 200
    key = cache_keys.user(uid)
    try:
        async with app[DB].write() as w:
            await w.conn.execute("UPDATE users SET name = 'Nope' WHERE id = $1", uid)
            w.invalidate(key)
            raise RuntimeError("abort")
    except RuntimeError:
        pass
    assert key.name in app[CACHE].l1
    assert await app[REDIS].call(lambda r: r.exists(key.name)) == 1


async def test_second_deletes_of_many_writes_share_one_round_trip(client, redis_client):
    cache = client.server.app[CACHE]
    cache.invalidations.settle_s = 0.1
    keys = [cache_keys.user(n) for n in range(1, 6)]
    calls = []
    real_call = cache.redis.call

    async def counted(fn):
        calls.append(fn)
        return await real_call(fn)

    cache.redis.call = counted
    try:
        for key in keys:
            await cache.invalidations.invalidate(key)
            await redis_client.set(key.name, b"refilled from a lagging replica")
        writes = len(calls)
        await wait_for(lambda: len(calls) > writes, timeout=REDELETE_BATCH_S + cache.invalidations.settle_s + 1)
        await asyncio.sleep(REDELETE_BATCH_S)
    finally:
        del cache.redis.call
    assert len(calls) == writes + 1
    assert await redis_client.exists(*(k.name for k in keys)) == 0


async def test_without_l1_every_hit_comes_from_redis(make_client, settings):
    """CACHE_L1_MAX_ENTRIES=0 (the benchmark's Redis-only scenario): nothing is kept in the worker."""
    client = await make_client(replace(settings, cache=replace(settings.cache, l1_max_entries=0)))
    user = await register(client)
    path = f"/api/users/{user['user']['id']}"
    assert (await client.get(path)).headers["X-Cache"] in ("miss", "l2")
    assert [(await client.get(path)).headers["X-Cache"] for _ in range(3)] == ["l2"] * 3
    assert len(client.server.app[CACHE].l1) == 0


def test_l1_size_comes_from_the_environment():
    env = {"DATABASE_URL": "postgresql://db/hmb", "REDIS_URL": "redis://cache:6379/0", "CACHE_L1_MAX_ENTRIES": "0"}
    assert Settings.from_env(env).cache.l1_max_entries == 0
    assert Settings.from_env({**env, "CACHE_L1_MAX_ENTRIES": "500"}).cache.l1_max_entries == 500
