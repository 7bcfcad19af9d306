"""An open-loop client at a fixed rate: latency from each request's *scheduled* send time.

Closed-loop wrk at saturation measures queueing; this measures what a caller sees at a given
load (here the seed's per-pod 500 req/s), without coordinated omission: a stall delays every
request scheduled behind it and they all count.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time

import aiohttp

CONNECTIONS = 64


async def paced(base: str, requests: list[tuple[str, str, dict, str | None]], rate: float, seconds: float) -> dict:
    total = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(base, connector=connector) as session:
        # Connections are opened before the clock starts: otherwise the first ~0.2 s measure
        # this client's own start-up (seen: p99 0.2-1 s).
        await asyncio.gather(*(_warm(session) for _ in range(CONNECTIONS)))

        async def one(when: float, method: str, path: str, headers: dict, body: str | None) -> None:
            nonlocal errors
            try:
                async with session.request(method, path, headers=headers, data=body) as response:
                    await response.read()
                    if response.status >= 400:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - when)

        # Each request's task is made at its send time, by one schedule loop: made all at once
        # up front, the 20,000 tasks' first steps ran together when the clock started and
        # delayed the first second's sends (seen: the paced mix's p99 0.4-0.9 s at 2,000 req/s).
        # A schedule that falls behind sends at once and counts the delay (no coordinated omission).
        picks = [random.choice(requests) for _ in range(total)]
        tasks: list[asyncio.Future] = []
        # No cyclic GC while measuring: a collection over thousands of live tasks would pause
        # this client's own schedule and be counted as the server's latency.
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter() + 0.05
            for i, request in enumerate(picks):
                when = start + i / rate
                delay = when - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.ensure_future(one(when, *request)))
            await asyncio.gather(*tasks)
            elapsed = time.perf_counter() - start
        finally:
            gc.enable()
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1e3

    return {"requests": total, "rate": total / elapsed, "errors": errors, "p50": pct(50), "p95": pct(95),
            "p99": pct(99), "max": latencies[-1] * 1e3}


async def _warm(session: aiohttp.ClientSession) -> None:
    async with session.get("/health") as response:
        await response.read()
