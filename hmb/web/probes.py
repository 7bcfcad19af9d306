"""Probes for the load balancer and the platform: /health, /ready, /startup."""

from __future__ import annotations

from aiohttp import web

from hmb.appkeys import DB, LIFECYCLE, REDIS
from hmb.store.redis import RedisDown
from hmb.web.http import body_response, dumps, json_response

_ALIVE = dumps({"status": "ok"})

async def health(request: web.Request) -> web.Response:
    """Liveness: the process answers. No I/O, so a sick dependency never restarts healthy pods."""
    return body_response(_ALIVE)


async def startup(request: web.Request) -> web.Response:
    started = request.app[LIFECYCLE].started
    return json_response({"status": "started" if started else "starting"}, 200 if started else 503)


async def ready(request: web.Request) -> web.Response:
    """Readiness: 503 while starting, draining, or with no database node reachable.

    A Redis outage is "degraded" with 200: the service still answers, and one shared
    dependency must not pull every pod out of rotation at once.
    """
    life = request.app[LIFECYCLE]
    if not life.started or life.draining:
        status = "draining" if life.draining else "starting"
        return json_response({"status": status, "checks": {}}, 503, {"Retry-After": "1"})
    db, redis = request.app[DB], request.app[REDIS]
    # The replica monitor probes the primary every second: no pool slot is needed here,
    # so a busy pool never reads as an unreachable database.
    primary_ok = db.primary.reachable
    redis_ok = await _redis_ok(redis)
    checks = {
        "primary": "ok" if primary_ok else "unreachable",
        **{r.name: ("ok" if r.in_use else f"ejected: {r.reason}") for r in db.replicas},
        "redis": "ok" if redis_ok else f"down (breaker {redis.breaker.state})",
    }
    any_db = primary_ok or any(r.in_use for r in db.replicas)
    if not any_db:
        return json_response({"status": "unavailable", "checks": checks}, 503, {"Retry-After": "1"})
    degraded = not (primary_ok and redis_ok and all(r.in_use for r in db.replicas))
    return json_response({"status": "degraded" if degraded else "ready", "checks": checks})


async def _redis_ok(redis) -> bool:
    try:
        await redis.call(lambda r: r.ping())
        return True
    except RedisDown:
        return False
