"""/api/posts: the newest list, create/read/edit/delete, likes, the feed and trending."""

from __future__ import annotations

from aiohttp import web

from hmb.appkeys import CACHE, DB, FANOUT
from hmb.errors import Forbidden, Invalid, NotFound
from hmb.store import cache_keys, posts
from hmb.store.cache_keys import Key
from hmb.store.router import Write
from hmb.web import cached
from hmb.web.cached import PublicRead
from hmb.web.http import cached_response, dumps, json_response, parse_body, parse_query, path_id, with_flag
from hmb.web.identity import caller, optional_caller
from hmb.web.idempotency import create_once
from hmb.web.pagination import decode_id_cursor, page
from hmb.web.schemas.common import PageQuery
from hmb.web.schemas.posts import Post, PostDetail, PostIn, PostPatch, PostsQuery, TrendingQuery

# "Recent" for trending: posts created in the last three days.
TRENDING_WINDOW_HOURS = 72
NO_CONTENT = 204


def _page_body(rows, limit: int) -> bytes:
    result = page(rows, limit, lambda r: [r["id"]])
    result["items"] = [Post.model_validate(dict(r)).model_dump() for r in result["items"]]
    return dumps(result)


async def list_posts(request: web.Request) -> web.Response:
    """Everyone's posts (cached per page under one generation) or one author's (not cached)."""
    query = parse_query(request, PostsQuery)
    before_id = decode_id_cursor(query.cursor)
    db = request.app[DB]

    async def load(floor: int | None) -> bytes:
        rows = await db.read(posts.list_posts, query.author_id, before_id, query.limit + 1, floor=floor)
        return _page_body(rows, query.limit)

    if query.author_id:
        return cached_response(await load(None), "bypass")
    return await cached.by_generation(
        request, cache_keys.posts_gen(), lambda g: cache_keys.posts_list(g, query.cursor or "", query.limit), load
    )


async def create_post(request: web.Request) -> web.Response:
    principal = caller(request)
    data = await parse_body(request, PostIn)

    async def create(w: Write) -> dict:
        row = await posts.create_post(w.conn, principal.user_id, data.body, data.image_file_id)
        if row is None:
            raise Invalid(fields={"image_file_id": "not a post image you uploaded"})
        _after_change(request, w, principal.user_id)
        return PostDetail.model_validate(dict(row)).model_dump()

    return await create_once(request, principal, create, one_statement=True)


def _after_change(request: web.Request, w: Write, author_id: int, post_id: int | None = None) -> None:
    """A post appeared, changed or went: the author's count, the lists, every follower's feed."""
    w.invalidate(cache_keys.user(author_id), *([cache_keys.post(post_id)] if post_id else []))
    w.bump(cache_keys.posts_gen())
    request.app[FANOUT].after_write(w, author_id)


async def get_post(request: web.Request) -> web.Response:
    """The cached body is the same for everyone, `liked_by_me` false; a caller who liked it gets it set."""
    post_id = path_id(request)
    principal = optional_caller(request)
    db = request.app[DB]

    async def load() -> bytes:
        row = await db.read(posts.get_post, post_id)
        if row is None:
            raise NotFound("no such post")
        return dumps(PostDetail.model_validate(dict(row)).model_dump())  # liked_by_me last (with_flag)

    body, level = await request.app[CACHE].get_or_load(cache_keys.post(post_id), load)
    if principal is not None:
        body = with_flag(body, "liked_by_me", await db.read(posts.has_liked, post_id, principal.user_id))
    return cached_response(body, level)


async def patch_post(request: web.Request) -> web.Response:
    principal = caller(request)
    post_id = path_id(request)
    data = await parse_body(request, PostPatch)
    async with request.app[DB].write() as w:
        await _own(w, post_id, principal.user_id, "edit")
        await posts.update_post(w.conn, post_id, data.body)
        row = await posts.get_post(w.conn, post_id)
        _after_change(request, w, principal.user_id, post_id)
    return json_response(PostDetail.model_validate(dict(row)).model_dump())


async def delete_post(request: web.Request) -> web.Response:
    principal = caller(request)
    post_id = path_id(request)
    async with request.app[DB].write() as w:
        await _own(w, post_id, principal.user_id, "delete")
        await posts.delete_post(w.conn, post_id, principal.user_id)
        _after_change(request, w, principal.user_id, post_id)
    return web.Response(status=NO_CONTENT)


async def _own(w: Write, post_id: int, user_id: int, verb: str) -> None:
    """Posts are public: a missing post is 404, someone else's is 403."""
    if await posts.lock_author(w.conn, post_id) != user_id:
        raise Forbidden(f"only the author can {verb} this post")


async def like(request: web.Request) -> web.Response:
    """Idempotent: liking twice is one like."""
    principal = caller(request)
    post_id = path_id(request)
    async with request.app[DB].write() as w:
        if await posts.like(w.conn, post_id, principal.user_id):
            _after_like(w, post_id, principal.user_id)
    return web.Response(status=NO_CONTENT)


async def unlike(request: web.Request) -> web.Response:
    principal = caller(request)
    post_id = path_id(request)
    async with request.app[DB].write() as w:
        if await posts.unlike(w.conn, post_id, principal.user_id):
            _after_like(w, post_id, principal.user_id)
    return web.Response(status=NO_CONTENT)


def _after_like(w: Write, post_id: int, user_id: int) -> None:
    # The post's count is exact at once; other readers' feed pages catch up within the feed TTL,
    # the liker's own feed at once.
    w.invalidate(cache_keys.post(post_id))
    w.bump(cache_keys.feed_gen(user_id))


async def feed(request: web.Request) -> web.Response:
    """The caller's feed, newest first, cached per page under the caller's feed generation."""
    principal = caller(request)
    query = parse_query(request, PageQuery)
    before_id = decode_id_cursor(query.cursor)
    uid = principal.user_id

    async def load(floor: int | None) -> bytes:  # the database only on a miss
        rows = await request.app[DB].read(posts.feed, uid, before_id, query.limit + 1, floor=floor)
        return _page_body(rows, query.limit)

    def key_for(gen: int) -> cache_keys.Key:
        return cache_keys.feed(uid, gen, query.cursor or "", query.limit)

    # Fan-out bumps are not broadcast (a post can bump 100,000 feeds), so this worker trusts its
    # copy of the generation for FEED_GEN_LOCAL_S: a followee's post shows within that; the
    # caller's own writes at once (their read position is past the copy).
    return await cached.by_generation(
        request, cache_keys.feed_gen(uid), key_for, load, local_s=cache_keys.FEED_GEN_LOCAL_S
    )


def _trending_key(request: web.Request) -> Key:
    return cache_keys.trending(parse_query(request, TrendingQuery).limit)


async def _load_trending(request: web.Request) -> bytes:
    limit = parse_query(request, TrendingQuery).limit
    rows = await request.app[DB].read(posts.trending, TRENDING_WINDOW_HOURS, limit)
    items = [Post.model_validate(dict(r)).model_dump() for r in rows]
    return dumps({"window_hours": TRENDING_WINDOW_HOURS, "items": items})


# The most-liked posts of the last TRENDING_WINDOW_HOURS; cached 600 s, then recomputed in the
# background while every request keeps getting the previous list (the cache's stale-while-revalidate).
trending = PublicRead(_trending_key, _load_trending)
