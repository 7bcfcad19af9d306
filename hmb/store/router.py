"""The read/write router: writes and strong reads to the primary, reads to a fresh, healthy replica."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg

from hmb.config import Settings
from hmb.errors import Overloaded, Unavailable
from hmb.store import pg
from hmb.store.cache_keys import Key

if TYPE_CHECKING:
    from hmb.store.cache import Cache

log = logging.getLogger("hmb.router")
T = TypeVar("T")

# The lowest WAL position this request's reads must see (read-your-writes), and
# the position of the last write it committed; set per request by the web layer.
read_floor: contextvars.ContextVar[int | None] = contextvars.ContextVar("read_floor", default=None)
written_lsn: contextvars.ContextVar[int | None] = contextvars.ContextVar("written_lsn", default=None)
# Which nodes served this request's reads, for the X-DB-Route header.
served_by: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("served_by", default=None)

# The insert position, not pg_current_wal_lsn(): with asynchronous commit the write
# position can still be short of the commit record a reader must see.
LSN_SQL = "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint"


@dataclass
class Node:
    name: str
    pool: asyncpg.Pool
    url: str
    # Replica state, kept by the monitor (hmb.store.replicas); the primary stays in use.
    in_use: bool = True
    reachable: bool = True
    replay_lsn: int = 0
    lag_bytes: int = 0
    lag_s: float = 0.0
    reason: str = ""
    # Tasks queued for a connection because all were checked out (asyncpg counts no waiters).
    waiting: int = 0
    # Turns at the pool, one per connection, first come first served (asyncio.Semaphore lets no
    # newcomer pass its waiters). asyncpg's own queue lets a request arriving as a connection is
    # handed back take it from the waiter woken for it, which then queues again at the back: under
    # load a few requests lost their turn over and over (the uncached read's p95 109-128 -> 24-27 ms).
    turns: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.turns = asyncio.Semaphore(self.pool.get_max_size())

    def route_label(self) -> str:
        return f"{self.name}; lag_ms={int(self.lag_s * 1000)}"


class Databases:
    """One pool per node, owned by one worker."""

    def __init__(self, settings: Settings, primary: Node, replicas: list[Node]):
        self.settings = settings
        self.primary = primary
        self.replicas = replicas
        self._turn = itertools.count()
        self.cache: Cache | None = None  # set once the cache is up
        self._acquire_timeout = settings.db.acquire_timeout_s
        # Called with (query name, seconds) after each read and write transaction (hmb.ops.metrics).
        self.on_query: Callable[[str, float], None] | None = None

    @property
    def nodes(self) -> list[Node]:
        return [self.primary, *self.replicas]

    def choose_replica(self, floor: int | None) -> Node:
        """Round-robin over replicas in use that have replayed `floor`; else the primary."""
        fresh = [r for r in self.replicas if r.in_use and (floor is None or r.replay_lsn >= floor)]
        if not fresh:
            return self.primary
        return fresh[next(self._turn) % len(fresh)]

    async def read(self, fn: Callable[..., Awaitable[T]], *args: Any, floor: int | None = None) -> T:
        """Run an idempotent read on a replica (or the primary); retried once if a connection drops.

        The replica must have replayed the request's read-your-writes position and `floor`.
        """
        floor = max(floor or 0, read_floor.get() or 0) or None
        node = self.choose_replica(floor)
        try:
            return await self._run(node, fn, args)
        except pg.CONNECTION_LOST as exc:
            if node is not self.primary:
                self.eject(node, f"unreachable ({type(exc).__name__})")
                node = self.choose_replica(floor)
            return await self._run(node, fn, args)

    async def strong_read(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run an idempotent read on the primary, retried once if a connection drops."""
        try:
            return await self._run(self.primary, fn, args)
        except pg.CONNECTION_LOST:
            return await self._run(self.primary, fn, args)

    async def _run(self, node: Node, fn: Callable[..., Awaitable[T]], args: tuple) -> T:
        _note(node)
        started = time.perf_counter()
        try:
            async with self._acquire(node) as conn:
                return await fn(conn, *args)
        finally:
            if self.on_query is not None:
                self.on_query(getattr(fn, "__name__", "read"), time.perf_counter() - started)

    @asynccontextmanager
    async def write(self, transaction: bool = True) -> AsyncIterator[Write]:
        """A short transaction on the primary; post-commit work runs only if it commits.

        `transaction=False` is for a body that runs one statement: atomic on its own, it needs
        no BEGIN and COMMIT round trips. Nothing that can fail may follow that statement.
        """
        _note(self.primary)
        # Named after the function that opened the transaction (frame 2: through __aenter__).
        name = f"write:{sys._getframe(2).f_code.co_name}" if self.on_query is not None else ""
        started = time.perf_counter()
        try:
            async with self._acquire(self.primary) as conn:
                unit = Write(conn)
                if transaction:
                    async with conn.transaction():
                        yield unit
                else:
                    yield unit
                # After commit: the WAL position a later read must see, and in the same round
                # trip what the write asked to read as of its commit.
                lsn, unit.read_value = await conn.fetchrow(f"{LSN_SQL}, {unit.read_sql}", *unit.read_args)
        finally:
            if self.on_query is not None:
                self.on_query(name, time.perf_counter() - started)
        written_lsn.set(max(lsn, written_lsn.get() or 0))
        try:
            for callback in unit.after_commit:
                await callback(lsn)
        finally:
            if self.cache is not None:
                await self.cache.invalidations.apply(lsn, unit.invalidations, unit.bumps, unit.quiet_bumps)

    def _acquire(self, node: Node) -> _Checkout:
        return _Checkout(node, self._acquire_timeout)

    def eject(self, node: Node, reason: str) -> None:
        if node.in_use:
            log.warning("replica ejected", extra={"replica": node.name, "reason": reason})
        node.in_use = False
        node.reachable = False
        node.reason = reason

    def pool_stats(self) -> dict[str, dict[str, int]]:
        stats = {}
        for node in self.nodes:
            pool = node.pool
            size = pool.get_size()
            stats[node.name] = {
                "size": size,
                "in_use": size - pool.get_idle_size(),
                "max": pool.get_max_size(),
                "waiting": node.waiting,
            }
        return stats

    async def close(self) -> None:
        await asyncio.gather(*(n.pool.close() for n in self.nodes), return_exceptions=True)


class Write:
    """The connection of one write transaction, and what to do once it commits.

    Cache invalidations are queued here and run only after the commit, so a
    rolled-back write invalidates nothing and no reader refills a key early.
    """

    def __init__(self, conn: asyncpg.Connection):
        self.conn = conn
        # Key names: all the cache needs.
        self.invalidations: list[str] = []
        self.bumps: list[str] = []
        self.quiet_bumps: list[str] = []
        self.after_commit: list[Callable[[int], Awaitable[None]]] = []
        self.read_sql, self.read_args, self.read_value = "NULL", (), None

    def read_at_commit(self, sql: str, *args: Any) -> None:
        """Read the value of `sql` (an expression) on the primary just after the commit, in the
        statement that reads its WAL position: saves a round trip. `on_commit` callbacks find it
        in `read_value`."""
        assert self.read_sql == "NULL", "one read at commit per write"
        self.read_sql, self.read_args = sql, args

    def invalidate(self, *keys: Key) -> None:
        self.invalidations.extend(k.name for k in keys)

    def bump(self, *gen_keys: Key) -> None:
        """Move groups to the commit's generation, announced to every worker (Invalidations.apply)."""
        self.bumps.extend(k.name for k in gen_keys)

    def bump_quietly(self, names: list[str]) -> None:
        """Bump groups too many to announce, by key name (Invalidations.apply's `quiet_bumps`)."""
        self.quiet_bumps.extend(names)

    def on_commit(self, callback: Callable[[int], Awaitable[None]]) -> None:
        """`callback(lsn)` runs after the commit, with its WAL position. It runs before the
        queued cache work is sent (in one round trip), so it may queue more."""
        self.after_commit.append(callback)


class _Checkout:
    """`async with`: one connection of `node`'s pool, handed back (or closed, if its server is gone).

    Connections go to waiters in arrival order (`node.turns`), and a wait for one lasts at most
    DB_ACQUIRE_TIMEOUT_S (then a 503). A turn is held until the release is done, so a checkout
    that finds none free is counted in `node.waiting`. A class, not @asynccontextmanager: this
    runs for every query.
    """

    __slots__ = ("node", "timeout", "conn")

    def __init__(self, node: Node, timeout: float):
        self.node, self.timeout = node, timeout

    async def __aenter__(self) -> asyncpg.Connection:
        node = self.node
        turns = node.turns
        waits = turns.locked()
        node.waiting += waits
        try:
            async with asyncio.timeout(self.timeout):
                await turns.acquire()
                try:
                    self.conn = await node.pool.acquire()
                except BaseException:
                    turns.release()
                    raise
        except BaseException as exc:
            if isinstance(exc, asyncio.TimeoutError):
                raise Overloaded(f"no free database connection on {node.name}") from None
            if isinstance(exc, pg.CONNECTION_LOST) and node.name == "primary":
                raise Unavailable("the database is unreachable") from exc
            raise
        finally:
            node.waiting -= waits
        return self.conn

    async def __aexit__(self, exc_type, exc, tb) -> None:
        try:
            if exc is not None and isinstance(exc, pg.CONNECTION_LOST):
                self.conn.terminate()  # never hand a connection that lost its server back to the pool
            await self.node.pool.release(self.conn)
        finally:
            self.node.turns.release()


def _note(node: Node) -> None:
    served = served_by.get()
    if served is not None:
        label = node.route_label() if node.name != "primary" else "primary"
        if label not in served:
            served.append(label)


async def open_databases(settings: Settings) -> Databases:
    url = settings.db.primary_url
    primary = Node("primary", await pg.create_pool(url, settings, "primary"), url)
    replicas = [
        Node(f"replica-{i}", await pg.create_pool(url, settings, f"replica-{i}"), url)
        for i, url in enumerate(settings.db.replica_urls, start=1)
    ]
    return Databases(settings, primary, replicas)
