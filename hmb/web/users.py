"""/api/users: public profiles (cached), the directory, follows, and editing one's own profile."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from hmb.appkeys import CACHE, DB
from hmb.errors import Invalid, NotFound
from hmb.store import cache_keys, follows, users
from hmb.store.router import Write
from hmb.web import files as file_uploads
from hmb.web import cached
from hmb.web.http import body_response, cached_response, dumps, json_response, parse_body, parse_query, path_id, with_flag
from hmb.web.identity import caller, optional_caller
from hmb.web.pagination import decode_cursor, decode_id_cursor, page
from hmb.web.schemas.auth import Me
from hmb.web.schemas.common import PageQuery
from hmb.web.schemas.users import Profile, ProfileDetail, ProfilePatch, UsersQuery

NO_CONTENT = 204


async def get_profile(request: web.Request) -> web.Response:
    """The cached body is the same for everyone, `is_following` false; a caller who follows gets it set."""
    user_id = path_id(request)
    principal = optional_caller(request)
    app = request.app

    async def load() -> bytes:
        row = await app[DB].read(users.get_public, user_id)
        if row is None:
            raise NotFound("no such user")
        return dumps(ProfileDetail.model_validate(dict(row)).model_dump())  # is_following last (with_flag)

    body, level = await app[CACHE].get_or_load(cache_keys.user(user_id), load)
    if principal is not None and principal.user_id != user_id:
        # One primary-key probe; read-your-writes makes a fresh follow visible at once.
        body = with_flag(body, "is_following", await app[DB].read(follows.is_following, principal.user_id, user_id))
    return cached_response(body, level)


async def list_users(request: web.Request) -> web.Response:
    query = parse_query(request, UsersQuery)
    before_id = decode_id_cursor(query.cursor)
    db = request.app[DB]

    async def load(floor: int | None) -> bytes:
        rows = await db.read(users.list_users, query.q, before_id, query.limit + 1, floor=floor)
        result = page(rows, query.limit, lambda r: [r["id"]])
        result["items"] = [Profile.model_validate(dict(r)).model_dump() for r in result["items"]]
        return dumps(result)

    if query.q:  # searches are too varied to be worth caching
        return body_response(await load(None))
    return await cached.by_generation(
        request, cache_keys.users_gen(), lambda g: cache_keys.users_list(g, query.cursor or "", query.limit), load
    )


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


async def follow(request: web.Request) -> web.Response:
    """Idempotent: following someone twice is one follow."""
    principal = caller(request)
    target = path_id(request)
    if target == principal.user_id:
        raise Invalid("you cannot follow yourself", {"id": "cannot follow yourself"})
    async with request.app[DB].write() as w:
        if await follows.follow(w.conn, principal.user_id, target):
            _after_follow_change(w, principal.user_id, target)
    return web.Response(status=NO_CONTENT)


async def unfollow(request: web.Request) -> web.Response:
    principal = caller(request)
    target = path_id(request)
    async with request.app[DB].write() as w:
        if await follows.unfollow(w.conn, principal.user_id, target):
            _after_follow_change(w, principal.user_id, target)
        elif not await users.exists(w.conn, target):
            raise NotFound("no such user")
    return web.Response(status=NO_CONTENT)


def _after_follow_change(w: Write, follower_id: int, followee_id: int) -> None:
    # Both profiles' counters moved; the follower's feed gains or loses an author.
    w.invalidate(cache_keys.user(follower_id), cache_keys.user(followee_id))
    w.bump(cache_keys.feed_gen(follower_id))


async def followers(request: web.Request) -> web.Response:
    return await _follow_list(request, follows.list_followers)


async def following(request: web.Request) -> web.Response:
    return await _follow_list(request, follows.list_following)


async def _follow_list(request: web.Request, fetch: Callable[..., Awaitable[list]]) -> web.Response:
    """Most recent first; not cached (a page read is one index range of the follows table)."""
    user_id = path_id(request)
    query = parse_query(request, PageQuery)
    before = decode_cursor(query.cursor, (int, int))
    db = request.app[DB]
    rows = await db.read(fetch, user_id, before, query.limit + 1)
    if not rows and before is None and not await db.read(users.exists, user_id):
        raise NotFound("no such user")
    result = page(rows, query.limit, lambda r: [r["position"], r["id"]])
    result["items"] = [Profile.model_validate(dict(r)).model_dump() for r in result["items"]]
    return json_response(result)


async def put_avatar(request: web.Request) -> web.Response:
    """Upload an image and make it the caller's avatar; the previous one is deleted."""
    principal = caller(request)
    upload = await file_uploads.receive(request, purpose="avatar")
    return await file_uploads.store_avatar(request, principal, upload)
