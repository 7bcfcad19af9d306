"""Every typed key on the aiohttp Application, in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from hmb.config import Settings
from hmb.logs import AccessLog
from hmb.ops.metrics import Metrics
from hmb.security import Passwords, Tokens
from hmb.store.cache import Cache
from hmb.store.follows import FeedFanout
from hmb.store.ratelimit import RateLimiter
from hmb.store.redis import Redis
from hmb.store.revocations import RevokedSessions
from hmb.store.router import Databases
from hmb.store.storage import ObjectStorage

if TYPE_CHECKING:
    from hmb.web.middlewares import Core
    from hmb.web.live import Hub  # the web layer imports this module: no runtime import back


@dataclass
class Lifecycle:
    """What the probes report: started once every resource is up; draining after SIGTERM."""

    started: bool = False
    draining: bool = False
    in_flight: int = 0
    background: list = field(default_factory=list)


SETTINGS = web.AppKey("settings", Settings)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
DB = web.AppKey("db", Databases)
REDIS = web.AppKey("redis", Redis)
CACHE = web.AppKey("cache", Cache)
PASSWORDS = web.AppKey("passwords", Passwords)
TOKENS = web.AppKey("tokens", Tokens)
REVOKED = web.AppKey("revoked", RevokedSessions)
LIMITER = web.AppKey("limiter", RateLimiter)
METRICS = web.AppKey("metrics", Metrics)
ACCESS_LOG = web.AppKey("access_log", AccessLog)
STORAGE = web.AppKey("storage", ObjectStorage)
FANOUT = web.AppKey("fanout", FeedFanout)
LIVE: web.AppKey[Hub] = web.AppKey("live")  # this worker's WebSockets and their Redis subscription
ROUTES = web.AppKey("routes", dict)  # route name -> hmb.web.meta.Route
CORE: web.AppKey[Core] = web.AppKey("core")  # wraps every route's handler (hmb.web.middlewares)
