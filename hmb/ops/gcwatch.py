"""Log the garbage collector's long pauses: a full collection stops every request of its worker."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web

log = logging.getLogger("hmb.gc")
SLOW_S = 0.02  # a pause this long shows in every in-flight request's latency


class GcWatch:
    def __init__(self) -> None:
        self._started = 0.0
        self.slow = 0  # pauses over SLOW_S since the worker started

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        paused = time.perf_counter() - self._started
        if paused >= SLOW_S:
            self.slow += 1
            log.warning("slow garbage collection", extra={
                "generation": info["generation"], "ms": round(paused * 1000, 1), "collected": info["collected"],
            })


async def gc_watch_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: watch this worker's collections while the app runs."""
    watch = GcWatch()
    gc.callbacks.append(watch)
    yield
    gc.callbacks.remove(watch)
