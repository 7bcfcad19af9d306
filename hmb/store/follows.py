"""Follows: who follows whom, the profile counters they move, and the feed fan-out to followers."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import asyncpg

from hmb.errors import NotFound
from hmb.store import cache_keys
from hmb.store.users import PUBLIC_COLUMNS

if TYPE_CHECKING:
    from hmb.store.cache import Cache
    from hmb.store.router import Databases, Write

log = logging.getLogger("hmb.fanout")

# A position in a followers/following list: (followed at, in µs since the epoch; user id).
_AT_US = "(extract(epoch FROM f.created_at) * 1000000)::bigint"
_FROM_US = "('epoch'::timestamptz + $2::bigint * interval '1 microsecond')"
_LIST_COLUMNS = ", ".join(f"u.{c}" for c in PUBLIC_COLUMNS.split(", "))


async def follow(conn: asyncpg.Connection, follower_id: int, followee_id: int) -> bool:
    """True if this created the follow (a repeat changes nothing)."""
    try:
        created = await conn.fetchval(
            "INSERT INTO follows (follower_id, followee_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
            follower_id,
            followee_id,
        )
    except asyncpg.ForeignKeyViolationError:
        raise NotFound("no such user") from None
    if created:
        await _count(conn, follower_id, followee_id, +1)
    return bool(created)


async def unfollow(conn: asyncpg.Connection, follower_id: int, followee_id: int) -> bool:
    deleted = await conn.fetchval(
        "DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2 RETURNING true", follower_id, followee_id
    )
    if deleted:
        await _count(conn, follower_id, followee_id, -1)
    return bool(deleted)


async def _count(conn: asyncpg.Connection, follower_id: int, followee_id: int, delta: int) -> None:
    # Lock the two users' rows in id order: A-follows-B and B-follows-A at once must not deadlock.
    for user_id in sorted((follower_id, followee_id)):
        column = "following_count" if user_id == follower_id else "followers_count"
        await conn.execute(f"UPDATE users SET {column} = {column} + $2 WHERE id = $1", user_id, delta)


async def is_following(conn: asyncpg.Connection, follower_id: int, followee_id: int) -> bool:
    """One primary-key probe."""
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM follows WHERE follower_id = $1 AND followee_id = $2)", follower_id, followee_id
    )


async def list_followers(
    conn: asyncpg.Connection, user_id: int, before: list[int] | None, limit: int
) -> list[asyncpg.Record]:
    """The people following `user_id`, most recent first, with `position` for the next cursor."""
    return await _list_side(conn, "follower_id", "followee_id", user_id, before, limit)


async def list_following(
    conn: asyncpg.Connection, user_id: int, before: list[int] | None, limit: int
) -> list[asyncpg.Record]:
    """The people `user_id` follows, most recent first, with `position` for the next cursor."""
    return await _list_side(conn, "followee_id", "follower_id", user_id, before, limit)


async def _list_side(conn, shown: str, anchored: str, user_id: int, before, limit: int) -> list[asyncpg.Record]:
    # `shown`/`anchored` are this module's column names, never input.
    at_us, other = before or (None, None)
    return await conn.fetch(
        f"""
        SELECT {_LIST_COLUMNS}, {_AT_US} AS position
        FROM follows f JOIN users u ON u.id = f.{shown}
        WHERE f.{anchored} = $1
          AND ($2::bigint IS NULL OR (f.created_at, f.{shown}) < ({_FROM_US}, $3::bigint))
        ORDER BY f.created_at DESC, f.{shown} DESC
        LIMIT $4
        """,
        user_id,
        at_us,
        other,
        limit,
    )


async def follower_ids(conn: asyncpg.Connection, user_id: int, after_id: int, limit: int) -> list[int]:
    """One chunk of follower ids in id order (an index range scan on follows_followee)."""
    rows = await conn.fetch(
        "SELECT follower_id FROM follows WHERE followee_id = $1 AND follower_id > $2 ORDER BY follower_id LIMIT $3",
        user_id,
        after_id,
        limit,
    )
    return [r[0] for r in rows]


# follower_ids(conn, $1, 0, $2), as one expression.
_FIRST_FOLLOWERS = "ARRAY(SELECT follower_id FROM follows WHERE followee_id = $1 ORDER BY follower_id LIMIT $2)"


class FeedFanout:
    """After a post is created, edited or deleted: move the feed generation of its author and followers.

    The author and the first INLINE followers (read on the primary with the commit's WAL
    position) are bumped before the response is sent, with the write's other cache work
    (Invalidations.apply), so a typical author's followers see it within FEED_GEN_LOCAL_S (at once
    on this worker). Followers past that (large accounts) are bumped by a background task,
    CHUNK ids per database read and one Redis round trip per chunk: time grows linearly with
    followers and nothing holds a connection or the request meanwhile.
    """

    INLINE = 1000
    CHUNK = 2000

    def __init__(self, db: Databases, cache: Cache):
        self.db = db
        self.cache = cache
        self.tasks: set[asyncio.Task] = set()
        self.last: dict[str, float] = {}

    def after_write(self, w: Write, author_id: int) -> None:
        """Queue the fan-out of a post by `author_id` on `w`'s commit."""
        # Read on the primary just after the commit: the follower list as of this post.
        w.read_at_commit(_FIRST_FOLLOWERS, author_id, self.INLINE)
        w.on_commit(lambda lsn: self._inline(w, author_id, lsn))

    async def _inline(self, w: Write, author_id: int, lsn: int) -> None:
        started = time.perf_counter()
        ids = w.read_value
        # Not broadcast: other workers' copies of these generations age out within FEED_GEN_LOCAL_S.
        w.bump_quietly(cache_keys.feed_gen_names([author_id, *ids]))
        if len(ids) < self.INLINE:
            self._done(author_id, len(ids), started)
            return
        task = asyncio.get_running_loop().create_task(self._rest(author_id, ids[-1], lsn, len(ids), started))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _rest(self, author_id: int, after_id: int, lsn: int, done: int, started: float) -> None:
        try:
            while True:
                ids = await self.db.read(follower_ids, author_id, after_id, self.CHUNK, floor=lsn)
                if not ids:
                    break
                await self.cache.invalidations.apply(lsn, [], [], cache_keys.feed_gen_names(ids))
                done += len(ids)
                after_id = ids[-1]
        except asyncio.CancelledError:
            log.warning("feed fan-out cancelled", extra={"author_id": author_id, "followers_done": done})
            raise
        except Exception:
            # The followers left keep their cached pages until the feed TTL: stale, bounded.
            log.exception("feed fan-out failed", extra={"author_id": author_id, "followers_done": done})
            return
        self._done(author_id, done, started)

    def _done(self, author_id: int, followers: int, started: float) -> None:
        seconds = time.perf_counter() - started
        self.last = {"author_id": author_id, "followers": followers, "seconds": seconds}
        if followers >= self.INLINE:
            log.info("feed fan-out done", extra=self.last)

    async def close(self, timeout_s: float = 5.0) -> None:
        """Let running fan-outs finish (a draining worker), then cancel what is left."""
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=timeout_s)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
