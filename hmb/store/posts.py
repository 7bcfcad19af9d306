"""Posts and likes: create/edit/delete, the newest list, the feed (fan-out on read), trending."""

from __future__ import annotations

import asyncpg

from hmb.errors import NotFound
from hmb.store import pg

# A post as every list shows it: the post, its author's card.
_COLUMNS = """
    p.id, p.body, p.image_file_id, p.like_count, p.created_at, p.updated_at,
    u.id AS author_id, u.name AS author_name, u.headline AS author_headline,
    u.avatar_file_id AS author_avatar_file_id
"""


async def create_post(
    conn: asyncpg.Connection, author_id: int, body: str, image_file_id: int | None
) -> asyncpg.Record | None:
    """Insert a post and count it on its author; the post as get_post shows it, or None if
    `image_file_id` is not a post image the author uploaded.

    One statement, so it is atomic without a transaction (no BEGIN/COMMIT round trips).
    """
    return await conn.fetchrow(
        f"""
        WITH p AS (
            INSERT INTO posts (author_id, body, image_file_id)
            SELECT $1::bigint, $2::text, $3::bigint
            WHERE $3::bigint IS NULL
               OR EXISTS (SELECT 1 FROM files WHERE id = $3 AND owner_id = $1 AND purpose = 'post_image')
            RETURNING *
        ), u AS (
            UPDATE users SET posts_count = posts_count + 1 WHERE id = (SELECT author_id FROM p)
            RETURNING id, name, headline, avatar_file_id
        )
        SELECT {_COLUMNS} FROM p, u
        """,
        author_id,
        body,
        image_file_id,
    )


async def get_post(conn: asyncpg.Connection, post_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id WHERE p.id = $1", post_id
    )


async def lock_author(conn: asyncpg.Connection, post_id: int) -> int:
    """The post's author, with the post locked for this transaction; NotFound if there is no post."""
    author_id = await conn.fetchval("SELECT author_id FROM posts WHERE id = $1 FOR UPDATE", post_id)
    if author_id is None:
        raise NotFound("no such post")
    return author_id


async def update_post(conn: asyncpg.Connection, post_id: int, body: str) -> None:
    await conn.execute("UPDATE posts SET body = $2, updated_at = now() WHERE id = $1", post_id, body)


async def delete_post(conn: asyncpg.Connection, post_id: int, author_id: int) -> None:
    await conn.execute("DELETE FROM posts WHERE id = $1", post_id)
    await conn.execute("UPDATE users SET posts_count = posts_count - 1 WHERE id = $1", author_id)


async def like(conn: asyncpg.Connection, post_id: int, user_id: int) -> bool:
    """True if this created the like. The counter moves in the same transaction, so it stays exact:
    concurrent likers queue on the post's row for the increment only."""
    try:
        created = await conn.fetchval(
            "INSERT INTO likes (post_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
            post_id,
            user_id,
        )
    except asyncpg.ForeignKeyViolationError:
        raise NotFound("no such post") from None
    if created:
        await conn.execute("UPDATE posts SET like_count = like_count + 1 WHERE id = $1", post_id)
    return bool(created)


async def unlike(conn: asyncpg.Connection, post_id: int, user_id: int) -> bool:
    deleted = await conn.fetchval(
        "DELETE FROM likes WHERE post_id = $1 AND user_id = $2 RETURNING true", post_id, user_id
    )
    if deleted:
        await conn.execute("UPDATE posts SET like_count = like_count - 1 WHERE id = $1", post_id)
    elif not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM posts WHERE id = $1)", post_id):
        raise NotFound("no such post")
    return bool(deleted)


async def has_liked(conn: asyncpg.Connection, post_id: int, user_id: int) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM likes WHERE post_id = $1 AND user_id = $2)", post_id, user_id)


_NEWEST = f"SELECT {_COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id WHERE p.id < $1 ORDER BY p.id DESC"
_NEWEST_BY = f"""
    SELECT {_COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id
    WHERE p.author_id = $1 AND p.id < $2 ORDER BY p.id DESC LIMIT $3
"""


async def list_posts(
    conn: asyncpg.Connection, author_id: int | None, before_id: int | None, limit: int
) -> list[asyncpg.Record]:
    """Newest first, everyone's or one author's (a statement each: both planned once, pg.before)."""
    if author_id is None:
        # The limit is written into the statement (an int, one statement per page size): with
        # `LIMIT $n`, the generic plan assumes a tenth of the table and gathers it in parallel.
        return await conn.fetch(f"{_NEWEST} LIMIT {int(limit)}", pg.before(before_id))
    return await conn.fetch(_NEWEST_BY, author_id, pg.before(before_id), limit)


async def feed(conn: asyncpg.Connection, user_id: int, before_id: int | None, limit: int) -> list[asyncpg.Record]:
    """The posts of the people `user_id` follows and their own, newest first.

    Fan-out on read: for each followed author, at most `limit` posts from the
    (author_id, id DESC) index, then the newest `limit` of those. The cost is
    one short index range per followed author, whatever the table's size.
    """
    return await conn.fetch(
        f"""
        SELECT {_COLUMNS}
        FROM (
            SELECT followee_id AS author_id FROM follows WHERE follower_id = $1
            UNION ALL SELECT $1::bigint
        ) a
        CROSS JOIN LATERAL (
            SELECT * FROM posts
            WHERE posts.author_id = a.author_id AND posts.id < $2
            ORDER BY posts.id DESC
            LIMIT $3
        ) p
        JOIN users u ON u.id = p.author_id
        ORDER BY p.id DESC
        LIMIT $3
        """,
        user_id,
        pg.before(before_id),
        limit,
    )


async def trending(conn: asyncpg.Connection, window_hours: int, limit: int) -> list[asyncpg.Record]:
    """The most-liked posts created within the window (ties: newer first)."""
    return await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id
        WHERE p.created_at > now() - make_interval(hours => $1) AND p.like_count > 0
        ORDER BY p.like_count DESC, p.id DESC
        LIMIT $2
        """,
        window_hours,
        limit,
    )
