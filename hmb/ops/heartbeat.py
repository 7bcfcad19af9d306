"""Each worker's heartbeat: every few seconds, a compact JSON snapshot to Redis with a TTL.

An operator (`hmb status`, `hmb dash`) sees every pod without reaching any of them: it reads
the sorted-set index (member "pod|pid", score = time of the last beat) and the workers' keys.
No KEYS or SCAN anywhere. A worker that stops cleanly removes itself; one that dies stops
beating, so the index shows it stale until it is forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import AsyncIterator

import orjson
import psutil
from aiohttp import web

from hmb.appkeys import ACCESS_LOG, CACHE, DB, LIFECYCLE, METRICS, REDIS, SETTINGS
from hmb.ops.metrics import LogHistogram, Metrics
from hmb.store import cache_keys
from hmb.store.redis import RedisDown

log = logging.getLogger("hmb.heartbeat")

VERSION = 1
WINDOW_BEATS = 5  # rates and percentiles cover the last few beats (~10 s at the default interval)
TOP_QUERIES = 12


class Heartbeat:
    """Builds this worker's snapshot and publishes it; also refreshes the sampled metrics."""

    def __init__(self, app: web.Application, metrics: Metrics):
        self.app = app
        self.metrics = metrics
        self.settings = app[SETTINGS]
        self.pid = os.getpid()
        self.pod = self.settings.pod_id
        self.started = time.time()
        self.process = psutil.Process(self.pid)
        self.process.cpu_percent(None)  # the first call only sets the baseline
        # (monotonic time, cumulative latency, cumulative status classes) at each recent beat
        self._history: deque[tuple[float, LogHistogram, list[int]]] = deque(maxlen=WINDOW_BEATS + 1)
        self._history.append((time.monotonic(), LogHistogram(), [0] * 6))
        # Stopping is a flag, not only a cancel: redis-py 8.1 can swallow a CancelledError that
        # lands inside a call (seen here), which would leave a cancelled loop running forever.
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        interval = self.settings.ops.heartbeat_interval_s
        while not self.stopping.is_set():
            try:
                await self.beat()
            except Exception:  # noqa: BLE001 - a bug here must not stop future beats
                log.exception("heartbeat failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), interval)

    async def beat(self) -> None:
        app = self.app
        app[ACCESS_LOG].drain()  # the requests finished since the last batch, counted now
        self.metrics.sample(app[DB], app[CACHE], app[REDIS], app[LIFECYCLE].in_flight)
        snapshot = self.snapshot()
        try:
            await app[REDIS].call(lambda r: _publish(r, self.pod, self.pid, snapshot, self.settings.ops))
        except RedisDown as exc:
            log.debug("heartbeat not published", extra={"error": str(exc)})

    def snapshot(self) -> dict:
        app = self.app
        stats = self.metrics.stats
        now, now_mono = time.time(), time.monotonic()
        latency, by_class = stats.latency.copy(), stats.by_class.copy()
        then, old_latency, old_class = self._history[0]
        self._history.append((now_mono, latency, by_class))
        window = latency.minus(old_latency)
        span = max(now_mono - then, 1e-6)
        life, db, cache, redis = app[LIFECYCLE], app[DB], app[CACHE], app[REDIS]
        with self.process.oneshot():
            cpu, rss = self.process.cpu_percent(None), self.process.memory_info().rss
        return {
            "v": VERSION,
            "pod": self.pod,
            "pid": self.pid,
            "started": round(self.started, 3),
            "at": round(now, 3),
            "interval_s": self.settings.ops.heartbeat_interval_s,
            "state": "draining" if life.draining else "ready" if life.started else "starting",
            "http": {
                "requests": latency.total,
                "in_flight": life.in_flight,
                "window_s": round(span, 3),
                "rps": round(window.total / span, 2),
                "p50_ms": window.percentile(0.50),
                "p95_ms": window.percentile(0.95),
                "p99_ms": window.percentile(0.99),
                "window": window.to_json(),
                "status": {f"{i}xx": n for i, n in enumerate(by_class) if i and n},
                "window_status": {f"{i}xx": n - o for i, (n, o) in enumerate(zip(by_class, old_class)) if n - o},
            },
            "process": {"cpu_percent": cpu, "rss_bytes": rss},
            "pools": db.pool_stats(),
            "replicas": {
                r.name: {
                    "in_use": r.in_use,
                    "reachable": r.reachable,
                    "replay_lsn": r.replay_lsn,
                    "lag_bytes": r.lag_bytes,
                    "lag_s": round(r.lag_s, 3),
                    "reason": r.reason,
                }
                for r in db.replicas
            },
            "primary": {"reachable": db.primary.reachable},
            "cache": cache.stats(),
            "redis": {"breaker": redis.breaker.state, "errors": redis.breaker.errors_total},
            "queries": _top_queries(stats.queries),
        }

    async def remove(self) -> None:
        """A clean exit leaves no stale entry behind."""
        member = cache_keys.heartbeat_member(self.pod, self.pid)
        key = cache_keys.heartbeat(self.pod, self.pid)
        with contextlib.suppress(RedisDown):
            await self.app[REDIS].call(lambda r: _remove(r, key, member))


def _top_queries(queries: dict[str, LogHistogram]) -> dict[str, dict]:
    """The queries with the most total time since the worker started."""
    top = sorted(queries.items(), key=lambda item: item[1].sum_ms, reverse=True)[:TOP_QUERIES]
    return {name: hist.to_json() for name, hist in top}


async def _publish(client, pod: str, pid: int, snapshot: dict, ops) -> None:
    now = snapshot["at"]
    async with client.pipeline(transaction=False) as pipe:
        pipe.set(cache_keys.heartbeat(pod, pid), orjson.dumps(snapshot), px=int(ops.heartbeat_ttl_s * 1000))
        pipe.zadd(cache_keys.HEARTBEAT_INDEX, {cache_keys.heartbeat_member(pod, pid): now})
        pipe.zremrangebyscore(cache_keys.HEARTBEAT_INDEX, "-inf", now - ops.heartbeat_forget_s)
        pipe.expire(cache_keys.HEARTBEAT_INDEX, int(ops.heartbeat_forget_s * 2))
        await pipe.execute()


async def _remove(client, key: str, member: str) -> None:
    async with client.pipeline(transaction=False) as pipe:
        pipe.delete(key)
        pipe.zrem(cache_keys.HEARTBEAT_INDEX, member)
        await pipe.execute()


async def heartbeat_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: wire the query timer, beat until the worker stops, then say goodbye."""
    metrics = app[METRICS]
    app[DB].on_query = metrics.stats.query
    heart = Heartbeat(app, metrics)
    task = asyncio.get_running_loop().create_task(heart.run())
    yield
    heart.stopping.set()
    task.cancel()
    await asyncio.wait([task], timeout=heart.settings.ops.heartbeat_interval_s + 1)
    await heart.remove()
