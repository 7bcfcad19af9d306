"""The yardsticks: bare aiohttp apps served like hmb (gunicorn, aiohttp's uvloop worker, same worker count).

`/hello` is the framework's ceiling; `/pg/posts?author_id=` runs the very query behind hmb's
uncached `GET /api/posts?author_id=&limit=1` on the replica with a plain asyncpg pool;
`/redis/{key}` is one GET with redis-py, the round trip behind a Redis-only hit.
Run: gunicorn -k aiohttp.GunicornUVLoopWebWorker -w 2 'bench.yardstick:create_app'
"""

from __future__ import annotations

import os

import asyncpg
import orjson
import redis.asyncio as aioredis
from aiohttp import web

from hmb.store.posts import list_posts

PG = web.AppKey("pg", asyncpg.Pool)
REDIS = web.AppKey("redis", aioredis.Redis)
HELLO = b'{"status":"ok"}'


async def hello(request: web.Request) -> web.Response:
    return web.Response(body=HELLO, content_type="application/json")


async def pg_posts(request: web.Request) -> web.Response:
    author_id = int(request.query["author_id"])
    async with request.app[PG].acquire() as conn:
        rows = await list_posts(conn, author_id, None, 2)
    return web.Response(body=orjson.dumps([dict(r) for r in rows[:1]], option=orjson.OPT_UTC_Z),
                        content_type="application/json")


async def redis_get(request: web.Request) -> web.Response:
    value = await request.app[REDIS].get(request.match_info["key"])
    return web.Response(body=value or b"0", content_type="application/json")


async def _resources(app: web.Application):
    app[PG] = await asyncpg.create_pool(os.environ["YARDSTICK_PG_URL"], min_size=0, max_size=8)
    app[REDIS] = aioredis.Redis.from_url(os.environ["REDIS_URL"], max_connections=64)
    yield
    await app[REDIS].aclose()
    await app[PG].close()


async def create_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_get("/pg/posts", pg_posts)
    app.router.add_get("/redis/{key}", redis_get)
    app.cleanup_ctx.append(_resources)
    return app
