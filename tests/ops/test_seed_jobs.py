"""The demo data set's jobs step: open jobs, applications at several stages, conversations with unread messages."""

from __future__ import annotations

from hmb.ops.seed import load_demo
from hmb.ops.seed_jobs import DEMO_APPLICATIONS, DEMO_JOBS, DEMO_MESSAGES


async def test_demo_jobs_applications_and_conversations(stack, primary):
    assert await load_demo(stack.primary_url)
    assert await primary.fetchval("SELECT count(*) FROM jobs WHERE status = 'open'") == len(DEMO_JOBS)
    statuses = await primary.fetch("SELECT status FROM applications ORDER BY id")
    assert [r["status"] for r in statuses] == [a[2] for a in DEMO_APPLICATIONS]
    assert await primary.fetchval("SELECT count(*) FROM messages") == len(DEMO_MESSAGES)
    assert await primary.fetchval("SELECT count(*) FROM conversations") == 3
    # Search works on the demo set (the generated tsvector is filled in).
    found = await primary.fetchval("SELECT title FROM jobs WHERE search @@ websearch_to_tsquery('english', 'python')")
    assert found == "Python developer"
