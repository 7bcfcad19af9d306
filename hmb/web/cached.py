"""Responses served through the two-level cache, with X-Cache saying which level answered."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from hmb.appkeys import CACHE
from hmb.store.cache_keys import Key
from hmb.store.router import read_floor
from hmb.web.http import cached_response

PageLoader = Callable[[int | None], Awaitable[bytes]]


async def by_generation(
    request: web.Request, gen_key: Key, key_for: Callable[[int], Key], load: PageLoader, *, local_s: float | None = None
) -> web.Response:
    """A page of a group cached under the group's generation, loaded at that generation's WAL position.

    `load(floor)` reads with `floor` as its read-your-writes position, so a lagging replica
    cannot refill the new generation with data from before the write that bumped it. When
    Redis cannot say which generation is current, the page is read and not cached.
    """
    cache = request.app[CACHE]
    gen = await cache.generation(gen_key, read_floor.get(), local_s)
    if gen is None:
        return cached_response(await load(None), "bypass")
    body, level = await cache.get_or_load(key_for(gen), lambda: load(gen))
    return cached_response(body, level)
