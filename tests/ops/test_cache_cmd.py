"""`hmb cache flush` (SCAN in batches + L1 broadcast) and `hmb cache stats`."""

from __future__ import annotations

import asyncio

from click.testing import CliRunner

from hmb.appkeys import CACHE
from hmb.config import OpsSettings
from hmb.ops.cli import main
from hmb.store import cache_keys
from tests.conftest import TEST_ENV, wait_for
from tests.factories import register


async def invoke(stack, *args: str, input: str | None = None):
    """The real command, in a thread (it runs its own event loop, as in a terminal)."""
    runner = CliRunner()
    env = {**TEST_ENV, **stack.env()}
    return await asyncio.to_thread(runner.invoke, main, list(args), input=input, env=env, catch_exceptions=False)


async def test_flush_namespace_empties_redis_and_every_workers_l1(stack, make_client, redis_client):
    first, second = await make_client(), await make_client()
    user = await register(first)
    path = f"/api/users/{user['user']['id']}"
    for client in (first, second):
        await client.get(path)
        assert (await client.get(path)).headers["X-Cache"] == "l1"
    await redis_client.set(cache_keys.lock(cache_keys.user(1)), b"1")
    await redis_client.set(cache_keys.job(7).name, b"{}")
    await redis_client.set(cache_keys.rate_limit("login-ip", "203.0.113.9", 1), 3)

    result = await invoke(stack, "cache", "flush", "user")

    assert result.exit_code == 0, result.output
    assert "2 keys deleted" in result.output  # the profile and its refresh lock
    assert await redis_client.keys("hmb:v1:user:*") == []
    assert await redis_client.exists(cache_keys.job(7).name, cache_keys.rate_limit("login-ip", "203.0.113.9", 1)) == 2
    for client in (first, second):
        await wait_for(lambda c=client: not any(k.startswith("hmb:v1:user:") for k in c.app[CACHE].l1))
        assert (await client.get(path)).headers["X-Cache"] in ("l2", "miss")


async def test_flush_scans_in_batches_without_keys(stack, redis_client):
    async with redis_client.pipeline(transaction=False) as pipe:
        for i in range(1200):
            pipe.set(cache_keys.feed(i, 0, "", 20).name, b"[]")
        await pipe.execute()
    monitor_seen = []

    async def watch():
        async with redis_client.monitor() as m:
            async for command in m.listen():
                monitor_seen.append(command["command"].split()[0].upper())

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0)  # let the monitor attach before the command runs
    try:
        result = await invoke(stack, "cache", "flush", "feed")
    finally:
        watcher.cancel()
    assert result.exit_code == 0 and "1200 keys deleted" in result.output
    assert await redis_client.dbsize() == 0
    assert "KEYS" not in monitor_seen


async def test_flush_all_asks_first_and_spares_non_cache_keys(stack, redis_client):
    await redis_client.set(cache_keys.user(1).name, b"x")
    await redis_client.set(cache_keys.feed_gen(1).name, b"42")
    await redis_client.set(cache_keys.heartbeat("pod", 1), b"{}")
    await redis_client.set(cache_keys.rate_limit("login-ip", "198.51.100.1", 1), 1)

    refused = await invoke(stack, "cache", "flush", "--all", input="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.output
    assert await redis_client.dbsize() == 4

    done = await invoke(stack, "cache", "flush", "--all", "--yes")
    assert done.exit_code == 0 and "2 keys deleted" in done.output
    assert sorted(await redis_client.keys("*")) == sorted(
        [cache_keys.heartbeat("pod", 1).encode(), cache_keys.rate_limit("login-ip", "198.51.100.1", 1).encode()]
    )


async def test_flush_refuses_unknown_or_ambiguous_targets(stack):
    unknown = await invoke(stack, "cache", "flush", "nope")
    assert unknown.exit_code == 2 and "'nope' is not one of" in unknown.output
    gen_alone = await invoke(stack, "cache", "flush", "gen")
    assert gen_alone.exit_code == 2
    neither = await invoke(stack, "cache", "flush")
    assert neither.exit_code == 2 and "give a NAMESPACE or --all" in neither.output


async def test_stats_show_hit_rates_from_heartbeats_and_redis_memory(stack, make_client, settings, redis_client):
    client = await make_client(settings.with_(ops=OpsSettings(0.1, 1.0, 30.0)))
    await client.get("/api/users/1")  # a miss at both levels (404s are not cached)
    await redis_client.set(cache_keys.user(5).name, b"x")
    await wait_for(lambda: redis_client.zcard(cache_keys.HEARTBEAT_INDEX))
    client.app[CACHE].counts[("user", "l1", "hit")] += 3  # as if three more lookups hit L1
    await wait_for(lambda: _beat_has_hits(redis_client), timeout=5)

    result = await invoke(stack, "cache", "stats", "--keys")

    assert result.exit_code == 0, result.output
    assert "redis:" in result.output and "used" in result.output
    row = next(line for line in result.output.splitlines() if line.startswith("user "))
    assert row.split() == ["user", "300", "4", "75%", "0%", "1", "0", "1"]


async def _beat_has_hits(redis_client) -> bool:
    import orjson

    members = await redis_client.zrange(cache_keys.HEARTBEAT_INDEX, 0, -1)
    for m in members:
        pod, _, pid = m.decode().rpartition("|")
        raw = await redis_client.get(cache_keys.heartbeat(pod, int(pid)))
        if raw and orjson.loads(raw)["cache"].get("user", {}).get("l1_hit") == 3:
            return True
    return False
