"""Users: accounts, public profiles and the directory."""

from __future__ import annotations

import asyncpg

from hmb.errors import Conflict
from hmb.store import pg

PUBLIC_COLUMNS = "id, name, role, headline, bio, location, avatar_file_id, created_at"
COUNT_COLUMNS = "followers_count, following_count, posts_count"
PRIVATE_COLUMNS = f"{PUBLIC_COLUMNS}, email, updated_at"
EDITABLE = ("name", "headline", "bio", "location")


async def insert_user(conn: asyncpg.Connection, email: str, password_hash: str, name: str, role: str) -> asyncpg.Record:
    try:
        return await conn.fetchrow(
            f"INSERT INTO users (email, password_hash, name, role) VALUES ($1, $2, $3, $4) RETURNING {PRIVATE_COLUMNS}",
            email,
            password_hash,
            name,
            role,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict("an account with this email already exists", field="email") from None


async def get_login(conn: asyncpg.Connection, email: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT id, role, password_hash FROM users WHERE email = $1", email)


async def set_password_hash(conn: asyncpg.Connection, user_id: int, password_hash: str) -> None:
    await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)


async def get_public(conn: asyncpg.Connection, user_id: int) -> asyncpg.Record | None:
    """The public profile with its counters (the same for every caller, so it is cached)."""
    return await conn.fetchrow(f"SELECT {PUBLIC_COLUMNS}, {COUNT_COLUMNS} FROM users WHERE id = $1", user_id)


async def exists(conn: asyncpg.Connection, user_id: int) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)", user_id)


async def set_avatar(conn: asyncpg.Connection, user_id: int, file_id: int) -> int | None:
    """Point the profile at a new avatar; returns the previous avatar's file id."""
    return await conn.fetchval(
        """
        UPDATE users u SET avatar_file_id = $2, updated_at = now()
        FROM (SELECT avatar_file_id FROM users WHERE id = $1 FOR UPDATE) old
        WHERE u.id = $1
        RETURNING old.avatar_file_id
        """,
        user_id,
        file_id,
    )


async def get_private(conn: asyncpg.Connection, user_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {PRIVATE_COLUMNS} FROM users WHERE id = $1", user_id)


async def update_profile(conn: asyncpg.Connection, user_id: int, changes: dict[str, str]) -> asyncpg.Record | None:
    """Change only the editable profile fields; column names come from EDITABLE, never the client."""
    columns = [c for c in EDITABLE if c in changes]
    if not columns:
        return await get_private(conn, user_id)
    assignments = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=2))
    return await conn.fetchrow(
        f"UPDATE users SET {assignments}, updated_at = now() WHERE id = $1 RETURNING {PRIVATE_COLUMNS}",
        user_id,
        *(changes[c] for c in columns),
    )


async def list_users(conn: asyncpg.Connection, q: str | None, before_id: int | None, limit: int) -> list[asyncpg.Record]:
    """Newest first; `q` matches a case-insensitive substring of the name."""
    if not q:  # a statement each, so that neither is planned anew per run (pg.before); the limit
        # written in, as for everyone's posts (posts.list_posts): a generic plan of `LIMIT $n` assumes
        # a tenth of the table, and PostgreSQL would keep planning each run rather than use it.
        return await conn.fetch(f"SELECT {PUBLIC_COLUMNS} FROM users WHERE id < $1 ORDER BY id DESC LIMIT {int(limit)}",
                                pg.before(before_id))
    pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return await conn.fetch(
        f"SELECT {PUBLIC_COLUMNS} FROM users WHERE lower(name) LIKE $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        pattern,
        pg.before(before_id),
        limit,
    )
