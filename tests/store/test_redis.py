"""The Redis guard against a real Redis: bounded connections, and the GET hot path's own connections."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import redis.asyncio as aioredis

from hmb.config import RedisSettings
from hmb.store.redis import Redis, RedisDown, Script, make_client


@pytest.fixture
async def guarded(stack):
    redis = Redis(RedisSettings(stack.redis_url, max_connections=2, timeout_s=5))
    yield redis
    await redis.close()


async def test_more_concurrent_calls_than_connections_wait_for_one_instead_of_failing(guarded, redis_client):
    """A worker's burst beyond REDIS_MAX_CONNECTIONS queues (within the call's timeout): no
    "Too many connections", no breaker failure, no more sockets than the limit."""
    clients_before = len(await redis_client.client_list())
    await redis_client.set("burst", b"v")
    values = await asyncio.gather(*(guarded.call(lambda r: r.get("burst")) for _ in range(50)))
    assert values == [b"v"] * 50
    assert guarded.breaker.errors_total == 0
    assert len(await redis_client.client_list()) - clients_before <= 2


async def test_get_bursts_share_at_most_max_connections(guarded, redis_client):
    clients_before = len(await redis_client.client_list())
    await redis_client.mset({f"k{i}": f"v{i}" for i in range(50)})
    values = await asyncio.gather(*(guarded.get(f"k{i}") for i in range(50)))
    assert values == [f"v{i}".encode() for i in range(50)]
    assert await guarded.get("missing") is None
    assert len(await redis_client.client_list()) - clients_before <= 2
    assert guarded.breaker.errors_total == 0


async def test_get_after_its_connections_were_killed_reconnects_without_a_failure(guarded, redis_client):
    """Idle connections closed by the server (a restart, a failover) cost one retry, not an error."""
    await redis_client.set("k", b"v")
    await asyncio.gather(guarded.get("k"), guarded.get("k"))  # two idle connections now
    assert await redis_client.client_kill_filter(_type="normal", skipme=True) >= 2
    assert [await guarded.get("k") for _ in range(3)] == [b"v"] * 3
    assert guarded.breaker.errors_total == 0


async def test_a_get_cut_off_by_its_timeout_never_hands_its_reply_to_the_next(stack, redis_client):
    """The timed-out GET's reply arrives later on its socket: that connection must not be reused."""
    redis = Redis(RedisSettings(stack.redis_url, max_connections=1, timeout_s=0.1, breaker_failures=1000))
    try:
        await redis_client.mset({"a": b"A", "b": b"B"})
        assert await redis.get("b") == b"B"  # the one connection, now idle
        await redis_client.client_pause(300)  # Redis holds every command (its replies come after)
        with pytest.raises(RedisDown):
            await redis.get("a")
        values = []
        while not values:  # until the pause ends
            with contextlib.suppress(RedisDown):
                values.append(await redis.get("b"))
        assert values == [b"B"]
    finally:
        await redis.close()


def test_commands_are_packed_as_redis_py_would_pack_them(stack):
    """hiredis packs in C what redis-py's asyncio connection packs in Python: the same bytes,
    multi-word commands ("SCRIPT LOAD") split as redis-py splits them."""
    ours = make_client(RedisSettings(stack.redis_url)).connection_pool.make_connection()
    theirs = aioredis.Connection()
    for command in [("GET", "k"), ("SCRIPT LOAD", "return 1"), (b"CLIENT LIST",),
                    ("EVALSHA", "a" * 40, 2, "k1", b"k2", 3600, "é", 1.5)]:
        assert b"".join(ours.pack_command(*command)) == b"".join(theirs.pack_command(*command))
    assert type(ours).pack_command is not aioredis.Connection.pack_command


async def test_scripts_run_on_the_guards_own_connections_and_reload_after_a_flush(guarded, redis_client):
    """A script is one EVALSHA on the connections GET uses (past redis-py's client layers); a
    Redis that lost its scripts (a restart, SCRIPT FLUSH) answers NOSCRIPT once, the script is
    loaded and run on the same guard, and the connection that got the error reply is reused."""
    clients_before = len(await redis_client.client_list())
    add = Script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert await asyncio.gather(*(guarded.run_script(add, ["counter"], 2) for _ in range(20))) != []
    assert await redis_client.get("counter") == b"40"
    await redis_client.script_flush()
    assert await guarded.run_script(add, ["counter"], 1) == 41
    assert await guarded.get("counter") == b"41"
    assert guarded.breaker.errors_total == 0
    assert len(await redis_client.client_list()) - clients_before <= 2
    with pytest.raises(RedisDown):  # a script's own error is the caller's, as any failed command
        await guarded.run_script(Script("return redis.error_reply('nope')"), [])
    assert await guarded.get("counter") == b"41"


async def test_any_command_goes_the_way_get_does_with_redis_own_replies(guarded, redis_client):
    assert await guarded.command("SET", "c", b"v", "EX", 60) == b"OK"
    assert await guarded.command("SET", "c", b"w", "NX", "PX", 1000) is None  # NX: already there
    assert await redis_client.get("c") == b"v" and 0 < await redis_client.ttl("c") <= 60
    assert await guarded.command("INCR", "n") == 1
    assert guarded.breaker.errors_total == 0
