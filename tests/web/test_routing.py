"""The read router seen through HTTP: which node served each read, under replay pause and replica loss."""

from __future__ import annotations

import asyncio

from hmb.appkeys import DB
from tests.conftest import wait_for
from tests.factories import register


def replica(client):
    return client.server.app[DB].replicas[0]


async def route_of(client, path: str, **kwargs) -> str:
    """The node that answered (a read retried after a dead replica lists both; the last one answered)."""
    response = await client.get(path, **kwargs)
    assert response.status == 200, await response.text()
    return response.headers["X-DB-Route"].split(", ")[-1]


async def test_replay_paused_fresh_reads_go_to_primary_and_lagging_replica_is_dropped(client, launcher):
    await wait_for(lambda: replica(client).in_use)
    await asyncio.to_thread(launcher.pause_replay)
    try:
        user = await register(client)  # a write the paused replica cannot see
        # Read-your-writes: the caller's position is ahead of the replica, so the primary answers.
        assert await route_of(client, "/api/auth/me", headers=user["headers"]) == "primary"
        # An anonymous read with no position may use the replica while its lag is under the threshold...
        client.session.cookie_jar.clear()
        assert (await route_of(client, "/api/users?q=user")).startswith("replica-1")
        # ...and moves to the primary once the lag passes REPLICA_MAX_LAG_S.
        await wait_for(lambda: not replica(client).in_use, timeout=5)
        assert await route_of(client, "/api/users?q=user") == "primary"
        assert "lag" in replica(client).reason
    finally:
        await asyncio.to_thread(launcher.resume_replay)
    await wait_for(lambda: replica(client).in_use, timeout=5)
    assert (await route_of(client, "/api/users?q=user")).startswith("replica-1")


async def test_register_then_me_sees_itself_while_replay_is_paused(client, launcher):
    await asyncio.to_thread(launcher.pause_replay)
    try:
        user = await register(client, name="Fresh Person")
        # The cookie carries the position for browsers; API clients echo the header. Check both.
        me = await client.get("/api/auth/me", headers=user["headers"])
        assert me.status == 200, await me.text()
        assert (await me.json())["name"] == "Fresh Person"
        position = me.headers.get("X-Read-Position") or (await _position_of(client, user))
        client.session.cookie_jar.clear()
        me = await client.get("/api/auth/me", headers={**user["headers"], "X-Read-Position": position})
        assert me.status == 200 and me.headers["X-DB-Route"] == "primary"
        assert (await me.json())["name"] == "Fresh Person"
    finally:
        await asyncio.to_thread(launcher.resume_replay)


async def _position_of(client, user) -> str:
    response = await client.patch("/api/users/me", json={"headline": "x"}, headers=user["headers"])
    return response.headers["X-Read-Position"]


async def test_forged_position_is_ignored(client):
    await wait_for(lambda: replica(client).in_use)
    route = await route_of(client, "/api/users?q=a", headers={"X-Read-Position": "ffffffff.0000"})
    assert route.startswith("replica-1")


async def test_replica_stopped_reads_still_answer_and_it_is_readmitted(client, launcher):
    await wait_for(lambda: replica(client).in_use)
    assert (await route_of(client, "/api/users?q=x")).startswith("replica-1")
    await asyncio.to_thread(launcher.stop_replica)
    try:
        assert await route_of(client, "/api/users?q=x") == "primary"
        assert not replica(client).in_use
        assert "unreachable" in replica(client).reason
    finally:
        await asyncio.to_thread(launcher.start_replica)
    await wait_for(lambda: replica(client).in_use, timeout=10)
    assert (await route_of(client, "/api/users?q=x")).startswith("replica-1")
