"""The balancer idle race: a pod keep-alive shorter than the balancer's idle time makes 502s.

haproxy keeps idle connections to the pods for reuse (http-reuse always, like a cloud balancer's
pool) and a relay puts 10 ms of network between them. A pod that closes an idle connection at
the moment the balancer sends a request on it answers nothing: the balancer says 502. With the
shipped keep-alive (gunicorn.conf.py, 75 s) the balancer always gives a connection up first
(its idle limit is 60 s), so the race cannot happen.
"""

from __future__ import annotations

import asyncio
import os
import random
import runpy
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from hmb.appkeys import LIFECYCLE
from hmb.ops import pods as pods_mod
from hmb.ops.pods import Pods, haproxy_available
from tests.conftest import TEST_ENV
from tests.faults.conftest import IDLE_RACE
from tests.faults.relay import DelayRelay

pytestmark = pytest.mark.faults

CLIENTS, DURATION_S, SHORT_KEEPALIVE_S, LATENCY_S = 40, 4.0, 1, 0.01


def shipped_keepalive(monkeypatch) -> int:
    """gunicorn.conf.py's keep-alive when nothing overrides it."""
    monkeypatch.delenv("KEEPALIVE_S", raising=False)
    return runpy.run_path(str(Path(pods_mod.__file__).resolve().parents[2] / "gunicorn.conf.py"))["keepalive"]


async def drive(url: str) -> Counter:
    """Clients on fresh connections, each returning about every SHORT_KEEPALIVE_S: the balancer
    hands their requests to pod connections idle for about that long."""
    counts: Counter = Counter()

    async def client(i: int) -> None:
        rng = random.Random(i)
        connector = aiohttp.TCPConnector(force_close=True)  # every request is a new client connection
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as s:
            started = time.monotonic()
            while time.monotonic() - started < DURATION_S:
                try:
                    async with s.get(url + "/health") as resp:
                        await resp.read()
                        counts[resp.status] += 1
                except aiohttp.ClientError as exc:
                    counts[type(exc).__name__] += 1
                await asyncio.sleep(SHORT_KEEPALIVE_S + rng.uniform(-0.03, 0.03))  # the client's think time

    await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    return counts


async def run_topology(stack, tmp_path, keepalive: int | None) -> Counter:
    env = {**os.environ, **TEST_ENV, **stack.env()}
    env.pop("KEEPALIVE_S", None)
    extra = {} if keepalive is None else {"KEEPALIVE_S": str(keepalive)}
    relay = DelayRelay(LATENCY_S)
    topology = Pods(tmp_path / f"ka-{keepalive}", env=env, workers=1, extra_env=extra, reuse="always",
                    upstream=relay.forward)
    try:
        await asyncio.to_thread(topology.up, 1)
        return await drive(topology.info.url)
    finally:
        await asyncio.to_thread(topology.down)
        relay.close()


async def test_short_keepalive_makes_502s_and_the_shipped_one_does_not(stack, tmp_path, monkeypatch):
    if not haproxy_available():
        pytest.skip("haproxy is not installed")
    shipped = shipped_keepalive(monkeypatch)
    assert shipped > pods_mod.LB_IDLE_S, "the pods' keep-alive must outlast the balancer's idle connections"

    short = await run_topology(stack, tmp_path, SHORT_KEEPALIVE_S)
    fixed = await run_topology(stack, tmp_path, None)
    IDLE_RACE.extend([(f"keepalive {SHORT_KEEPALIVE_S}s < balancer idle {pods_mod.LB_IDLE_S}s", short),
                      (f"keepalive {shipped}s (shipped)", fixed)])
    print(f"\nidle race: keepalive {SHORT_KEEPALIVE_S}s -> {dict(short)}; shipped {shipped}s -> {dict(fixed)}")
    assert short[502] > 0, f"expected the race to show with a {SHORT_KEEPALIVE_S}s keep-alive: {short}"
    assert set(fixed) == {200}, fixed


async def test_a_draining_worker_closes_each_connection_after_its_answer(client):
    """During a HUP the pod stays in rotation, so its balancer keeps reusing the old workers'
    connections: a draining worker must not hand any back, or closing it at exit races a request."""
    assert (await client.get("/health")).headers.get("Connection", "").lower() != "close"
    client.app[LIFECYCLE].draining = True
    response = await client.get("/health")
    assert response.status == 200 and response.headers["Connection"].lower() == "close"
