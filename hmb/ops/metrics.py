"""Per-worker metrics: Prometheus series for /metrics and the mergeable stats the heartbeat publishes.

Under gunicorn, `PROMETHEUS_MULTIPROC_DIR` (set by `hmb serve` before gunicorn starts, wiped in
`on_starting`) puts every worker's values in files that any worker sums at scrape time, so one
scrape shows the whole pod. The request path only adds to plain-Python tallies; they, and the
sampled values (in-flight, pools, lag, cache counters, breaker), are written into the series by each
worker's heartbeat loop and before a scrape, because the scraping worker cannot see another
worker's memory: other workers' figures are as fresh as their last beat.
"""

from __future__ import annotations

import bisect
import math
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from hmb.store.cache import Cache
    from hmb.store.redis import Redis
    from hmb.store.router import Databases

__all__ = ["CONTENT_TYPE_LATEST", "LogHistogram", "Metrics", "WorkerStats", "multiprocess_dir"]

# Latency buckets for the Prometheus histogram (seconds): few, since each route multiplies them.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class LogHistogram:
    """Counts in fixed log-spaced buckets (8 per doubling, 0.01 ms to ~100 s), so histograms from
    any worker or pod merge by adding counts. A percentile is off by at most ~4.5 %.
    """

    PER_OCTAVE = 8
    FLOOR_MS = 0.01
    SIZE = PER_OCTAVE * 24  # 0.01 ms * 2**24 ≈ 168 s; slower lands in the last bucket

    __slots__ = ("counts", "total", "sum_ms", "max_ms")

    def __init__(self) -> None:
        self.counts = [0] * self.SIZE
        self.total = 0
        self.sum_ms = 0.0
        self.max_ms = 0.0

    def add(self, ms: float) -> None:
        self.add_many((ms,))

    def add_many(self, values_ms: Iterable[float]) -> None:
        counts, floor, per_octave, last, log2 = self.counts, self.FLOOR_MS, self.PER_OCTAVE, self.SIZE - 1, math.log2
        n, total, top = 0, 0.0, self.max_ms
        for ms in values_ms:
            i = int(log2(ms / floor) * per_octave) if ms > floor else 0
            counts[i if i < last else last] += 1
            n += 1
            total += ms
            if ms > top:
                top = ms
        self.total += n
        self.sum_ms += total
        self.max_ms = top

    def copy(self) -> LogHistogram:
        other = LogHistogram()
        other.counts = self.counts.copy()
        other.total, other.sum_ms, other.max_ms = self.total, self.sum_ms, self.max_ms
        return other

    def minus(self, earlier: LogHistogram) -> LogHistogram:
        """What was added since `earlier` (a copy of this histogram); max is since the start."""
        out = LogHistogram()
        out.counts = [a - b for a, b in zip(self.counts, earlier.counts)]
        out.total, out.sum_ms, out.max_ms = self.total - earlier.total, self.sum_ms - earlier.sum_ms, self.max_ms
        return out

    def merge(self, other: LogHistogram) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts)]
        self.total += other.total
        self.sum_ms += other.sum_ms
        self.max_ms = max(self.max_ms, other.max_ms)

    def percentile(self, q: float) -> float | None:
        """The q-quantile (0..1) in ms: the geometric middle of the bucket that holds it."""
        if self.total <= 0:
            return None
        rank, seen = q * self.total, 0
        for i, n in enumerate(self.counts):
            seen += n
            if n and seen >= rank:
                return round(self.FLOOR_MS * 2 ** ((i + 0.5) / self.PER_OCTAVE), 3)
        return round(self.max_ms, 3)

    @property
    def mean_ms(self) -> float | None:
        return round(self.sum_ms / self.total, 3) if self.total else None

    def to_json(self) -> dict:
        """Compact: only the non-empty buckets, as {"index": count}."""
        return {
            "n": self.total,
            "sum_ms": round(self.sum_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "b": {str(i): c for i, c in enumerate(self.counts) if c},
        }

    @classmethod
    def from_json(cls, data: dict) -> LogHistogram:
        out = cls()
        for i, c in data.get("b", {}).items():
            if 0 <= int(i) < cls.SIZE:
                out.counts[int(i)] = c
        out.total = data.get("n", sum(out.counts))
        out.sum_ms = data.get("sum_ms", 0.0)
        out.max_ms = data.get("max_ms", 0.0)
        return out


class WorkerStats:
    """Cumulative, plain-Python counters the heartbeat turns into windows (no locks, no I/O).

    Requests are counted into `latency` and `by_class` by Metrics.finished, in the same pass
    over a batch that tallies the Prometheus series.
    """

    def __init__(self) -> None:
        self.latency = LogHistogram()
        self.by_class = [0] * 6  # index status // 100: 1xx..5xx
        self.queries: dict[str, LogHistogram] = {}

    def query(self, name: str, seconds: float) -> None:
        hist = self.queries.get(name)
        if hist is None:
            hist = self.queries[name] = LogHistogram()
        hist.add(seconds * 1000)


class _Tally:
    """Requests of one (route, method, status) since the last sample: plain ints, no locks, no mmap."""

    __slots__ = ("counter", "histogram", "count", "seconds", "buckets")

    def __init__(self, counter, histogram) -> None:
        self.counter, self.histogram = counter, histogram
        self.count, self.seconds = 0, 0.0
        self.buckets = [0] * (len(HTTP_BUCKETS) + 1)  # the last one is +Inf


def observe_many(histogram, buckets: list[int], total: float) -> None:
    """What `observe()` does per value, for many values at once: prometheus_client has no bulk
    observe. Its per-bucket values are not public; tests/ops/test_metrics.py checks the exposition."""
    histogram._sum.inc(total)
    for i, n in enumerate(buckets):
        if n:
            histogram._buckets[i].inc(n)


class Metrics:
    """One per worker (one per app). In multiprocess mode the series live in mmap files;
    otherwise in a private registry, so several apps in one process (tests) never collide.
    """

    def __init__(self) -> None:
        self.directory = multiprocess_dir()
        self.registry = None if self.directory else CollectorRegistry(auto_describe=True)
        self.stats = WorkerStats()
        r = self.registry
        self.requests = Counter(
            "hmb_http_requests", "HTTP requests by route, method and status", ["route", "method", "status"], registry=r
        )
        self.duration = Histogram(
            "hmb_http_request_duration_seconds", "HTTP request latency by route", ["route"], buckets=HTTP_BUCKETS, registry=r
        )
        self.in_flight = Gauge(
            "hmb_http_in_flight", "Requests being handled now", registry=r, multiprocess_mode="livesum"
        )
        node = ["node"]
        self.pool_connections = Gauge(
            "hmb_db_pool_connections", "Pool connections by state (in_use, idle)", ["node", "state"], registry=r,
            multiprocess_mode="livesum",
        )
        self.pool_max = Gauge(
            "hmb_db_pool_max_connections", "Pool size limit, summed over workers", node, registry=r,
            multiprocess_mode="livesum",
        )
        self.pool_waiting = Gauge(
            "hmb_db_pool_waiting", "Tasks waiting to acquire a connection (counted by hmb)", node, registry=r,
            multiprocess_mode="livesum",
        )
        replica = ["replica"]
        self.lag_seconds = Gauge(
            "hmb_replica_lag_seconds", "Replica replay lag seen by the router (worst worker)", replica, registry=r,
            multiprocess_mode="livemax",
        )
        self.lag_bytes = Gauge(
            "hmb_replica_lag_bytes", "Replica replay lag in WAL bytes (worst worker)", replica, registry=r,
            multiprocess_mode="livemax",
        )
        self.replica_in_use = Gauge(
            "hmb_replica_in_use", "1 if every worker's router reads from this replica", replica, registry=r,
            multiprocess_mode="livemin",
        )
        self.cache_requests = Counter(
            "hmb_cache_requests", "Cache lookups by namespace, level and outcome", ["namespace", "level", "outcome"],
            registry=r,
        )
        self.breaker_open = Gauge(
            "hmb_redis_breaker_open", "1 while a worker's Redis circuit breaker is open", registry=r,
            multiprocess_mode="livemax",
        )
        self.redis_errors = Counter("hmb_redis_errors", "Failed Redis calls", registry=r)
        self.db_queries = Counter("hmb_db_queries", "Database calls by query name", ["query"], registry=r)
        self.db_seconds = Counter(
            "hmb_db_query_seconds", "Time in database calls by query name (acquire included)", ["query"], registry=r
        )
        self._tallies: dict[tuple[str | None, str, int], _Tally] = {}
        self._synced_cache: dict[tuple[str, str, str], int] = {}
        self._synced_queries: dict[str, tuple[int, float]] = {}
        self._synced_redis_errors = 0

    # --- the request path: requests arrive in batches from the access log's records ---

    def finished(self, records: list[tuple]) -> None:
        """Tally finished requests: (at, request_id, method, raw_path, route, status, seconds, db, remote).

        One pass for both the Prometheus series and the worker's own stats, not one each.
        """
        tallies, bisect_left = self._tallies, bisect.bisect_left
        by_class, latency_ms = self.stats.by_class, []
        for _, _, method, _, route, status, seconds, _, _ in records:
            tally = tallies.get((route, method, status))
            if tally is None:
                tally = tallies[(route, method, status)] = _Tally(*self._label(route, method, status))
            tally.count += 1
            tally.seconds += seconds
            tally.buckets[bisect_left(HTTP_BUCKETS, seconds)] += 1
            by_class[status // 100 if 100 <= status < 600 else 5] += 1
            latency_ms.append(seconds * 1000)
        self.stats.latency.add_many(latency_ms)

    def _label(self, route: str | None, method: str, status: int) -> tuple:
        # Unrouted paths share one label, so scanners cannot grow the series without bound.
        route = route or "unmatched"
        method = method if method in METHODS else "other"
        return self.requests.labels(route, method, str(status)), self.duration.labels(route)

    def _sync_requests(self) -> None:
        """Move the requests tallied since the last sample into the Prometheus series."""
        for tally in self._tallies.values():
            if tally.count:
                tally.counter.inc(tally.count)
                observe_many(tally.histogram, tally.buckets, tally.seconds)
                tally.count, tally.seconds, tally.buckets = 0, 0.0, [0] * len(tally.buckets)

    # --- sampled values, written by this worker's heartbeat loop and before a scrape ---

    def sample(self, db: Databases | None, cache: Cache | None, redis: Redis | None, in_flight: int = 0) -> None:
        self._sync_requests()
        self.in_flight.set(in_flight)
        if db is not None:
            for node in db.nodes:
                size, idle = node.pool.get_size(), node.pool.get_idle_size()
                self.pool_connections.labels(node.name, "in_use").set(size - idle)
                self.pool_connections.labels(node.name, "idle").set(idle)
                self.pool_max.labels(node.name).set(node.pool.get_max_size())
                self.pool_waiting.labels(node.name).set(node.waiting)
            for node in db.replicas:
                self.lag_seconds.labels(node.name).set(node.lag_s)
                self.lag_bytes.labels(node.name).set(node.lag_bytes)
                self.replica_in_use.labels(node.name).set(1 if node.in_use else 0)
        if cache is not None:
            self._sync_counts(cache.counts.items())
        if redis is not None:
            self.breaker_open.set(0 if redis.breaker.state == "closed" else 1)
            errors = redis.breaker.errors_total
            if errors > self._synced_redis_errors:
                self.redis_errors.inc(errors - self._synced_redis_errors)
            self._synced_redis_errors = errors
        for name, hist in list(self.stats.queries.items()):
            calls, seconds = self._synced_queries.get(name, (0, 0.0))
            if hist.total > calls:
                self.db_queries.labels(name).inc(hist.total - calls)
                self.db_seconds.labels(name).inc((hist.sum_ms / 1000) - seconds)
                self._synced_queries[name] = (hist.total, hist.sum_ms / 1000)

    def _sync_counts(self, counts: Iterable[tuple[tuple[str, str, str], int]]) -> None:
        for key, n in counts:
            before = self._synced_cache.get(key, 0)
            if n > before:
                self.cache_requests.labels(*key).inc(n - before)
                self._synced_cache[key] = n

    # --- exposition ---

    def render(self) -> bytes:
        """The text format; in multiprocess mode a fresh registry sums every worker's files."""
        if self.directory:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.directory)
            return generate_latest(registry)
        return generate_latest(self.registry)
