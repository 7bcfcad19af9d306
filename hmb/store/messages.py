"""Messages: conversations between two users, read markers, exact unread counts, each user's stream."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from hmb.store import pg

MESSAGE_COLUMNS = "id, conversation_id, sender_id, recipient_id, body, created_at"
_MESSAGE_FIELDS = MESSAGE_COLUMNS.split(", ")


@dataclass(frozen=True)
class Sent:
    message: dict
    # The previous message of each member's stream (0 if none): a live listener that
    # has not seen it knows it missed something and replays from the database.
    sender_prev: int
    recipient_prev: int


async def send_message(conn: asyncpg.Connection, sender_id: int, recipient_id: int, body: str) -> Sent | None:
    """Append a message (creating the conversation with the first one); None if the recipient
    does not exist.

    One statement, the database function `send_message` (migration 0013): atomic on its own, one
    round trip where a transaction took four (BEGIN, two statements, COMMIT). It locks both
    users' mailbox rows in id order before the message id is drawn, so messages commit in id
    order within each user's stream: a reader that has seen id N and asks for "after N" misses
    nothing.
    """
    row = await conn.fetchrow("SELECT * FROM send_message($1, $2, $3)", sender_id, recipient_id, body)
    if row is None:
        return None
    return Sent({name: row[name] for name in _MESSAGE_FIELDS}, row["sender_prev"], row["recipient_prev"])


async def list_conversations(
    conn: asyncpg.Connection, user_id: int, before_message_id: int | None, limit: int
) -> list[asyncpg.Record]:
    """The user's conversations, most recent activity first, with the last message and the unread count."""
    return await conn.fetch(
        """
        SELECT m.conversation_id AS id, m.peer_id, u.name AS peer_name, m.last_read_message_id,
               x.id AS message_id, x.sender_id, x.recipient_id, x.body, x.created_at,
               (SELECT count(*) FROM messages n
                WHERE n.conversation_id = m.conversation_id
                  AND n.id > m.last_read_message_id AND n.sender_id = m.peer_id) AS unread_count
        FROM conversation_members m
        JOIN users u ON u.id = m.peer_id
        JOIN messages x ON x.id = m.last_message_id
        WHERE m.user_id = $1 AND m.last_message_id < $2
        ORDER BY m.last_message_id DESC
        LIMIT $3
        """,
        user_id,
        pg.before(before_message_id),
        limit,
    )


async def get_membership(conn: asyncpg.Connection, conversation_id: int, user_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """
        SELECT conversation_id, user_id, peer_id, last_message_id, last_read_message_id
        FROM conversation_members WHERE conversation_id = $1 AND user_id = $2
        """,
        conversation_id,
        user_id,
    )


async def list_messages(
    conn: asyncpg.Connection, conversation_id: int, user_id: int, before_id: int | None, limit: int
) -> list[asyncpg.Record] | None:
    """A page of the conversation, newest first; None if the user is not one of its two members."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        if await get_membership(conn, conversation_id, user_id) is None:
            return None
        return await conn.fetch(
            f"""
            SELECT {MESSAGE_COLUMNS} FROM messages
            WHERE conversation_id = $1 AND id < $2
            ORDER BY id DESC LIMIT $3
            """,
            conversation_id,
            pg.before(before_id),
            limit,
        )


async def mark_read(
    conn: asyncpg.Connection, conversation_id: int, user_id: int, up_to: int | None
) -> asyncpg.Record | None:
    """Move the read marker forward (never back) to `up_to`, or to the latest message; None if not a member."""
    return await conn.fetchrow(
        """
        WITH marked AS (
            UPDATE conversation_members
            SET last_read_message_id = greatest(last_read_message_id, least(coalesce($3, last_message_id), last_message_id))
            WHERE conversation_id = $1 AND user_id = $2
            RETURNING conversation_id, peer_id, last_read_message_id
        )
        SELECT marked.conversation_id, marked.last_read_message_id,
               (SELECT count(*) FROM messages n
                WHERE n.conversation_id = marked.conversation_id
                  AND n.id > marked.last_read_message_id AND n.sender_id = marked.peer_id) AS unread_count
        FROM marked
        """,
        conversation_id,
        user_id,
        up_to,
    )


async def stream_head(conn: asyncpg.Connection, user_id: int) -> int:
    """The id of the user's latest message, sent or received (0 if none)."""
    return await conn.fetchval("SELECT last_message_id FROM mailboxes WHERE user_id = $1", user_id) or 0


async def stream_after(conn: asyncpg.Connection, user_id: int, after_id: int, limit: int) -> list[asyncpg.Record]:
    """The user's messages (sent or received) with id above `after_id`, oldest first."""
    return await conn.fetch(
        f"""
        SELECT {MESSAGE_COLUMNS} FROM (
            (SELECT {MESSAGE_COLUMNS} FROM messages WHERE recipient_id = $1 AND id > $2 ORDER BY id LIMIT $3)
            UNION ALL
            (SELECT {MESSAGE_COLUMNS} FROM messages WHERE sender_id = $1 AND id > $2 ORDER BY id LIMIT $3)
        ) s
        ORDER BY id LIMIT $3
        """,
        user_id,
        after_id,
        limit,
    )
