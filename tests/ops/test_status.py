"""`hmb status`: heartbeats merged per pod, direct reads of every node and Redis, the health verdict."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import pytest

from hmb.config import OpsSettings
from hmb.ops.status import collect
from hmb.store import cache_keys
from tests.conftest import TEST_ENV, wait_for

FAST = OpsSettings(heartbeat_interval_s=0.1, heartbeat_ttl_s=1.0, heartbeat_forget_s=30.0)


async def hmb(stack, *args: str, **env: str) -> tuple[int, str]:
    """Run the real CLI in a subprocess; returns (exit code, stdout)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hmb", *args,
        env={**os.environ, **TEST_ENV, **stack.env(), **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert not err or proc.returncode in (0, 2), err.decode()
    return proc.returncode, out.decode()


async def test_status_merges_heartbeats_per_pod(make_client, settings):
    a = await make_client(settings.with_(ops=FAST, pod_id="pod-a"))
    b = await make_client(settings.with_(ops=FAST, pod_id="pod-b"))
    for _ in range(5):
        await a.get("/health")
    for _ in range(3):
        await b.get("/api/users/1")

    async def counted():
        snap = await collect(settings.with_(ops=FAST))
        return {p.id: p.requests for p in snap.pods} == {"pod-a": 5, "pod-b": 3} and snap

    await wait_for(counted, timeout=5)
    snap = await counted()
    assert snap.healthy, snap.problems
    pod_a = next(p for p in snap.pods if p.id == "pod-a")
    assert pod_a.state == "healthy" and pod_a.live_workers == 1
    assert pod_a.p50_ms is not None and pod_a.p99_ms >= pod_a.p50_ms
    assert pod_a.rps > 0 and pod_a.rss_bytes > 10_000_000
    primary, replica = snap.nodes
    assert primary.reachable and replica.reachable and replica.lag_bytes is not None
    assert replica.used_by == replica.seen_by == 2  # both routers read from it
    assert primary.pool["max"] == 16  # 8 per worker, summed
    assert [r["state"] for r in snap.replication] == ["streaming"]
    assert snap.redis.up and snap.redis.used_memory > 0
    assert snap.cache["user"]["l1_miss"] == 3
    queries = {q["name"]: q for q in snap.queries}
    assert queries["get_public"]["calls"] == 3 and queries["get_public"]["p95_ms"] > 0
    json.loads(snap.to_json())  # serialisable as is


async def test_silent_worker_is_stale_and_a_clean_exit_leaves_nothing(make_client, settings, redis_client):
    app = await make_client(settings.with_(ops=FAST, pod_id="pod-live"))
    member = cache_keys.heartbeat_member("pod-live", os.getpid())
    await wait_for(lambda: redis_client.zscore(cache_keys.HEARTBEAT_INDEX, member))
    # A worker that was SIGKILLed 5 s ago: its key expired, its index entry remains.
    await redis_client.zadd(cache_keys.HEARTBEAT_INDEX, {"pod-dead|4242": time.time() - 5})
    snap = await collect(settings.with_(ops=FAST))
    dead = next(p for p in snap.pods if p.id == "pod-dead")
    assert dead.state == "stale" and dead.live_workers == 0
    assert not snap.healthy
    assert any(p.startswith("pod pod-dead: stale") for p in snap.problems)
    await app.close()
    assert await redis_client.zscore(cache_keys.HEARTBEAT_INDEX, member) is None
    assert not await redis_client.exists(cache_keys.heartbeat("pod-live", os.getpid()))


@pytest.mark.faults
async def test_paused_replay_grows_lag_and_the_router_stops_using_the_replica(make_client, settings, launcher, primary):
    await make_client(settings.with_(ops=FAST, pod_id="pod-lag"))
    launcher.pause_replay()
    try:
        await primary.execute("CREATE TABLE IF NOT EXISTS _status_probe (n int)")
        await primary.execute("INSERT INTO _status_probe VALUES (1)")

        async def behind():
            replica = (await collect(settings)).nodes[1]
            return replica.paused and replica.lag_bytes and replica

        await wait_for(behind, timeout=5)
        first = await behind()

        async def ejected():
            snap = await collect(settings.with_(ops=FAST))
            replica = snap.nodes[1]
            return replica.seen_by == 1 and replica.used_by == 0 and snap

        await wait_for(ejected, timeout=5)
        snap = await ejected()
        replica = snap.nodes[1]
        assert replica.router_lag_s > settings.db.replica_max_lag_s
        assert replica.lag_s > 0 and replica.lag_bytes >= first.lag_bytes
        assert "lag" in replica.router_reason
        assert any(p.startswith("replica-1: lagging") and "replay paused" in p for p in snap.problems)
        print(f"\nreplica-1 lag: {replica.lag_bytes} bytes, router {replica.router_lag_s:.2f}s, direct {replica.lag_s:.2f}s")
    finally:
        launcher.resume_replay()
        await primary.execute("DROP TABLE IF EXISTS _status_probe")
        launcher.wait_replica_caught_up(10)


@pytest.mark.faults
async def test_redis_down_is_a_problem_and_the_rest_is_still_read(settings, launcher):
    launcher.stop_redis()
    try:
        snap = await collect(settings)
    finally:
        launcher.start_redis()
    assert not snap.redis.up and snap.pods == []
    assert snap.nodes[0].reachable and snap.nodes[1].reachable
    assert any(p.startswith("redis: down") for p in snap.problems)


async def test_status_command_exit_codes(stack, make_client, settings, redis_client):
    await make_client(settings.with_(ops=FAST, pod_id="pod-cli"))
    await wait_for(lambda: redis_client.zcard(cache_keys.HEARTBEAT_INDEX))
    code, out = await hmb(stack, "status", "--json", HEARTBEAT_TTL_S="1", HEARTBEAT_INTERVAL_S="0.1")
    report = json.loads(out)
    assert code == 0, report["problems"]
    assert report["healthy"] and [p["id"] for p in report["pods"]] == ["pod-cli"]
    await redis_client.zadd(cache_keys.HEARTBEAT_INDEX, {"pod-gone|7": time.time() - 5})
    code, out = await hmb(stack, "status", HEARTBEAT_TTL_S="1", HEARTBEAT_INTERVAL_S="0.1")
    assert code == 2
    assert "UNHEALTHY" in out and "pod pod-gone: stale" in out and "pod-cli" in out
