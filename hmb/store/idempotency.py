"""Idempotency keys: the first response of a create, stored in the same transaction as the create."""

from __future__ import annotations

import asyncio
import logging
import random

import asyncpg

from hmb.errors import HmbError

log = logging.getLogger("hmb.idempotency")


async def claim(conn: asyncpg.Connection, user_id: int, key: str, route: str, fingerprint: bytes) -> asyncpg.Record | None:
    """None if this key is ours to use now; else the stored first request and response.

    A concurrent request with the same key blocks on the unique index until the
    first transaction ends: it then sees the committed response, or claims the
    key itself if the first one rolled back. Nothing runs twice.
    """
    claimed = await conn.fetchval(
        """
        INSERT INTO idempotency_keys (user_id, key, route, request_hash, status, body)
        VALUES ($1, $2, $3, $4, 0, '')
        ON CONFLICT DO NOTHING
        RETURNING true
        """,
        user_id,
        key,
        route,
        fingerprint,
    )
    if claimed:
        return None
    return await conn.fetchrow(
        "SELECT route, request_hash, status, body FROM idempotency_keys WHERE user_id = $1 AND key = $2",
        user_id,
        key,
    )


async def record(conn: asyncpg.Connection, user_id: int, key: str, status: int, body: bytes) -> None:
    await conn.execute(
        "UPDATE idempotency_keys SET status = $3, body = $4 WHERE user_id = $1 AND key = $2",
        user_id,
        key,
        status,
        body,
    )


async def purge_batch(conn: asyncpg.Connection, hours: int, batch: int) -> int:
    """Delete up to `batch` keys older than `hours`; returns how many went."""
    result = await conn.execute(
        """
        DELETE FROM idempotency_keys WHERE ctid IN (
            SELECT ctid FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1) LIMIT $2
        )
        """,
        hours,
        batch,
    )
    return int(result.split()[-1])


async def sweep(db, keep_hours: int = 24, every_s: float = 3600.0, batch: int = 5000) -> None:
    """For the worker's life: drop keys clients can no longer be retrying (kept a day).

    Every worker sweeps, each at its own random offset; short batches keep locks brief.
    """
    await asyncio.sleep(random.uniform(0, every_s))
    while True:
        try:
            while await _purge(db, keep_hours, batch) == batch:
                pass
        except HmbError as exc:
            log.warning("idempotency sweep skipped", extra={"error": exc.message})
        await asyncio.sleep(every_s)


async def _purge(db, keep_hours: int, batch: int) -> int:
    async with db.write() as w:
        return await purge_batch(w.conn, keep_hours, batch)
