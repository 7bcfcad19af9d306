"""Responses served through the two-level cache, with X-Cache saying which level answered."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from hmb.appkeys import CACHE
from hmb.store.cache import PageLoader
from hmb.store.cache_keys import Key
from hmb.store.router import read_floor
from hmb.web.http import cached_response

KeyFor = Callable[[web.Request], Key]
RequestLoader = Callable[[web.Request], Awaitable[bytes]]


class PublicRead:
    """The handler of a read whose body is the same for every caller (a job, trending): cached
    under `key_for(request)`, loaded by `load(request)` on a miss.

    Declaring the key here, rather than inside a handler, lets the core answer a fresh L1 copy
    itself before any handler runs (hmb.web.middlewares): on the most frequent reads that skips
    a coroutine, a closure and a cache call, about a quarter of what they cost over /health.
    `key_for` runs on every request of the route, so a malformed id fails there (a 404).
    """

    __slots__ = ("key_for", "load")

    def __init__(self, key_for: KeyFor, load: RequestLoader):
        self.key_for, self.load = key_for, load

    async def __call__(self, request: web.Request) -> web.Response:
        body, level = await request.app[CACHE].get_or_load(self.key_for(request), lambda: self.load(request))
        return cached_response(body, level)


async def by_generation(
    request: web.Request, gen_key: Key, key_for: Callable[[int], Key], load: PageLoader, *, local_s: float | None = None
) -> web.Response:
    """A page of a group cached under the group's generation (Cache.by_generation), read at the
    caller's read position; when Redis cannot say which generation is current, read and not cached."""
    body, level = await request.app[CACHE].by_generation(gen_key, key_for, load, read_floor.get(), local_s)
    return cached_response(body, level)
