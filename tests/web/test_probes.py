"""/health, /ready, /startup: what a load balancer and the platform see."""

from __future__ import annotations

import asyncio
import json
import logging

from hmb.appkeys import DB, LIFECYCLE
from hmb.logs import JsonFormatter
from tests.conftest import wait_for


async def test_started_service_is_live_started_and_ready(client):
    assert (await client.get("/health")).status == 200
    assert (await client.get("/startup")).status == 200
    ready = await client.get("/ready")
    assert ready.status == 200
    body = await ready.json()
    assert body["status"] == "ready"
    assert body["checks"] == {"primary": "ok", "replica-1": "ok", "redis": "ok"}


async def test_ready_is_503_while_starting_or_draining_but_health_stays_200(client):
    life = client.server.app[LIFECYCLE]
    life.draining = True
    response = await client.get("/ready")
    assert response.status == 503 and (await response.json())["status"] == "draining"
    assert response.headers["Retry-After"] == "1"
    assert (await client.get("/health")).status == 200
    life.draining, life.started = False, False
    assert (await client.get("/startup")).status == 503
    assert (await client.get("/ready")).status == 503


async def test_redis_down_is_degraded_not_unready(client, launcher):
    await asyncio.to_thread(launcher.stop_redis)
    try:
        response = await client.get("/ready")
        assert response.status == 200
        body = await response.json()
        assert body["status"] == "degraded" and body["checks"]["redis"].startswith("down")
    finally:
        await asyncio.to_thread(launcher.start_redis)


async def test_no_database_node_reachable_is_503(client, launcher):
    app = client.server.app
    await asyncio.to_thread(launcher.stop_replica)
    await asyncio.to_thread(launcher.stop_primary)
    try:
        await wait_for(lambda: _all_down(app), timeout=10)
        response = await client.get("/ready")
        assert response.status == 503
        assert (await response.json())["checks"]["primary"] == "unreachable"
        assert (await client.get("/health")).status == 200
    finally:
        await asyncio.to_thread(launcher.start_primary)
        await asyncio.to_thread(launcher.start_replica)
    await wait_for(lambda: _status_is(client, 200), timeout=15)


def _all_down(app) -> bool:
    db = app[DB]
    return not db.primary.reachable and not any(r.in_use for r in db.replicas)


async def _status_is(client, status) -> bool:
    return (await client.get("/ready")).status == status


async def test_every_request_logs_one_json_line_with_its_id(client, caplog):
    with caplog.at_level(logging.INFO, logger="hmb.access"):
        response = await client.get("/health", headers={"Authorization": "Bearer secret-token-value"})
    records = [r for r in caplog.records if r.name == "hmb.access"]
    assert len(records) == 1
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert line["status"] == 200 and line["path"] == "/health" and line["route"] == "probes.health"
    assert "secret-token-value" not in JsonFormatter().format(records[0])
