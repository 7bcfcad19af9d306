"""`hmb dash`: the live operator console (Textual).

The app polls `hmb.ops.status.Collector` in an exclusive worker on a timer (so the UI never
blocks and a slow poll is never stacked), keeps a short history for sparklines, and hands
each snapshot down to the panels, which only render what they are given.
"""

from __future__ import annotations

from collections import deque

import click
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Footer, Header, Static

from hmb.config import Settings
from hmb.ops.dash.dialogs import ConfirmDialog, FlushDialog, HelpScreen
from hmb.ops.dash.panels import CachePanel, Panel, PodsPanel, PoolsPanel, QueriesPanel, ReplicasPanel
from hmb.ops.status import Collector, Snapshot, hit_rate

RATES = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0)  # seconds between refreshes; `+` moves left, `-` right
HISTORY = 180  # samples kept for sparklines (3 minutes at 1 s)


class History:
    """What the sparklines draw: replica lag and cache hit rate per namespace, oldest first."""

    def __init__(self, size: int = HISTORY):
        self.size = size
        self.lag_s: dict[str, deque[float]] = {}
        self.lag_bytes: dict[str, deque[float]] = {}
        self.hit_rate: dict[str, deque[float]] = {}
        self._last_cache: dict[str, dict[str, int]] = {}

    def add(self, snap: Snapshot) -> None:
        for node in snap.nodes[1:]:
            self._push(self.lag_s, node.name, node.router_lag_s if node.seen_by else (node.lag_s or 0.0))
            self._push(self.lag_bytes, node.name, node.lag_bytes or 0)
        if not snap.redis.up:
            return
        for ns, counts in snap.cache.items():
            before = self._last_cache.get(ns, {})
            # Hit rate over the last interval: the difference of cumulative counters.
            delta = {k: max(0, v - before.get(k, 0)) for k, v in counts.items()}
            rate = hit_rate({k: delta.get(k, 0) for k in ("l1_hit", "l1_miss")}, "l1")
            l2 = hit_rate(delta, "l2")
            if rate is not None:
                overall = rate + (1 - rate) * (l2 or 0.0)
                self._push(self.hit_rate, ns, overall)
        self._last_cache = snap.cache

    def _push(self, series: dict[str, deque[float]], name: str, value: float) -> None:
        series.setdefault(name, deque(maxlen=self.size)).append(value)


class DashApp(App):
    CSS_PATH = "dash.tcss"
    TITLE = "hmb dash"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (140, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (40, "-tall")]
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("p", "pause", "Pause"),
        Binding("plus,+", "faster", "Faster", key_display="+"),
        Binding("minus,-", "slower", "Slower", key_display="-"),
        Binding("f", "flush", "Flush"),
        Binding("question_mark,?", "help", "Help", key_display="?"),
    ]

    paused: reactive[bool] = reactive(False)
    refresh_s: reactive[float] = reactive(1.0)

    def __init__(self, settings: Settings, refresh_s: float = 1.0):
        super().__init__()
        self.settings = settings
        self.collector = Collector(settings, timeout_s=0.8)
        self.history = History()
        self.snapshot: Snapshot | None = None
        self.polls = 0  # completed polls (tests wait on it)
        self._timer: Timer | None = None
        self.set_reactive(DashApp.refresh_s, refresh_s)

    def compose(self) -> ComposeResult:
        yield Header()
        with Grid(id="panels"):
            yield PodsPanel(id="pods")
            yield QueriesPanel(id="queries")
            yield PoolsPanel(id="pools")
            yield ReplicasPanel(id="replicas")
            yield CachePanel(id="cache")
        yield Static("collecting…", id="verdict")
        yield Footer()

    def on_mount(self) -> None:
        # Held here: while a dialog is open, query() would search the dialog's screen.
        self._panels = list(self.query(".panel").results(Panel))
        self._verdict = self.query_one("#verdict", Static)
        self._update_subtitle()
        self._timer = self.set_interval(self.refresh_s, self._tick)
        self.poll()

    async def on_unmount(self) -> None:
        await self.collector.close()

    def _tick(self) -> None:
        if not self.paused and not any(w.group == "poll" and w.is_running for w in self.workers):
            self.poll()

    @work(exclusive=True, group="poll")
    async def poll(self) -> None:
        try:
            snap = await self.collector.collect()
        except Exception as exc:  # noqa: BLE001 - a bug in one poll must not take the console down
            self._verdict.update(f"[b]✖ snapshot failed: {type(exc).__name__}: {exc}[/b]")
            self.log.error("snapshot failed", exc)
            return
        self.snapshot = snap
        self.history.add(snap)
        for panel in self._panels:
            panel.show(snap, self.history)
        verdict = self._verdict
        if snap.problems:
            more = f"  (+{len(snap.problems) - 1} more, see `hmb status`)" if len(snap.problems) > 1 else ""
            verdict.update(f"[b]✖ {snap.problems[0]}[/b]{more}")
            verdict.set_class(True, "-unhealthy")
        else:
            note = f"  ({snap.warnings[0]})" if snap.warnings else ""
            verdict.update(f"✔ healthy{note}")
            verdict.set_class(False, "-unhealthy")
        self.polls += 1

    # --- keys ---

    def action_pause(self) -> None:
        self.paused = not self.paused

    def action_faster(self) -> None:
        self.refresh_s = max((r for r in RATES if r < self.refresh_s), default=RATES[0])

    def action_slower(self) -> None:
        self.refresh_s = min((r for r in RATES if r > self.refresh_s), default=RATES[-1])

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_flush(self) -> None:
        from hmb.ops.cache_cmd import FLUSHABLE

        def chosen(namespace: str | None) -> None:
            if namespace:
                message = f"Flush cache namespace [b]{namespace}[/b]?\nIts keys are deleted from Redis and every worker drops its L1 copies."
                self.push_screen(ConfirmDialog(message), lambda yes: self.flush_namespace(namespace) if yes else None)

        self.push_screen(FlushDialog(FLUSHABLE), chosen)

    @work(group="flush")
    async def flush_namespace(self, namespace: str) -> None:
        from hmb.ops.cache_cmd import flush

        try:
            deleted = await flush(self.collector.redis, [namespace])
        except Exception as exc:  # noqa: BLE001 - shown to the operator, the app stays up
            self.notify(f"flush {namespace} failed: {exc}", severity="error")
            return
        self.notify(f"flushed {namespace}: {deleted} keys deleted, L1 drop broadcast")

    def watch_paused(self) -> None:
        self._update_subtitle()

    def watch_refresh_s(self, refresh_s: float) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = self.set_interval(refresh_s, self._tick)
        self._update_subtitle()

    def _update_subtitle(self) -> None:
        self.sub_title = "PAUSED" if self.paused else f"every {self.refresh_s:g}s"


@click.command()
@click.option("--refresh", "refresh_s", type=click.Choice([f"{r:g}" for r in RATES]), default="1", show_default=True,
              help="seconds between refreshes")
def dash(refresh_s: str) -> None:
    """Live console: pods, slow queries, pools, replicas and cache; q quits, ? for keys."""
    from hmb.ops.cli import settings_or_exit

    DashApp(settings_or_exit(), float(refresh_s)).run()
