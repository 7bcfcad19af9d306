"""Sending a message: one statement, so one round trip and no transaction of its own."""

from __future__ import annotations

import asyncio

import asyncpg

from hmb.store import messages


async def test_a_message_is_sent_in_one_statement_with_its_stream_heads(primary: asyncpg.Connection):
    ann, bob = [
        r["id"]
        for r in await primary.fetch(
            "INSERT INTO users (email, password_hash, name, role)"
            " SELECT 'm' || n || '@example.com', 'x', 'Person ' || n, 'seeker' FROM generate_series(1, 2) n RETURNING id"
        )
    ]
    statements: list[str] = []
    primary.add_query_logger(lambda record: statements.append(record.query))

    first = await messages.send_message(primary, ann, bob, "hello")
    reply = await messages.send_message(primary, bob, ann, "hello back")
    nobody = await messages.send_message(primary, ann, 10**12, "is anyone there")
    await asyncio.sleep(0)  # asyncpg hands each record to its query loggers with call_soon

    # One statement each: atomic on its own, no BEGIN and COMMIT round trips around it.
    assert len(statements) == 3, statements
    assert nobody is None
    assert dict(first.message).keys() == {"id", "conversation_id", "sender_id", "recipient_id", "body", "created_at"}
    assert (first.message["sender_id"], first.message["recipient_id"], first.message["body"]) == (ann, bob, "hello")
    assert reply.message["conversation_id"] == first.message["conversation_id"]
    # Each member's previous message in their stream: none before the first, the first before the reply.
    assert (first.sender_prev, first.recipient_prev) == (0, 0)
    assert (reply.sender_prev, reply.recipient_prev) == (first.message["id"], first.message["id"])
    assert await primary.fetchval("SELECT count(*) FROM messages") == 2
    assert await primary.fetchval("SELECT count(*) FROM conversations") == 1
