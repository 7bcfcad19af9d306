"""The per-worker replica monitor: probes replay position and lag, ejects and re-admits replicas."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

import asyncpg

from hmb.store import pg
from hmb.store.router import LSN_SQL, Databases, Node

log = logging.getLogger("hmb.router")

REPLAY_SQL = "SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint"


class ReplicaMonitor:
    """Lag in seconds is measured against the primary's own WAL history, not replay timestamps.

    Each tick records (time, primary LSN). A replica's lag is how long ago the primary
    first held WAL the replica has not replayed yet; replay timestamps would read an
    idle replica as minutes behind.
    """

    def __init__(self, db: Databases, history_s: float = 600.0):
        self.db = db
        self.settings = db.settings.db
        self.samples: deque[tuple[float, int]] = deque()
        self.history_s = history_s
        # Probes use their own connection per node, outside the pools: an exhausted
        # pool must not read as a dead node (that would pull a busy pod out of rotation).
        self._conns: dict[str, asyncpg.Connection] = {}
        self._timeout = max(0.5, self.settings.replica_probe_interval_s)

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self.tick()
                except Exception:  # noqa: BLE001 - the monitor must outlive any one bad probe
                    log.exception("replica monitor tick failed")
                await asyncio.sleep(self.settings.replica_probe_interval_s)
        finally:
            await asyncio.gather(*(c.close(timeout=1) for c in self._conns.values()), return_exceptions=True)

    async def _fetch(self, node: Node, sql: str):
        try:
            async with asyncio.timeout(self._timeout):
                conn = self._conns.get(node.name)
                if conn is None or conn.is_closed():
                    conn = await asyncpg.connect(node.url, server_settings={"application_name": "hmb:monitor"})
                    self._conns[node.name] = conn
                return await conn.fetchval(sql)
        except BaseException:
            stale = self._conns.pop(node.name, None)
            if stale is not None:
                stale.terminate()
            raise

    async def tick(self) -> None:
        now = time.monotonic()
        primary_lsn = await self._primary_lsn()
        if primary_lsn is not None:
            self.samples.append((now, primary_lsn))
            while self.samples and self.samples[0][0] < now - self.history_s:
                self.samples.popleft()
        await asyncio.gather(*(self._probe(node, now, primary_lsn) for node in self.db.replicas))

    async def _primary_lsn(self) -> int | None:
        primary = self.db.primary
        try:
            lsn = await self._fetch(primary, LSN_SQL)
        except (TimeoutError, *pg.CONNECTION_LOST) as exc:
            if primary.reachable:
                log.warning("primary unreachable", extra={"error": type(exc).__name__})
            primary.reachable = False
            return None
        if not primary.reachable:
            log.info("primary reachable again")
        primary.reachable = True
        return lsn

    async def _probe(self, node: Node, now: float, primary_lsn: int | None) -> None:
        try:
            replay = await self._fetch(node, REPLAY_SQL)
        except (TimeoutError, asyncpg.PostgresError, *pg.CONNECTION_LOST) as exc:
            self._set(node, False, f"unreachable ({type(exc).__name__})")
            return
        node.reachable = True
        node.replay_lsn = replay or 0
        if primary_lsn is not None:
            node.lag_bytes = max(0, primary_lsn - node.replay_lsn)
            node.lag_s = self._lag_seconds(node.replay_lsn, now)
        if node.lag_bytes > self.settings.replica_max_lag_bytes:
            self._set(node, False, f"lag {node.lag_bytes} bytes > {self.settings.replica_max_lag_bytes}")
        elif node.lag_s > self.settings.replica_max_lag_s:
            self._set(node, False, f"lag {node.lag_s:.1f}s > {self.settings.replica_max_lag_s}s")
        else:
            self._set(node, True, "")

    def _lag_seconds(self, replay_lsn: int, now: float) -> float:
        for at, lsn in self.samples:
            if lsn > replay_lsn:
                return now - at
        return 0.0

    def _set(self, node: Node, in_use: bool, reason: str) -> None:
        if in_use and not node.in_use:
            log.info("replica re-admitted", extra={"replica": node.name, "after": node.reason})
        elif not in_use and node.in_use:
            log.warning("replica ejected", extra={"replica": node.name, "reason": reason})
        if not in_use and reason.startswith("unreachable"):
            node.reachable = False
        node.in_use = in_use
        node.reason = reason
