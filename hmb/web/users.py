"""/api/users: public profiles (cached), the directory, and editing one's own profile."""

from __future__ import annotations

from aiohttp import web

from hmb.appkeys import CACHE, DB
from hmb.errors import NotFound
from hmb.store import cache_keys, users
from hmb.web.http import body_response, dumps, json_response, parse_body, parse_query, path_id
from hmb.web.identity import caller
from hmb.web.pagination import decode_cursor, page
from hmb.web.schemas.auth import Me
from hmb.web.schemas.users import Profile, ProfilePatch, UsersQuery


async def get_profile(request: web.Request) -> web.Response:
    user_id = path_id(request)
    db = request.app[DB]

    async def load() -> bytes:
        row = await db.read(users.get_public, user_id)
        if row is None:
            raise NotFound("no such user")
        return dumps(Profile.model_validate(dict(row)).model_dump())

    body, level = await request.app[CACHE].get_or_load(cache_keys.user(user_id), load)
    return body_response(body, headers={"X-Cache": level})


async def list_users(request: web.Request) -> web.Response:
    query = parse_query(request, UsersQuery)
    position = decode_cursor(query.cursor, (int,))
    before_id = position[0] if position else None
    db, cache = request.app[DB], request.app[CACHE]

    async def load(floor: int | None = None) -> bytes:
        rows = await db.read(users.list_users, query.q, before_id, query.limit + 1, floor=floor)
        result = page(rows, query.limit, lambda r: [r["id"]])
        result["items"] = [Profile.model_validate(dict(r)).model_dump() for r in result["items"]]
        return dumps(result)

    if query.q:  # searches are too varied to be worth caching
        return body_response(await load())
    gen = await cache.generation(cache_keys.users_gen())
    if gen is None:
        return body_response(await load(), headers={"X-Cache": "bypass"})
    key = cache_keys.users_list(gen, query.cursor or "", query.limit)
    body, level = await cache.get_or_load(key, lambda: load(floor=gen))
    return body_response(body, headers={"X-Cache": level})


async def patch_me(request: web.Request) -> web.Response:
    principal = caller(request)
    changes = (await parse_body(request, ProfilePatch)).model_dump(exclude_unset=True, exclude_none=True)
    async with request.app[DB].write() as w:
        user = await users.update_profile(w.conn, principal.user_id, changes)
        if user is None:
            raise NotFound("this account no longer exists")
        w.invalidate(cache_keys.user(principal.user_id))
        w.bump(cache_keys.users_gen())
    return json_response(Me.model_validate(dict(user)).model_dump())
