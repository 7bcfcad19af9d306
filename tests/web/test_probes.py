"""/health, /ready, /startup: what a load balancer and the platform see."""

from __future__ import annotations

import asyncio
import json
import os

import aiohttp
import pytest

from hmb.appkeys import ACCESS_LOG, DB, LIFECYCLE
from hmb.logs import AccessLog
from hmb.web.middlewares import _process_time, new_request_id
from tests.conftest import wait_for
from tests.factories import register


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


async def test_every_request_logs_one_json_line_with_its_id(client):
    access = client.app[ACCESS_LOG]
    written: list[bytes] = []
    access.flush()  # what came before (signing up) is not this test's
    access.enabled, access.out = True, written.append
    response = await client.get("/health", headers={"Authorization": "Bearer secret-token-value"})
    response2 = await client.get("/api/users/999999999")
    access.flush()
    lines = [json.loads(line) for line in b"".join(written).splitlines()]
    assert [line["request_id"] for line in lines] == [response.headers["X-Request-ID"], response2.headers["X-Request-ID"]]
    assert lines[0]["status"] == 200 and lines[0]["path"] == "/health" and lines[0]["route"] == "probes.health"
    # One timing: a caller quoting X-Process-Time finds the same figure in the log.
    assert [f"{line['ms']:.2f}ms" for line in lines] == [r.headers["X-Process-Time"] for r in (response, response2)]
    assert lines[0]["level"] == "info" and lines[0]["logger"] == "hmb.access" and lines[0]["ts"].endswith("Z")
    assert lines[1]["status"] == 404 and lines[1]["db"].startswith("replica-1")  # which node served the reads
    assert b"secret-token-value" not in b"".join(written)


def test_access_log_writes_whole_lines_in_atomic_chunks():
    """Each write is at most PIPE_BUF bytes of whole lines, so workers sharing stderr never interleave."""
    written: list[bytes] = []
    access = AccessLog(enabled=True, out=written.append)
    for i in range(500):
        access.request(f"{i:032x}", "GET", "/api/jobs/" + "x" * (i % 50), "jobs.get", 200, 0.001, None, "127.0.0.1")
    assert sum(len(chunk) for chunk in written) > 10 * AccessLog.CHUNK  # most lines already written
    access.flush()
    assert all(len(chunk) <= AccessLog.CHUNK and chunk.endswith(b"\n") for chunk in written)
    ids = [json.loads(line)["request_id"] for chunk in written for line in chunk.splitlines()]
    assert ids == [f"{i:032x}" for i in range(500)]


def test_access_log_lines_survive_paths_that_look_like_a_record_boundary_and_overlong_lines():
    """A batch is encoded at once and split into lines: a path quoting the split point stays in one
    line, and a line longer than a chunk is written alone, whole."""
    written: list[bytes] = []
    access = AccessLog(enabled=True, out=written.append)
    tricky = ['/a},{"ts":"x"}', '/b}\n{"ts":', "/c" + "é" * 3000, "/d\\},{\"ts\":"]
    for i, path in enumerate(tricky * 20):
        access.request(f"{i:032x}", "GET", path, None, 404, 0.001, None, "127.0.0.1")
    access.flush()
    lines = [json.loads(line) for chunk in written for line in chunk.splitlines()]
    assert [line["path"] for line in lines] == tricky * 20
    assert all(len(chunk) <= AccessLog.CHUNK or chunk.count(b"\n") == 1 for chunk in written)
    assert all(chunk.endswith(b"\n") for chunk in written)


def test_a_field_the_json_encoder_refuses_is_logged_escaped_and_fails_nothing():
    """A lone surrogate (a header's non-UTF-8 byte, as aiohttp decodes it) cannot be encoded: its
    batch is still written, escaped, and every record is tallied once, never again with the next batch."""
    written: list[bytes] = []
    tallied: list[tuple] = []
    access = AccessLog(enabled=True, out=written.append, tally=tallied.extend)
    for i in range(AccessLog.BATCH + 3):
        remote = "10.0.0.\udcff" if i == 5 else "127.0.0.1"
        access.request(f"{i:032x}", "GET", "/health", "probes.health", 200, 0.001, None, remote)
    access.flush()
    lines = [json.loads(line) for line in b"".join(written).splitlines()]
    assert [line["request_id"] for line in lines] == [f"{i:032x}" for i in range(AccessLog.BATCH + 3)]
    assert lines[5]["remote"] == "10.0.0.\\udcff" and lines[6]["remote"] == "127.0.0.1"
    assert [record[1] for record in tallied] == [f"{i:032x}" for i in range(AccessLog.BATCH + 3)]


def test_request_ids_are_unique_and_differ_after_fork():
    ids = {new_request_id() for _ in range(10_000)}
    assert len(ids) == 10_000 and all(len(i) == 32 for i in ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a worker forked from the master
        os.write(write, new_request_id()[:16].encode())
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 16).decode() != new_request_id()[:16]


async def test_a_request_inherits_nothing_from_the_one_before_it_on_its_connection(client):
    """aiohttp runs each request in its own task, on a copy of the connection's context, so the core
    sets the router's per-request variables only where they differ from their defaults. A write's
    position, or its caller, must not ride on the next request of the same keep-alive connection."""
    user = await register(client)
    opened: list[bool] = []

    async def on_connection_created(*_) -> None:
        opened.append(True)

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(on_connection_created)
    jar = aiohttp.DummyCookieJar()  # no hmb_rp cookie: only the context could carry the position
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1), cookie_jar=jar,
                                     trace_configs=[trace]) as session:
        async with session.post(client.make_url("/api/posts"), json={"body": "one"},
                                headers={"Authorization": user["headers"]["Authorization"]}) as wrote:
            assert wrote.status == 201, await wrote.text()
            assert "X-Read-Position" in wrote.headers
        async with session.get(client.make_url("/health")) as after:
            assert after.status == 200 and "X-Read-Position" not in after.headers
        # Nor its caller.
        async with session.get(client.make_url("/api/auth/me")) as anonymous:
            assert anonymous.status == 401
    assert len(opened) == 1  # all three went over the one keep-alive connection


@pytest.mark.parametrize("seconds", [0.00001, 0.0099999, 0.016195, 0.0123456, 1.234567])
def test_process_time_is_cut_as_the_log_line_cuts_ms(seconds):
    """X-Process-Time and the access log's `ms` are one figure, at 10 µs, below 10 ms and above."""
    written: list[bytes] = []
    access = AccessLog(enabled=True, out=written.append)
    access.request(new_request_id(), "GET", "/health", "probes.health", 200, seconds, None, "127.0.0.1")
    access.flush()
    logged = json.loads(b"".join(written))["ms"]
    assert _process_time(seconds) == f"{logged:.2f}ms"
