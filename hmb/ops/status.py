"""One snapshot of the whole service, for `hmb status` and `hmb dash`.

From Redis: every worker's heartbeat, merged per pod (rates, mergeable latency histograms,
errors, pools, cache counters, query times). Read directly: the primary's
pg_stat_replication, each replica's replay position and delay, and Redis INFO. Every part
fails on its own: a down replica or Redis becomes a problem in the snapshot, not an exception.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg
import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from hmb.config import Settings, mask_url
from hmb.ops.metrics import LogHistogram
from hmb.store import cache_keys
from hmb.store.pg import int_to_lsn

TIMEOUT_S = 1.0
REPLICATION_SQL = """
SELECT application_name, client_addr::text AS client_addr, state, sync_state,
       (pg_current_wal_insert_lsn() - replay_lsn)::bigint AS lag_bytes,
       EXTRACT(EPOCH FROM replay_lag)::float8 AS replay_lag_s
FROM pg_stat_replication ORDER BY application_name
"""
PRIMARY_SQL = "SELECT pg_is_in_recovery() AS recovery, (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint AS lsn"
REPLICA_SQL = """
SELECT pg_is_in_recovery() AS recovery,
       (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint AS lsn,
       pg_is_wal_replay_paused() AS paused,
       EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8 AS since_replay_s
"""


@dataclass
class Worker:
    pod: str
    pid: int
    last_seen: float
    age_s: float
    stale: bool
    beat: dict | None  # the heartbeat itself; None once its key expired

    @property
    def state(self) -> str:
        if self.stale or self.beat is None:
            return "stale"
        return self.beat.get("state", "ready")


@dataclass
class Pod:
    id: str
    state: str  # healthy | draining | starting | degraded (some workers stale) | stale
    workers: list[dict]
    live_workers: int
    requests: int = 0
    rps: float = 0.0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    errors_4xx: int = 0
    errors_5xx: int = 0
    error_rate_5xx: float = 0.0  # of the requests in the window
    in_flight: int = 0
    cpu_percent: float = 0.0
    rss_bytes: int = 0
    uptime_s: float = 0.0


@dataclass
class Node:
    name: str
    role: str  # primary | replica
    url: str
    reachable: bool
    error: str = ""
    lsn: int | None = None
    lag_bytes: int | None = None
    lag_s: float | None = None
    paused: bool = False
    since_replay_s: float | None = None  # since the last replayed commit (replicas)
    # The routers' view, from heartbeats: how many live workers read from it.
    used_by: int = 0
    seen_by: int = 0
    router_lag_s: float | None = None
    router_reason: str = ""
    pool: dict[str, int] = field(default_factory=dict)  # summed over live workers

    @property
    def position(self) -> str:
        return int_to_lsn(self.lsn) if self.lsn is not None else "-"


@dataclass
class RedisInfo:
    up: bool
    error: str = ""
    used_memory: int = 0
    used_memory_human: str = ""
    ops_per_sec: int = 0
    keyspace_hits: int = 0
    keyspace_misses: int = 0
    connected_clients: int = 0


@dataclass
class Snapshot:
    at: float
    pods: list[Pod]
    nodes: list[Node]
    replication: list[dict]
    redis: RedisInfo
    cache: dict[str, dict[str, int]]  # namespace -> {"l1_hit": n, ...}, summed over live workers
    queries: list[dict]  # by total time, merged over live workers
    problems: list[str]
    warnings: list[str]

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["healthy"] = self.healthy
        for node, raw in zip(self.nodes, data["nodes"]):
            raw["position"] = node.position
        return data

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2)


class Collector:
    """Keeps its connections between snapshots (the dashboard asks every second)."""

    def __init__(self, settings: Settings, timeout_s: float = TIMEOUT_S):
        self.settings = settings
        self.timeout_s = timeout_s
        self.redis = aioredis.Redis.from_url(
            settings.redis.url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=None
        )
        self._conns: dict[str, asyncpg.Connection] = {}

    async def close(self) -> None:
        await self.redis.aclose()
        await asyncio.gather(*(c.close(timeout=1) for c in self._conns.values()), return_exceptions=True)
        self._conns.clear()

    async def collect(self) -> Snapshot:
        db = self.settings.db
        urls = [("primary", "primary", db.primary_url)] + [
            (f"replica-{i}", "replica", url) for i, url in enumerate(db.replica_urls, start=1)
        ]
        workers_task = asyncio.ensure_future(self._workers())
        nodes = list(await asyncio.gather(*(self._node(*u) for u in urls)))
        replication = await self._replication(nodes[0])
        workers, redis_error = await workers_task
        redis = await self._redis_info() if redis_error is None else RedisInfo(False, redis_error)
        return build(self.settings, time.time(), workers, nodes, replication, redis)

    # --- Redis: heartbeats and INFO ---

    async def _workers(self) -> tuple[list[Worker], str | None]:
        now = time.time()
        ttl = self.settings.ops.heartbeat_ttl_s
        try:
            async with asyncio.timeout(self.timeout_s * 2):
                index = await self.redis.zrange(cache_keys.HEARTBEAT_INDEX, 0, -1, withscores=True)
                members = [(m.decode().rpartition("|"), score) for m, score in index]
                keys = [cache_keys.heartbeat(pod, int(pid)) for (pod, _, pid), _ in members]
                raw = await self.redis.mget(keys) if keys else []
        except (RedisError, OSError, TimeoutError) as exc:
            return [], _describe(exc)
        workers = []
        for ((pod, _, pid), score), blob in zip(members, raw):
            beat = orjson.loads(blob) if blob else None
            age = max(0.0, now - score)
            workers.append(Worker(pod, int(pid), score, round(age, 3), age > ttl or beat is None, beat))
        return workers, None

    async def _redis_info(self) -> RedisInfo:
        try:
            async with asyncio.timeout(self.timeout_s):
                info = await self.redis.info()
        except (RedisError, OSError, TimeoutError) as exc:
            return RedisInfo(False, _describe(exc))
        return RedisInfo(
            True,
            used_memory=int(info.get("used_memory", 0)),
            used_memory_human=str(info.get("used_memory_human", "")),
            ops_per_sec=int(info.get("instantaneous_ops_per_sec", 0)),
            keyspace_hits=int(info.get("keyspace_hits", 0)),
            keyspace_misses=int(info.get("keyspace_misses", 0)),
            connected_clients=int(info.get("connected_clients", 0)),
        )

    # --- Postgres: each node directly ---

    async def _fetchrow(self, name: str, url: str, sql: str) -> asyncpg.Record:
        try:
            async with asyncio.timeout(self.timeout_s):
                conn = self._conns.get(name)
                if conn is None or conn.is_closed():
                    conn = await asyncpg.connect(url, server_settings={"application_name": "hmb:status"})
                    self._conns[name] = conn
                return await conn.fetchrow(sql)
        except BaseException:
            stale = self._conns.pop(name, None)
            if stale is not None:
                stale.terminate()
            raise

    async def _node(self, name: str, role: str, url: str) -> Node:
        node = Node(name, role, mask_url(url), reachable=False)
        try:
            row = await self._fetchrow(name, url, PRIMARY_SQL if role == "primary" else REPLICA_SQL)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            node.error = _describe(exc)
            return node
        node.reachable = True
        node.lsn = row["lsn"]
        if role == "replica":
            node.paused = bool(row["paused"])
            node.since_replay_s = row["since_replay_s"]
        elif row["recovery"]:
            node.error = "in recovery (not a primary)"
        return node

    async def _replication(self, primary: Node) -> list[dict]:
        if not primary.reachable:
            return []
        try:
            async with asyncio.timeout(self.timeout_s):
                conn = self._conns["primary"]
                return [dict(r) for r in await conn.fetch(REPLICATION_SQL)]
        except (OSError, TimeoutError, KeyError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return []


async def collect(settings: Settings) -> Snapshot:
    """A one-shot snapshot (`hmb status`)."""
    collector = Collector(settings)
    try:
        return await collector.collect()
    finally:
        await collector.close()


def build(
    settings: Settings,
    now: float,
    workers: list[Worker],
    nodes: list[Node],
    replication: list[dict],
    redis: RedisInfo,
) -> Snapshot:
    """Merge the parts and judge them."""
    problems: list[str] = []
    warnings: list[str] = []
    live = [w for w in workers if not w.stale]
    primary = nodes[0]
    for node in nodes[1:]:
        _replica_lag(node, primary)
    _router_view(nodes, live)
    pods = _pods(workers, now)
    db = settings.db
    if not redis.up:
        problems.append(f"redis: down ({redis.error}); pods cannot be seen")
    elif not workers:
        problems.append("no pods are sending heartbeats")
    for pod in pods:
        stale = [w for w in pod.workers if w["state"] == "stale"]
        if pod.state == "stale":
            ages = ", ".join(f"{w['pid']} {w['age_s']:.0f}s" for w in stale)
            problems.append(f"pod {pod.id}: stale, no heartbeat within {settings.ops.heartbeat_ttl_s:g}s ({ages})")
        elif stale:
            warnings.append(f"pod {pod.id}: {len(stale)} worker(s) stopped beating (replaced?)")
        elif pod.state == "draining":
            warnings.append(f"pod {pod.id}: draining")
    if not primary.reachable:
        problems.append(f"primary: unreachable ({primary.error})")
    elif primary.error:
        problems.append(f"primary: {primary.error}")
    for node in nodes[1:]:
        if not node.reachable:
            problems.append(f"{node.name}: unreachable ({node.error})")
            continue
        # The routers time lag against the primary's WAL history; the direct estimate (time since
        # the last replayed commit) overstates it when WAL arrives after an idle spell.
        lag_s = node.router_lag_s if node.seen_by else node.lag_s
        if (lag_s or 0) > db.replica_max_lag_s or (node.lag_bytes or 0) > db.replica_max_lag_bytes:
            paused = ", replay paused" if node.paused else ""
            problems.append(
                f"{node.name}: lagging {lag_s or 0:.1f}s / {node.lag_bytes or 0} bytes "
                f"(limit {db.replica_max_lag_s:g}s / {db.replica_max_lag_bytes} bytes){paused}"
            )
        elif node.seen_by and node.used_by < node.seen_by:
            warnings.append(f"{node.name}: not used by {node.seen_by - node.used_by} worker(s): {node.router_reason}")
    return Snapshot(
        at=round(now, 3),
        pods=pods,
        nodes=nodes,
        replication=replication,
        redis=redis,
        cache=_cache(live),
        queries=_queries(live),
        problems=problems,
        warnings=warnings,
    )


def _replica_lag(node: Node, primary: Node) -> None:
    if not node.reachable:
        return
    if primary.lsn is not None and node.lsn is not None:
        node.lag_bytes = max(0, primary.lsn - node.lsn)
    # Time since the last replayed commit reads an idle replica as behind: count it only when
    # there is WAL left to replay.
    node.lag_s = round(node.since_replay_s or 0.0, 3) if node.lag_bytes else 0.0


def _router_view(nodes: list[Node], live: list[Worker]) -> None:
    for node in nodes:
        for worker in live:
            pool = (worker.beat or {}).get("pools", {}).get(node.name)
            if pool:
                for k, v in pool.items():
                    node.pool[k] = node.pool.get(k, 0) + v
            seen = (worker.beat or {}).get("replicas", {}).get(node.name)
            if seen is None:
                continue
            node.seen_by += 1
            node.used_by += 1 if seen["in_use"] else 0
            node.router_lag_s = max(node.router_lag_s or 0.0, seen["lag_s"])
            if seen["reason"]:
                node.router_reason = seen["reason"]


def _pods(workers: list[Worker], now: float) -> list[Pod]:
    by_pod: dict[str, list[Worker]] = {}
    for w in workers:
        by_pod.setdefault(w.pod, []).append(w)
    pods = []
    for pod_id, members in sorted(by_pod.items()):
        live = [w for w in members if not w.stale]
        window, summary = LogHistogram(), []
        pod = Pod(pod_id, "stale", summary, len(live))
        for w in sorted(members, key=lambda w: w.pid):
            beat = w.beat or {}
            http = beat.get("http", {})
            summary.append(
                {
                    "pid": w.pid,
                    "state": w.state,
                    "age_s": w.age_s,
                    "requests": http.get("requests", 0),
                    "rps": http.get("rps", 0.0),
                    "p95_ms": http.get("p95_ms"),
                    "in_flight": http.get("in_flight", 0),
                }
            )
            if w.stale:
                continue
            window.merge(LogHistogram.from_json(http.get("window", {})))
            status, recent = http.get("status", {}), http.get("window_status", {})
            pod.requests += http.get("requests", 0)
            pod.rps += http.get("rps", 0.0)
            pod.errors_4xx += status.get("4xx", 0)
            pod.errors_5xx += status.get("5xx", 0)
            pod.error_rate_5xx += recent.get("5xx", 0)
            pod.in_flight += http.get("in_flight", 0)
            proc = beat.get("process", {})
            pod.cpu_percent += proc.get("cpu_percent", 0.0)
            pod.rss_bytes += proc.get("rss_bytes", 0)
            pod.uptime_s = max(pod.uptime_s, now - beat.get("started", now))
        pod.rps = round(pod.rps, 2)
        pod.cpu_percent = round(pod.cpu_percent, 1)
        pod.uptime_s = round(pod.uptime_s, 1)
        pod.error_rate_5xx = round(pod.error_rate_5xx / window.total, 4) if window.total else 0.0
        pod.p50_ms, pod.p95_ms, pod.p99_ms = (window.percentile(q) for q in (0.5, 0.95, 0.99))
        states = {w.state for w in live}
        if not live:
            pod.state = "stale"
        elif "draining" in states:
            pod.state = "draining"
        elif len(live) < len(members):
            pod.state = "degraded"
        elif "starting" in states:
            pod.state = "starting"
        else:
            pod.state = "healthy"
        pods.append(pod)
    return pods


def _cache(live: list[Worker]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for w in live:
        for namespace, counts in (w.beat or {}).get("cache", {}).items():
            merged = out.setdefault(namespace, {})
            for k, n in counts.items():
                merged[k] = merged.get(k, 0) + n
    return dict(sorted(out.items()))


def _queries(live: list[Worker]) -> list[dict]:
    merged: dict[str, LogHistogram] = {}
    for w in live:
        for name, data in (w.beat or {}).get("queries", {}).items():
            merged.setdefault(name, LogHistogram()).merge(LogHistogram.from_json(data))
    rows = [
        {
            "name": name,
            "calls": h.total,
            "total_ms": round(h.sum_ms, 3),
            "mean_ms": h.mean_ms,
            "p95_ms": h.percentile(0.95),
            "max_ms": round(h.max_ms, 3),
        }
        for name, h in merged.items()
    ]
    return sorted(rows, key=lambda r: r["total_ms"], reverse=True)


def hit_rate(counts: dict[str, int], level: str) -> float | None:
    hits, misses = counts.get(f"{level}_hit", 0), counts.get(f"{level}_miss", 0)
    return hits / (hits + misses) if hits + misses else None


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:160] if text else type(exc).__name__
