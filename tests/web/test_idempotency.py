"""The Idempotency-Key mechanism every create route uses (exercised through a tiny create route)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from hmb.app import create_app
from hmb.appkeys import CORE, DB
from hmb.store import idempotency
from hmb.web.http import parse_body
from hmb.web.identity import caller
from hmb.web.meta import Route
from hmb.web.idempotency import create_once
from hmb.web.schemas.users import ProfilePatch
from tests.factories import register


async def _note(request: web.Request) -> web.Response:
    """Creates a row per call: a stand-in create route, built only from hmb's own pieces."""
    principal = caller(request)
    body = await parse_body(request, ProfilePatch)

    async def create(w):
        row = await w.conn.fetchrow(
            "INSERT INTO auth_sessions (user_id, revoked_reason) VALUES ($1, $2) RETURNING id", principal.user_id, body.bio
        )
        return {"id": row["id"], "bio": body.bio}

    return await create_once(request, principal, create)


async def _client(aiohttp_client, settings):
    app = await create_app(settings)
    app[CORE].add(app.router, [Route("POST", "/test/notes", _note, "test.notes", "a stand-in create route", 201,
                                     idempotent=True)])
    return await aiohttp_client(app)


async def test_retry_with_same_key_returns_first_response_and_creates_nothing(aiohttp_client, settings, primary):
    client = await _client(aiohttp_client, settings)
    user = await register(client)
    headers = {**user["headers"], "Idempotency-Key": "abc-123"}
    before = await primary.fetchval("SELECT count(*) FROM auth_sessions WHERE revoked_reason = 'x'")
    responses = await asyncio.gather(*(client.post("/test/notes", json={"bio": "x"}, headers=headers) for _ in range(5)))
    bodies = [await r.json() for r in responses]
    assert {r.status for r in responses} == {201}
    assert len({b["id"] for b in bodies}) == 1
    after = await primary.fetchval("SELECT count(*) FROM auth_sessions WHERE revoked_reason = 'x'")
    assert after - before == 1


async def test_same_key_with_another_body_is_422(aiohttp_client, settings):
    client = await _client(aiohttp_client, settings)
    user = await register(client)
    headers = {**user["headers"], "Idempotency-Key": "k1"}
    assert (await client.post("/test/notes", json={"bio": "one"}, headers=headers)).status == 201
    again = await client.post("/test/notes", json={"bio": "two"}, headers=headers)
    assert again.status == 422
    assert (await again.json())["error"]["code"] == "validation_failed"


async def test_keys_are_per_user(aiohttp_client, settings):
    client = await _client(aiohttp_client, settings)
    a, b = await register(client), await register(client)
    first = await client.post("/test/notes", json={"bio": "y"}, headers={**a["headers"], "Idempotency-Key": "same"})
    second = await client.post("/test/notes", json={"bio": "y"}, headers={**b["headers"], "Idempotency-Key": "same"})
    assert (await first.json())["id"] != (await second.json())["id"]


async def test_keys_older_than_a_day_are_swept_in_batches(client, primary):
    user = await register(client)
    await primary.executemany(
        "INSERT INTO idempotency_keys (user_id, key, route, request_hash, status, body, created_at)"
        " VALUES ($1, $2, 'r', '\\x00', 201, '{}', now() - make_interval(hours => $3))",
        [(user["user"]["id"], f"k{i}", 30 if i < 7 else 1) for i in range(10)],
    )
    async with client.server.app[DB].write() as w:
        assert await idempotency.purge_batch(w.conn, 24, 5) == 5
        assert await idempotency.purge_batch(w.conn, 24, 5) == 2
    assert await primary.fetchval("SELECT count(*) FROM idempotency_keys") == 3
