"""Responses served through the two-level cache, with X-Cache saying which level answered."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from hmb.appkeys import CACHE
from hmb.store.cache import PageLoader
from hmb.store.cache_keys import Key
from hmb.store.router import read_floor
from hmb.web.http import cached_response


async def by_generation(
    request: web.Request, gen_key: Key, key_for: Callable[[int], Key], load: PageLoader, *, local_s: float | None = None
) -> web.Response:
    """A page of a group cached under the group's generation (Cache.by_generation), read at the
    caller's read position; when Redis cannot say which generation is current, read and not cached."""
    body, level = await request.app[CACHE].by_generation(gen_key, key_for, load, read_floor.get(), local_s)
    return cached_response(body, level)
