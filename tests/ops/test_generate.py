"""hmb.ops.generate: the `tiny` preset loads through COPY, is deterministic per seed, keeps its
counters consistent with its rows, rebuilds every index, and returns with the replica caught up."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest
from click.testing import CliRunner

from hmb.ops import generate
from hmb.ops.stack import StackInfo

ANCHOR = datetime(2026, 3, 1, 12, tzinfo=UTC)
TABLES = ("users", "follows", "posts", "likes", "jobs", "applications", "conversations", "messages",
          "conversation_members", "mailboxes")
# Every column but the password hash (argon2 salts it at random).
DIGEST = {
    "users": "id, email, name, role, headline, location, created_at, followers_count, following_count, posts_count",
    "follows": "follower_id, followee_id, created_at",
    "posts": "id, author_id, body, like_count, created_at",
    "likes": "post_id, user_id, created_at",
    "jobs": "id, employer_id, title, description, location, salary_min, status, closed_at",
    "applications": "id, job_id, applicant_id, status, created_at",
    "messages": "id, conversation_id, sender_id, recipient_id, body, created_at",
    "conversation_members": "conversation_id, user_id, last_message_id, last_read_message_id",
}


async def _load(stack: StackInfo, seed: int = 7) -> dict[str, int]:
    return await generate.generate(stack.primary_url, (stack.replica_url,), generate.PRESETS["tiny"], seed,
                                   anchor=ANCHOR)


async def _digest(conn: asyncpg.Connection) -> dict[str, str]:
    return {
        table: await conn.fetchval(f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM (SELECT {cols} FROM {table}) t")
        for table, cols in DIGEST.items()
    }


async def _indexes(conn: asyncpg.Connection) -> set[str]:
    return {r[0] for r in await conn.fetch("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'")}


async def test_tiny_loads_with_consistent_counters_and_every_index(stack, primary):
    before = await _indexes(primary)
    counts = await _load(stack)
    preset = generate.PRESETS["tiny"]
    assert counts["users"] == preset.users and counts["posts"] == preset.posts
    assert counts["likes"] == preset.likes and counts["messages"] == preset.messages
    assert counts["applications"] == preset.applications and counts["jobs"] == preset.jobs
    for table in TABLES:
        assert await primary.fetchval(f"SELECT count(*) FROM {table}") == counts[table], table
    assert await _indexes(primary) == before  # dropped for the load, all rebuilt
    bad = await primary.fetchrow(
        """
        SELECT
          (SELECT count(*) FROM users u WHERE followers_count <> (SELECT count(*) FROM follows WHERE followee_id = u.id)
              OR following_count <> (SELECT count(*) FROM follows WHERE follower_id = u.id)
              OR posts_count <> (SELECT count(*) FROM posts WHERE author_id = u.id)) AS users,
          (SELECT count(*) FROM posts p WHERE like_count <> (SELECT count(*) FROM likes WHERE post_id = p.id)) AS posts,
          (SELECT count(*) FROM conversation_members m
             WHERE last_message_id <> (SELECT max(id) FROM messages WHERE conversation_id = m.conversation_id)
                OR last_read_message_id > last_message_id) AS members,
          (SELECT count(*) FROM mailboxes b WHERE last_message_id <> (SELECT max(id) FROM messages
             WHERE sender_id = b.user_id OR recipient_id = b.user_id)) AS mailboxes,
          (SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id
             WHERE (least(sender_id, recipient_id), greatest(sender_id, recipient_id)) <> (c.user_low, c.user_high)) AS pairs,
          (SELECT count(*) FROM applications a JOIN users u ON u.id = a.applicant_id WHERE u.role <> 'seeker') AS applicants,
          (SELECT count(*) FROM jobs j JOIN users u ON u.id = j.employer_id WHERE u.role <> 'employer') AS employers,
          (SELECT count(*) FROM posts p JOIN users u ON u.id = p.author_id WHERE p.created_at < u.created_at) AS early
        """
    )
    assert dict(bad) == dict.fromkeys(bad.keys(), 0)
    # A new row gets the next id: identity sequences moved past the loaded ones.
    new_id = await primary.fetchval("INSERT INTO users (email, password_hash, name, role) VALUES ('n@x.io', '!', 'N', 'seeker') RETURNING id")
    assert new_id == preset.users + 1
    # The command returned only once the replica had replayed the load.
    replica = await asyncpg.connect(stack.replica_url)
    try:
        for table in ("users", "follows", "messages", "mailboxes"):
            assert await replica.fetchval(f"SELECT count(*) FROM {table}") == counts[table], table
    finally:
        await replica.close()


async def test_same_seed_same_rows_other_seed_other_rows(stack, primary):
    await _load(stack, seed=7)
    first = await _digest(primary)
    await generate.reset(stack.primary_url)
    await _load(stack, seed=7)
    assert await _digest(primary) == first
    await generate.reset(stack.primary_url)
    await _load(stack, seed=8)
    other = await _digest(primary)
    assert all(other[t] != first[t] for t in ("users", "follows", "posts", "messages"))


async def test_refuses_a_database_with_users(stack, primary):
    await _load(stack)
    with pytest.raises(RuntimeError, match="already has users"):
        await _load(stack)


def test_seed_command_takes_a_preset(stack, monkeypatch):
    for name, value in stack.env().items():
        monkeypatch.setenv(name, value)
    from hmb.ops.seed import seed

    result = CliRunner().invoke(seed, ["--preset", "tiny", "--seed", "3", "--scale", "0.5"])
    assert result.exit_code == 0, result.output
    assert "users 150," in result.output and "loaded in" in result.output
