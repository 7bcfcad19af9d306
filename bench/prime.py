"""Load each distinct read of a scenario once, a few at a time, before wrk's warm-up.

A scenario's first closed-loop window puts wrk's 64 connections on pages that are all cold at
once: 500 readers' feed pages at ~26 ms of PostgreSQL each queue behind the 2 workers' 16
replica connections, and on a slow machine some wait past the pool's 2 s acquire timeout and are
shed (`503` + `Retry-After`, as designed). That measures a cold-start stampede, not the cached
read the scenario is about; the paced mix's "cold" run measures a cold start at a steady rate.
"""

from __future__ import annotations

import asyncio

import aiohttp

CONCURRENCY = 16  # the served pod's replica connections: 2 workers x DB_POOL_MAX 8


async def prime(base: str, requests: list[tuple[str, str, dict, str | None]]) -> int:
    """GET each distinct (path, headers) once; returns how many failed."""
    distinct = {(path, tuple(sorted((headers or {}).items()))) for method, path, headers, _ in requests if method == "GET"}
    errors = 0

    async def one(session: aiohttp.ClientSession, path: str, headers: tuple) -> None:
        nonlocal errors
        try:
            async with session.get(path, headers=dict(headers)) as response:
                await response.read()
                if response.status >= 400:
                    errors += 1
        except aiohttp.ClientError:
            errors += 1

    # The connector's limit is the gate: a request past it waits for one of its connections.
    async with aiohttp.ClientSession(base, connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:
        await asyncio.gather(*(one(session, path, headers) for path, headers in distinct))
    return errors
