"""Keyset-paginated list reads are planned once per connection, not on every run.

asyncpg prepares each statement once per connection; PostgreSQL then plans it for the
first five runs and keeps a generic plan if that costs no more than theirs. A statement
shaped `($2 IS NULL OR id < $2)` never gets one: each run is planned anew (~80 µs of the
database's CPU on an author's posts, half of the query), and a later page's bound is a
filter, not an index condition.
"""

from __future__ import annotations

import asyncpg
import pytest

from hmb.store import applications, messages, posts, users

RUNS = 12  # past PostgreSQL's five custom plans


@pytest.fixture
async def populated(primary: asyncpg.Connection) -> asyncpg.Connection:
    """Enough rows that the planner weighs index against scan, as on a real data set."""
    await primary.execute(
        """
        INSERT INTO users (email, password_hash, name, role)
        SELECT 'u' || n || '@example.com', 'x', 'Person ' || n, CASE WHEN n % 10 = 0 THEN 'employer' ELSE 'seeker' END
        FROM generate_series(1, 2000) n;
        INSERT INTO posts (author_id, body) SELECT 1 + n % 2000, 'post ' || n FROM generate_series(1, 20000) n;
        INSERT INTO follows (follower_id, followee_id) SELECT 1, n FROM generate_series(2, 201) n;
        ANALYZE users; ANALYZE posts; ANALYZE follows;
        """
    )
    return primary


LIST_READS = {
    "one author's posts": lambda c, i, before: posts.list_posts(c, 1 + i, before, 21),
    "everyone's posts": lambda c, i, before: posts.list_posts(c, None, before, 21),
    "the feed": lambda c, i, before: posts.feed(c, 1 + i, before, 21),
    "the directory": lambda c, i, before: users.list_users(c, None, before, 21),
    "conversations": lambda c, i, before: messages.list_conversations(c, 1 + i, before, 21),
    "a job's applications": lambda c, i, before: applications.list_for_job(c, 1 + i, None, before, 21),
    "a seeker's applications": lambda c, i, before: applications.list_for_applicant(c, 1 + i, None, before, 21),
}


@pytest.mark.parametrize("name", LIST_READS)
async def test_a_list_read_is_planned_once_for_its_first_and_later_pages(populated: asyncpg.Connection, name: str):
    read = LIST_READS[name]  # on a connection of its own: nothing prepared on it yet
    for i in range(RUNS):
        await read(populated, i, None if i % 2 else 15000 - i)
    plans = await populated.fetch(
        "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
        " WHERE name LIKE '__asyncpg%' AND statement NOT LIKE '%pg_prepared_statements%'"
    )
    assert len(plans) == 1, plans
    assert plans[0]["generic_plans"] == RUNS - 5, plans[0]["statement"]
