"""The dashboard's panels. Each renders only the snapshot and history it is handed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from hmb.ops.status import Snapshot, hit_rate
from hmb.ops.status_cmd import ms, pct, size

if TYPE_CHECKING:
    from hmb.ops.dash.app import History

BLOCKS = "▁▂▃▄▅▆▇█"
STATE_STYLE = {"healthy": "green", "draining": "yellow", "starting": "cyan", "degraded": "yellow", "stale": "bold red"}


def sparkline(values, width: int, ceiling: float | None = None) -> str:
    """The last `width` values as block characters, scaled to `ceiling` (default: their max)."""
    points = list(values)[-width:]
    if not points:
        return ""
    top = ceiling if ceiling is not None else max(points)
    if top <= 0:
        return BLOCKS[0] * len(points)
    return "".join(BLOCKS[min(len(BLOCKS) - 1, int(v / top * (len(BLOCKS) - 1) + 0.5))] for v in points)


def bar(used: int, total: int, width: int) -> Text:
    filled = round(width * used / total) if total else 0
    ratio = used / total if total else 0
    style = "red" if ratio >= 0.9 else "yellow" if ratio >= 0.7 else "green"
    return Text("█" * filled, style=style) + Text("░" * (width - filled), style="grey50")


def _table(*columns: tuple[str, str]) -> Table:
    table = Table(box=None, expand=True, padding=(0, 1), pad_edge=False, header_style="bold")
    for name, justify in columns:
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    return table


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f}m" if seconds < 7200 else f"{seconds / 3600:.0f}h"


class Panel(Static):
    """A bordered panel; `show()` is called with every new snapshot."""

    TITLE = ""

    def __init__(self, **kwargs) -> None:
        super().__init__("waiting for the first snapshot…", classes="panel", **kwargs)
        self.border_title = self.TITLE

    def show(self, snap: Snapshot, history: History) -> None:
        self.update(self.render_snapshot(snap, history))

    def width_for_sparkline(self, reserved: int = 0) -> int:
        """As many samples as the panel is wide: larger terminals show more history."""
        return max(8, min(180, self.content_size.width - reserved))

    def render_snapshot(self, snap: Snapshot, history: History):
        raise NotImplementedError


class PodsPanel(Panel):
    TITLE = "Pods"

    def render_snapshot(self, snap, history):
        if not snap.redis.up:
            self.border_subtitle = ""
            return Text(f"Redis unavailable: pods cannot be seen ({snap.redis.error})", style="bold red")
        if not snap.pods:
            return Text("no pods are sending heartbeats", style="yellow")
        live = sum(p.live_workers for p in snap.pods)
        self.border_subtitle = f"{len(snap.pods)} pods, {live} workers"
        wide = self.content_size.width >= 88
        columns = [("pod", "left"), ("state", "left"), ("wk", "right"), ("req/s", "right")]
        columns += [("p50", "right"), ("p95", "right"), ("p99", "right")] if wide else [("p95", "right")]
        columns += [("5xx", "right"), ("4xx", "right")] if wide else [("5xx", "right")]
        columns += [("flight", "right"), ("cpu%", "right"), ("mem", "right")] + ([("up", "right")] if wide else [])
        table = _table(*columns)
        for p in snap.pods:
            latency = [ms(p.p50_ms), ms(p.p95_ms), ms(p.p99_ms)] if wide else [ms(p.p95_ms)]
            errors = [pct(p.error_rate_5xx), str(p.errors_4xx)] if wide else [pct(p.error_rate_5xx)]
            tail = [str(p.in_flight), f"{p.cpu_percent:.0f}", size(p.rss_bytes)] + ([_age(p.uptime_s)] if wide else [])
            table.add_row(
                Text(p.id, overflow="ellipsis"), Text(p.state, style=STATE_STYLE.get(p.state, "")),
                f"{p.live_workers}/{len(p.workers)}", f"{p.rps:.1f}", *latency, *errors, *tail,
            )
        return table


class QueriesPanel(Panel):
    TITLE = "Slow queries (by total time)"

    def render_snapshot(self, snap, history):
        if not snap.queries:
            return Text("no query timings yet" if snap.redis.up else "Redis unavailable", style="grey50")
        table = _table(("query", "left"), ("calls", "right"), ("mean", "right"), ("p95", "right"))
        for q in snap.queries[:10]:
            table.add_row(Text(q["name"], overflow="ellipsis"), str(q["calls"]), ms(q["mean_ms"]), ms(q["p95_ms"]))
        return table


class PoolsPanel(Panel):
    TITLE = "Pools (in use / max, waiting)"

    def render_snapshot(self, snap, history):
        lines = []
        for node in snap.nodes:
            pool = node.pool
            if not pool:
                lines.append(Text(f"{node.name:<10} no data" + ("" if snap.redis.up else " (Redis down)"), style="grey50"))
                continue
            used, top, waiting = pool.get("in_use", 0), pool.get("max", 0), pool.get("waiting", 0)
            line = Text(f"{node.name:<10} ") + bar(used, top, 12) + Text(f" {used}/{top}")
            line += Text(f" w{waiting}", style="bold red" if waiting else "grey50")
            lines.append(line)
        return Group(*lines)


class ReplicasPanel(Panel):
    TITLE = "Replicas (lag, router use)"

    def render_snapshot(self, snap, history):
        lines = []
        for node in snap.nodes[1:]:
            if not node.reachable:
                lines.append(Text(f"{node.name} DOWN: {node.error}", style="bold red", overflow="ellipsis"))
            else:
                used = f"in use {node.used_by}/{node.seen_by}" if node.seen_by else "router: ?"
                style = "green" if node.seen_by and node.used_by == node.seen_by else "bold red" if node.seen_by else "grey50"
                lag_s = node.router_lag_s if node.seen_by else node.lag_s
                paused = Text(" paused", style="yellow") if node.paused else Text("")
                lines.append(Text(f"{node.name} ") + Text(used, style=style)
                             + Text(f"  lag {size(node.lag_bytes)} {lag_s or 0:.1f}s") + paused)
            series = history.lag_s.get(node.name, [])
            lines.append(Text(sparkline(series, self.width_for_sparkline(), max([1.0, *series])), style="cyan"))
        if not lines:
            return Text("no replicas configured", style="grey50")
        return Group(*lines)


class CachePanel(Panel):
    TITLE = "Cache (L1, L2 hit rate)"

    def render_snapshot(self, snap, history):
        r = snap.redis
        if not r.up:
            self.border_subtitle = ""
            return Text(f"Redis unavailable: {r.error}\nserving from L1 and the database", style="bold red")
        self.border_subtitle = f"Redis {r.used_memory_human} {r.ops_per_sec} ops/s"
        if not snap.cache:
            return Text("no cache lookups yet", style="grey50")
        table = _table(("ns", "left"), ("L1", "right"), ("L2", "right"), ("hit rate", "left"))
        for ns, counts in snap.cache.items():
            table.add_row(ns, pct(hit_rate(counts, "l1")), pct(hit_rate(counts, "l2")),
                          Text(sparkline(history.hit_rate.get(ns, []), self.width_for_sparkline(22), 1.0), style="green"))
        return table
