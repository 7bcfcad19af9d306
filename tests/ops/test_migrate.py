"""`hmb migrate`: apply, status and rollback; two pods migrating at once take turns."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from hmb.ops import migrate


@pytest.fixture
async def scratch_db(stack):
    admin = await asyncpg.connect(stack.primary_url)
    await admin.execute("DROP DATABASE IF EXISTS migrate_scratch")
    await admin.execute("CREATE DATABASE migrate_scratch")
    yield stack.primary_url.rsplit("/", 1)[0] + "/migrate_scratch"
    await admin.execute("DROP DATABASE migrate_scratch WITH (FORCE)")
    await admin.close()


async def test_two_concurrent_migrators_apply_each_migration_once(scratch_db):
    first, second = await asyncio.gather(
        asyncio.to_thread(migrate.apply, scratch_db), asyncio.to_thread(migrate.apply, scratch_db)
    )
    every = [m.id for m in await asyncio.to_thread(migrate.status, scratch_db)]
    assert sorted(first + second) == sorted(every)  # together they applied everything, neither twice
    assert all(state.applied for state in await asyncio.to_thread(migrate.status, scratch_db))


async def test_rollback_undoes_the_latest_and_apply_restores_it(scratch_db):
    await asyncio.to_thread(migrate.apply, scratch_db)
    states = await asyncio.to_thread(migrate.status, scratch_db)
    latest = states[-1].id
    assert await asyncio.to_thread(migrate.rollback, scratch_db, 1) == [latest]
    states = {s.id: s.applied for s in await asyncio.to_thread(migrate.status, scratch_db)}
    assert states[latest] is False
    assert await asyncio.to_thread(migrate.apply, scratch_db) == [latest]


async def test_every_migration_rolls_back_cleanly(scratch_db):
    await asyncio.to_thread(migrate.apply, scratch_db)
    total = len(await asyncio.to_thread(migrate.status, scratch_db))
    assert len(await asyncio.to_thread(migrate.rollback, scratch_db, total)) == total
    conn = await asyncpg.connect(scratch_db)
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename NOT LIKE '%yoyo%'")
    finally:
        await conn.close()
    assert tables == []
