"""`hmb cache flush NAMESPACE|--all` and `hmb cache stats`.

Flushing walks the namespace with an incremental SCAN (Redis stays responsive: no KEYS),
UNLINKs in batches, then broadcasts the L1 drop to every worker of every pod. It runs here,
in the operator's process, never on a request path.
"""

from __future__ import annotations

import asyncio
import sys

import click
import redis.asyncio as aioredis

from hmb.ops.cli import ExitStatus, settings_or_exit
from hmb.store import cache_keys

BATCH = 500
# Generation counters are not a namespace of their own to flush: resetting them alone would
# bring back entries of an old generation. `--all` drops them with everything they name.
FLUSHABLE = tuple(ns for ns in cache_keys.TTL if ns != "gen")


async def flush(client: aioredis.Redis, namespaces: list[str] | None) -> int:
    """Delete every key of the namespaces (None: every cache namespace, generations and locks);
    returns how many were deleted. The L1 drop is broadcast after the L2 delete."""
    if namespaces is None:
        patterns = [cache_keys.namespace_pattern(ns) for ns in [*cache_keys.TTL, "lock"]]
        drops = ["*"]
    else:
        patterns = [cache_keys.namespace_pattern(ns) for ns in namespaces]
        # A refresh lock is named after its key: drop the namespace's locks too.
        patterns += [cache_keys.namespace_pattern(f"lock:{cache_keys.PREFIX}:{ns}") for ns in namespaces]
        drops = [cache_keys.namespace_pattern(ns) for ns in namespaces]
    deleted = 0
    for pattern in patterns:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=pattern, count=BATCH):
            batch.append(key)
            if len(batch) >= BATCH:
                deleted += await client.unlink(*batch)
                batch.clear()
        if batch:
            deleted += await client.unlink(*batch)
    await client.publish(cache_keys.INVALIDATION_CHANNEL, "\n".join(drops))
    return deleted


async def count_keys(client: aioredis.Redis, namespace: str) -> int:
    n = 0
    async for _ in client.scan_iter(match=cache_keys.namespace_pattern(namespace), count=BATCH):
        n += 1
    return n


def _client(settings) -> aioredis.Redis:
    return aioredis.Redis.from_url(settings.redis.url, socket_timeout=5, socket_connect_timeout=2)


@click.group()
def cache() -> None:
    """Flush or inspect the two-level cache (L1 in every worker, L2 in Redis)."""


@cache.command("flush")
@click.argument("namespace", required=False, type=click.Choice(FLUSHABLE))
@click.option("--all", "everything", is_flag=True, help="every cache namespace, generations included")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def flush_cmd(namespace: str | None, everything: bool, yes: bool) -> None:
    """Delete a namespace from Redis and every worker's L1 (or everything with --all)."""
    if bool(namespace) == everything:
        raise click.UsageError("give a NAMESPACE or --all (not both)")
    if everything and not yes:
        click.confirm("Flush EVERY cache namespace in Redis and in every worker?", abort=True)
    settings = settings_or_exit()

    async def run() -> int:
        client = _client(settings)
        try:
            return await flush(client, None if everything else [namespace])
        finally:
            await client.aclose()

    try:
        deleted = asyncio.run(run())
    except (aioredis.RedisError, OSError) as exc:
        click.echo(f"redis unavailable: {exc}", err=True)
        sys.exit(ExitStatus.ERROR)
    click.echo(f"flushed {'all namespaces' if everything else namespace}: {deleted} keys deleted, L1 drop broadcast")


@cache.command("stats")
@click.option("--keys", "with_keys", is_flag=True, help="also count keys per namespace (SCAN; slow on a big Redis)")
def stats_cmd(with_keys: bool) -> None:
    """Hit rates per namespace and level (from every worker's heartbeat) and Redis memory."""
    from hmb.ops.status import collect, hit_rate
    from hmb.ops.status_cmd import pct

    settings = settings_or_exit()
    snap = asyncio.run(collect(settings))
    counts: dict[str, int] = {}
    if with_keys and snap.redis.up:

        async def count() -> dict[str, int]:
            client = _client(settings)
            try:
                return {ns: await count_keys(client, ns) for ns in cache_keys.TTL}
            finally:
                await client.aclose()

        counts = asyncio.run(count())
    r = snap.redis
    if r.up:
        total = r.keyspace_hits + r.keyspace_misses
        click.echo(f"redis: {r.used_memory_human} used, {r.ops_per_sec} ops/s, keyspace hit rate "
                   f"{pct(r.keyspace_hits / total if total else None)} ({r.keyspace_hits} hits, {r.keyspace_misses} misses)")
    else:
        click.echo(f"redis: DOWN ({r.error})")
    live = sum(p.live_workers for p in snap.pods)
    click.echo(f"from {live} live worker(s) in {len(snap.pods)} pod(s)")
    header = f"{'NAMESPACE':<12}{'TTL':>6}{'LOOKUPS':>10}{'L1 HIT':>8}{'L2 HIT':>8}{'DB LOADS':>10}{'L2 ERR':>8}"
    click.echo(header + (f"{'ENTRIES':>9}" if with_keys else ""))
    for ns in cache_keys.TTL:
        c = snap.cache.get(ns, {})
        lookups = c.get("l1_hit", 0) + c.get("l1_miss", 0)
        loads = c.get("l2_miss", 0) + c.get("l2_error", 0)
        line = (f"{ns:<12}{cache_keys.TTL[ns]:>6}{lookups:>10}{pct(hit_rate(c, 'l1')):>8}{pct(hit_rate(c, 'l2')):>8}"
                f"{loads:>10}{c.get('l2_error', 0):>8}")
        click.echo(line + (f"{counts.get(ns, 0):>9}" if with_keys else ""))
    if not r.up:
        sys.exit(ExitStatus.UNHEALTHY)
