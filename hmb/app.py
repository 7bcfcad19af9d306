"""The application factory: `hmb.app:create_app` (gunicorn loads it without calling it)."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Coroutine

import aiohttp_jinja2
import jinja2
from aiohttp import web

from hmb import aio
from hmb.appkeys import (
    ACCESS_LOG,
    CACHE,
    CORE,
    DB,
    FANOUT,
    LIFECYCLE,
    LIMITER,
    METRICS,
    PASSWORDS,
    REDIS,
    REVOKED,
    SETTINGS,
    STORAGE,
    TOKENS,
    Lifecycle,
)
from hmb.config import Settings
from hmb.logs import AccessLog
from hmb.ops.gcwatch import gc_watch_ctx
from hmb.ops.heartbeat import heartbeat_ctx
from hmb.ops.metrics import Metrics
from hmb.security import Passwords, Tokens
from hmb.store import idempotency
from hmb.store.cache import Cache
from hmb.store.follows import FeedFanout
from hmb.store.invalidation import listen_for_invalidations
from hmb.store.ratelimit import RateLimiter
from hmb.store.redis import Redis
from hmb.store.replicas import ReplicaMonitor
from hmb.store.revocations import RevokedSessions
from hmb.store.router import open_databases
from hmb.store.storage import open_storage
from hmb.web import live
from hmb.web.routes import setup_routes


async def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or Settings.from_env()
    app = web.Application(client_max_size=settings.web.max_body_bytes)
    app[SETTINGS] = settings
    app[LIFECYCLE] = Lifecycle()
    app[TOKENS] = Tokens(settings.auth)
    app[METRICS] = Metrics()
    # LOG_LEVEL above INFO turns the access log off (logging is configured before the app is made).
    app[ACCESS_LOG] = AccessLog(enabled=logging.getLogger("hmb.access").isEnabledFor(logging.INFO),
                                tally=app[METRICS].finished)
    aiohttp_jinja2.setup(app, loader=jinja2.PackageLoader("hmb.web", "templates"), autoescape=True)
    setup_routes(app)  # after the parts above: each route's wrapper binds them
    # In dependency order; each tears down only if it started (aiohttp's cleanup_ctx).
    app.cleanup_ctx.extend([_databases, _redis, _cache, _auth, _storage, _fanout, _background, heartbeat_ctx, live.live_ctx, gc_watch_ctx, _started])
    app.on_shutdown.append(_drain)
    app.on_shutdown.append(live.close_sockets)  # after _drain: /ready is 503 before sockets close
    return app


async def _databases(app: web.Application) -> AsyncIterator[None]:
    db = await open_databases(app[SETTINGS])
    app[DB] = db
    yield
    await db.close()


async def _redis(app: web.Application) -> AsyncIterator[None]:
    redis = Redis(app[SETTINGS].redis)
    app[REDIS] = redis
    app[LIMITER] = RateLimiter(redis)
    yield
    await redis.close()


async def _cache(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    cache = Cache(app[REDIS], settings.cache, settle_s=settings.db.replica_max_lag_s + 1)
    app[CACHE] = cache
    app[DB].cache = cache  # writes queue their invalidations on it, run after commit
    app[CORE].cache = cache  # which answers public reads' L1 hits itself
    yield
    await cache.close()


async def _auth(app: web.Application) -> AsyncIterator[None]:
    passwords = Passwords(app[SETTINGS].auth.hash_threads)
    app[PASSWORDS] = passwords
    app[REVOKED] = RevokedSessions(app[SETTINGS].auth.access_ttl_s)
    yield
    passwords.close()


async def _storage(app: web.Application) -> AsyncIterator[None]:
    async with open_storage(app[SETTINGS].storage) as storage:
        app[STORAGE] = storage
        yield


async def _fanout(app: web.Application) -> AsyncIterator[None]:
    """Feed invalidations for large follower lists run as tasks; a stopping worker lets them finish."""
    fanout = FeedFanout(app[DB], app[CACHE])
    app[FANOUT] = fanout
    yield
    await fanout.close()


async def _background(app: web.Application) -> AsyncIterator[None]:
    """The worker's long-running tasks: replica monitor, L1 invalidation listener, revocation poll,
    key sweep, access-log flush."""
    monitor = ReplicaMonitor(app[DB])
    await monitor.tick()  # know the nodes' state before the first request
    revoked = app[REVOKED]
    tasks = [
        _spawn(monitor.run()),
        _spawn(listen_for_invalidations(app[CACHE].invalidations, revoked.on_broadcast)),
        _spawn(revoked.poll(app[DB])),
        _spawn(idempotency.sweep(app[DB])),
        _spawn(app[ACCESS_LOG].run()),
    ]
    app[LIFECYCLE].background = tasks
    yield
    await aio.stop(tasks)


async def _started(app: web.Application) -> AsyncIterator[None]:
    # What start-up made (modules, schemas, pools: ~80k objects) lives as long as the worker:
    # out of the collector's way, a full collection skips them (~20 ms less per pause).
    gc.freeze()
    app[LIFECYCLE].started = True
    yield


async def _drain(app: web.Application) -> None:
    app[LIFECYCLE].draining = True


def _spawn(coro: Coroutine) -> asyncio.Task:
    return asyncio.get_running_loop().create_task(coro)
