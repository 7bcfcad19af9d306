"""Login sessions (refresh-token families): issue, rotate with reuse detection, revoke."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import asyncpg


@dataclass(frozen=True)
class Rotation:
    """The outcome of presenting a refresh token."""

    user_id: int | None = None
    session_id: int | None = None
    role: str = ""
    reused: bool = False  # a spent token came back: the family is now revoked

    @property
    def ok(self) -> bool:
        return self.user_id is not None and not self.reused


async def start_session(conn: asyncpg.Connection, user_id: int) -> int:
    return await conn.fetchval("INSERT INTO auth_sessions (user_id) VALUES ($1) RETURNING id", user_id)


async def add_refresh_token(conn: asyncpg.Connection, session_id: int, token_hash: bytes, ttl_s: int) -> None:
    await conn.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        token_hash,
        session_id,
        datetime.now(timezone.utc) + timedelta(seconds=ttl_s),
    )


async def spend_refresh_token(conn: asyncpg.Connection, token_hash: bytes) -> Rotation:
    """Mark the token used (in the caller's transaction). A second use revokes its whole family."""
    row = await conn.fetchrow(
        """
        SELECT t.session_id, t.used_at, t.expires_at, s.revoked_at, s.user_id, u.role
        FROM refresh_tokens t
        JOIN auth_sessions s ON s.id = t.session_id
        JOIN users u ON u.id = s.user_id
        WHERE t.token_hash = $1
        FOR UPDATE OF t, s
        """,
        token_hash,
    )
    if row is None or row["revoked_at"] is not None:
        return Rotation()
    if row["used_at"] is not None:
        await revoke_session(conn, row["session_id"], "refresh token reused")
        return Rotation(user_id=row["user_id"], session_id=row["session_id"], reused=True)
    if row["expires_at"] <= datetime.now(timezone.utc):
        return Rotation()
    await conn.execute("UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1", token_hash)
    return Rotation(user_id=row["user_id"], session_id=row["session_id"], role=row["role"])


async def revoke_session(conn: asyncpg.Connection, session_id: int, reason: str) -> None:
    await conn.execute(
        "UPDATE auth_sessions SET revoked_at = now(), revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL",
        session_id,
        reason,
    )


async def revoked_since(conn: asyncpg.Connection, since: datetime) -> list[asyncpg.Record]:
    """Sessions revoked after `since`: every worker refuses their access tokens at once."""
    return await conn.fetch(
        "SELECT id, revoked_at FROM auth_sessions WHERE revoked_at > $1 ORDER BY revoked_at",
        since,
    )
