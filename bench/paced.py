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
        # Connections are opened, and every request's task created, before the clock starts:
        # otherwise the first ~0.2 s measure this client's own start-up (seen: p99 0.2-1 s).
        await asyncio.gather(*(_warm(session) for _ in range(CONNECTIONS)))
        clock = {"start": 0.0}

        async def one(offset: float, method: str, path: str, headers: dict, body: str | None) -> None:
            nonlocal errors
            when = clock["start"] + offset
            delay = when - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                async with session.request(method, path, headers=headers, data=body) as response:
                    await response.read()
                    if response.status >= 400:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - when)

        tasks = [asyncio.ensure_future(one(i / rate, *random.choice(requests))) for i in range(total)]
        # No cyclic GC while measuring: a collection over tens of thousands of live tasks would
        # pause this client's own schedule and be counted as the server's latency.
        gc.collect()
        gc.disable()
        try:
            clock["start"] = time.perf_counter() + 0.05
            await asyncio.gather(*tasks)
            elapsed = time.perf_counter() - clock["start"]
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
