"""The router's checkouts: connections handed out in the order they were asked for."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from hmb.config import Settings
from hmb.store.router import open_databases


async def test_a_connection_goes_to_whoever_has_waited_longest(settings: Settings):
    """A request asking as a connection is handed back queues behind those already waiting.
    (asyncpg's own queue lets it take the connection from the waiter woken for it, which then
    queues again at the back: under load, a few requests waited over and over, p95 109-128 ms
    against the bare asyncpg yardstick's 37-41.)"""
    db = await open_databases(settings.with_(db=replace(settings.db, pool_max=1)))
    turns: list[str] = []
    waiting: list[int] = []  # the pool's waiting count, as each holder saw it

    async def note(conn, who: str) -> None:
        turns.append(who)
        waiting.append(db.primary.waiting)

    async def client(who: str) -> None:  # asks again as soon as it is answered, as a busy client does
        for _ in range(4):
            await db.strong_read(note, who)

    try:
        await asyncio.gather(*(client(who) for who in "abc"))
    finally:
        await db.close()
    assert "".join(turns) == "abc" * 4
    assert max(waiting) == 2 and db.primary.waiting == 0  # the other two, while one holds it
