"""asyncpg pools: per-connection settings, codecs, and translating driver errors."""

from __future__ import annotations

import os
from typing import Any

import asyncpg
import orjson

from hmb.config import Settings
from hmb.errors import Conflict, HmbError, Overloaded, Unavailable

# Errors that mean "this connection or node is gone", not "this query is wrong":
# an idempotent read may be retried once on another connection.
CONNECTION_LOST = (
    OSError,
    ConnectionError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.InterfaceError,
    asyncpg.TooManyConnectionsError,
    # A server that went away mid-operation can leave the protocol in a state asyncpg
    # reports this way (MagicStack/asyncpg#1069): the connection is as good as lost.
    asyncpg.InternalClientError,
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(typ, encoder=_dumps, decoder=orjson.loads, schema="pg_catalog")


async def _no_session_state(conn: asyncpg.Connection) -> None:
    """Pool connections carry no session state (no SET, LISTEN, cursors or advisory locks)."""


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def create_pool(url: str, settings: Settings, role: str) -> asyncpg.Pool:
    """A pool that connects lazily: a node that is down at start must not stop the worker."""
    return await asyncpg.create_pool(
        url,
        min_size=0,
        max_size=settings.db.pool_max,
        max_inactive_connection_lifetime=60.0,
        init=_init_connection,
        # asyncpg still rolls back an open transaction on release; its default reset adds a round
        # trip (RESET ALL, UNLISTEN, CLOSE ALL, advisory unlock) per release for state hmb never leaves.
        reset=_no_session_state,
        # Sent in the startup packet: no extra round trip per connection.
        server_settings={
            "application_name": f"hmb:{settings.pod_id}:{os.getpid()}:{role}"[:63],
            "statement_timeout": str(settings.db.statement_timeout_ms),
            "idle_in_transaction_session_timeout": "10000",
        },
        timeout=max(1.0, settings.db.acquire_timeout_s),
    )


def translate(exc: BaseException) -> HmbError | None:
    """Map a driver error to a domain error, or None if it is a bug to surface."""
    if isinstance(exc, asyncpg.UniqueViolationError):
        return Conflict("that already exists", constraint=exc.constraint_name)
    if isinstance(exc, asyncpg.QueryCanceledError):
        return Overloaded("the database took too long; retry shortly")
    if isinstance(exc, asyncpg.ReadOnlySQLTransactionError):
        return Unavailable("the database is read-only right now")
    if isinstance(exc, CONNECTION_LOST):
        return Unavailable("the database is unreachable")
    return None


# A keyset list's bound on its first page: lists say `id < $n` with this, not `($n IS NULL OR
# id < $n)`, which PostgreSQL plans anew on every run (no generic plan: tests/store/test_plans.py)
# and whose later pages' bound is a filter rather than an index condition.
FIRST_PAGE = 2**63 - 1  # the largest bigint


def before(cursor_id: int | None) -> int:
    """The `id < $n` bound of a page: FIRST_PAGE when there is no cursor."""
    return FIRST_PAGE if cursor_id is None else cursor_id


def lsn_to_int(lsn: str) -> int:
    hi, lo = lsn.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def int_to_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"
