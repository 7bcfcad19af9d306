"""Faults under a mixed load through haproxy: nothing acknowledged is lost, nothing hangs."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.conftest import assert_nothing_lost, scaled

pytestmark = pytest.mark.faults


async def in_thread(fn, *args):
    return await asyncio.to_thread(fn, *args)


async def test_replica_stopped_then_started(run_fault, launcher):
    hold = scaled(10)

    async def fault() -> float:
        started = time.monotonic()
        try:
            await in_thread(launcher.stop_replica)
            await asyncio.sleep(hold)  # the fault's deliberate duration
        finally:
            await in_thread(launcher.start_replica)
        return time.monotonic() - started

    result = await run_fault("replica stop/start", fault)
    assert_nothing_lost(result)
    # Reads fall back to the primary (retried once on a dropped connection): nothing fails.
    assert result.window_errors == 0, result.statuses


async def test_replica_replay_paused(run_fault, launcher):
    hold = scaled(30)

    async def fault() -> float:
        started = time.monotonic()
        await in_thread(launcher.pause_replay)
        try:
            await asyncio.sleep(hold)
        finally:
            await in_thread(launcher.resume_replay)
        return time.monotonic() - started

    result = await run_fault("replica replay paused", fault)
    assert_nothing_lost(result)
    # The lagging replica is ejected, reads with a read position skip it: no errors, no stale reads.
    assert result.window_errors == 0, result.statuses


async def test_redis_stopped_then_started(run_fault, launcher):
    hold = scaled(20)

    async def fault() -> float:
        started = time.monotonic()
        await in_thread(launcher.stop_redis)
        try:
            await asyncio.sleep(hold)
        finally:
            await in_thread(launcher.start_redis)
        return time.monotonic() - started

    result = await run_fault("redis stop/start", fault)
    assert_nothing_lost(result)
    # The cache is bypassed behind its breaker; /ready says degraded but keeps every pod in rotation.
    assert result.window_errors == 0, result.statuses


async def test_primary_restarted(run_fault, launcher):
    async def fault() -> float:
        started = time.monotonic()
        try:
            await in_thread(launcher.stop_primary, "fast")
        finally:
            await in_thread(launcher.start_primary)
        return time.monotonic() - started

    result = await run_fault("primary restart (fast)", fault)
    assert_nothing_lost(result)
    failed = [r for r in result.window if not r.ok]
    # Writes while it is down fail fast with 503 (and Retry-After); reads go on from the replica.
    assert {r.status for r in failed} <= {503}, result.statuses
    assert max((r.elapsed for r in failed), default=0) < 3.0
    # ...and the pools recovered by themselves: run_fault waited for 20 successes in a row.


async def test_worker_sigkilled(run_fault, pods):
    async def fault() -> float:
        started = time.monotonic()
        before = set(pods.worker_pids("pod-1"))
        pods.kill_worker("pod-1")

        async def replaced() -> bool:
            now = set(pods.worker_pids("pod-1"))
            return len(now) == len(before) and now != before

        while not await replaced():
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    result = await run_fault("worker SIGKILL", fault)
    assert_nothing_lost(result)


async def test_pod_sigkilled(run_fault, pods):
    async def fault() -> float:
        started = time.monotonic()
        pods.kill_pod("pod-2")
        await in_thread(pods.wait_state, "pod-2", "DOWN", 10)
        await in_thread(pods.start_pod, "pod-2")  # back in rotation once /ready passes its checks
        return time.monotonic() - started

    result = await run_fault("pod SIGKILL", fault)
    assert_nothing_lost(result)


async def test_rolling_restart(run_fault, pods):
    async def fault() -> float:
        started = time.monotonic()
        for pod in pods.info.pods:
            await in_thread(pods.stop_pod, pod.name)  # SIGTERM: /ready 503, drain, exit
            await in_thread(pods.start_pod, pod.name)  # returns once haproxy has it UP again
        return time.monotonic() - started

    result = await run_fault("rolling restart (SIGTERM)", fault)
    assert_nothing_lost(result)
    assert result.window_errors == 0, result.statuses


async def test_hup_reload(run_fault, pods):
    async def fault() -> float:
        started = time.monotonic()
        before = set(pods.worker_pids("pod-1"))
        pods.hup("pod-1")

        async def replaced() -> bool:  # new workers up, every old one drained and gone
            now = set(pods.worker_pids("pod-1"))
            return len(now) == len(before) and not now & before

        while not await replaced():
            await asyncio.sleep(0.05)
        await in_thread(pods.wait_state, "pod-1", "UP", 10)
        return time.monotonic() - started

    result = await run_fault("HUP reload", fault)
    assert_nothing_lost(result)
    assert result.window_errors == 0, result.statuses
