"""`hmb status [--json]`: one snapshot of every pod, node and Redis; exit 2 when unhealthy."""

from __future__ import annotations

import asyncio
import sys
import time

import click

from hmb.ops.cli import ExitStatus, settings_or_exit
from hmb.ops.status import Snapshot, collect, hit_rate


@click.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def status(as_json: bool) -> None:
    """Pods (from heartbeats), database nodes, replication and Redis; exit 2 if anything is unhealthy."""
    snapshot = asyncio.run(collect(settings_or_exit()))
    if as_json:
        click.echo(snapshot.to_json().decode())
    else:
        click.echo(render(snapshot))
    sys.exit(ExitStatus.OK if snapshot.healthy else ExitStatus.UNHEALTHY)


def render(s: Snapshot) -> str:
    verdict = "healthy" if s.healthy else f"UNHEALTHY ({len(s.problems)} problem(s))"
    lines = [f"hmb status  {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(s.at))}  {verdict}", ""]
    lines.append(f"{'POD':<24}{'STATE':<10}{'WORKERS':>8}{'REQ/S':>9}{'P50':>8}{'P95':>8}{'P99':>8}"
                 f"{'5XX':>6}{'FLIGHT':>7}{'CPU%':>7}{'RSS':>8}")
    for p in s.pods:
        lines.append(
            f"{p.id[:23]:<24}{p.state:<10}{f'{p.live_workers}/{len(p.workers)}':>8}{p.rps:>9.1f}"
            f"{ms(p.p50_ms):>8}{ms(p.p95_ms):>8}{ms(p.p99_ms):>8}{p.errors_5xx:>6}{p.in_flight:>7}"
            f"{p.cpu_percent:>7.1f}{size(p.rss_bytes):>8}"
        )
    if not s.pods:
        lines.append("(no heartbeats)")
    lines += ["", f"{'NODE':<12}{'STATE':<13}{'POSITION':<14}{'LAG':>10}{'LAG S':>8}{'ROUTERS':>9}  POOL (use/size/max, wait)"]
    for n in s.nodes:
        state = "up" if n.reachable else "DOWN"
        if n.paused:
            state = "replay paused"
        routers = f"{n.used_by}/{n.seen_by}" if n.role == "replica" else "-"
        pool = n.pool
        pool_text = f"{pool.get('in_use', 0)}/{pool.get('size', 0)}/{pool.get('max', 0)}, {pool.get('waiting', 0)}" if pool else "-"
        lag = size(n.lag_bytes) if n.lag_bytes is not None else "-"
        lag_s = f"{n.lag_s:.1f}" if n.lag_s is not None else "-"
        lines.append(f"{n.name:<12}{state:<13}{n.position:<14}{lag:>10}{lag_s:>8}{routers:>9}  {pool_text}")
    r = s.redis
    lines.append("")
    if r.up:
        lines.append(f"redis: up, {r.used_memory_human} used, {r.ops_per_sec} ops/s, "
                     f"{r.keyspace_hits} hits / {r.keyspace_misses} misses, {r.connected_clients} clients")
    else:
        lines.append(f"redis: DOWN ({r.error})")
    if s.cache:
        lines.append(f"{'CACHE':<12}{'L1 HIT':>8}{'L2 HIT':>8}{'LOOKUPS':>10}{'L2 ERR':>8}")
        for namespace, counts in s.cache.items():
            lookups = counts.get("l1_hit", 0) + counts.get("l1_miss", 0)
            lines.append(f"{namespace:<12}{pct(hit_rate(counts, 'l1')):>8}{pct(hit_rate(counts, 'l2')):>8}"
                         f"{lookups:>10}{counts.get('l2_error', 0):>8}")
    if s.queries:
        lines += ["", f"{'QUERY':<32}{'CALLS':>8}{'MEAN':>9}{'P95':>9}{'MAX':>9}"]
        for q in s.queries[:8]:
            lines.append(f"{q['name'][:31]:<32}{q['calls']:>8}{ms(q['mean_ms']):>9}{ms(q['p95_ms']):>9}{ms(q['max_ms']):>9}")
    for title, items in (("problems", s.problems), ("warnings", s.warnings)):
        if items:
            lines += ["", f"{title}:"] + [f"  - {item}" for item in items]
    return "\n".join(lines)


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}ms" if value >= 10 else f"{value:.1f}ms"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "K", "M", "G"):
        if n < 1024 or unit == "G":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return str(n)
