"""Idempotency keys: the first response of a create, stored in the same transaction as the create."""

from __future__ import annotations

import asyncpg


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


async def purge_older_than(conn: asyncpg.Connection, hours: int) -> int:
    """Keys are kept for a day (clients retry within minutes); run from `hmb` maintenance."""
    result = await conn.execute(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)", hours
    )
    return int(result.split()[-1])
