"""GET /metrics: Prometheus text for the whole pod (every worker's series, in multiprocess mode)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from hmb.appkeys import ACCESS_LOG, CACHE, DB, LIFECYCLE, METRICS, REDIS
from hmb.ops.metrics import CONTENT_TYPE_LATEST


async def metrics(request: web.Request) -> web.Response:
    app = request.app
    collector = app[METRICS]
    app[ACCESS_LOG].drain()  # the requests finished since the last batch, counted now
    collector.sample(app[DB], app[CACHE], app[REDIS], app[LIFECYCLE].in_flight)  # this worker's gauges, fresh; the others' are ≤ one beat old
    # Reading every worker's files is blocking I/O: keep it off the event loop.
    body = await asyncio.to_thread(collector.render) if collector.directory else collector.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
