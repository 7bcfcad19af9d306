"""Every error status this core can produce, each with the envelope; bad input is a 4xx, never a 500."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from hmb.appkeys import CORE, DB
from tests.factories import PASSWORD, register

REGISTER = "/api/auth/register"


def assert_envelope(body: dict, code: str) -> None:
    error = body["error"]
    assert error["code"] == code
    assert error["message"] and error["request_id"]
    assert "Traceback" not in str(body)


async def expect(response, status: int, code: str) -> dict:
    assert response.status == status, await response.text()
    body = await response.json()
    assert_envelope(body, code)
    assert response.headers["X-Request-ID"] == body["error"]["request_id"]
    return body


async def test_malformed_json_is_400(client):
    response = await client.post(REGISTER, data=b'{"email": ', headers={"Content-Type": "application/json"})
    await expect(response, 400, "bad_request")


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"email": "a@example.com", "password": PASSWORD, "name": "A"}, "role"),  # missing
        ({"email": "a@example.com", "password": PASSWORD, "name": 5, "role": "seeker"}, "name"),  # wrong type
        ({"email": "not-an-email", "password": PASSWORD, "name": "A", "role": "seeker"}, "email"),
        ({"email": "a@example.com", "password": "short", "name": "A", "role": "seeker"}, "password"),
        ({"email": "a@example.com", "password": PASSWORD, "name": "A", "role": "admin"}, "role"),
        ({"email": "a@example.com", "password": PASSWORD, "name": "A", "role": "seeker", "is_admin": True}, "is_admin"),
    ],
)
async def test_validation_failures_are_422_with_the_field(client, payload, field):
    body = await expect(await client.post(REGISTER, json=payload), 422, "validation_failed")
    assert field in body["error"]["fields"]


async def test_a_json_array_body_is_422(client):
    await expect(await client.post(REGISTER, json=[1, 2]), 422, "validation_failed")


async def test_wrong_content_type_is_415(client):
    await expect(await client.post(REGISTER, data="email=a", headers={"Content-Type": "text/plain"}), 415, "unsupported_media_type")


async def test_huge_body_is_413(client, settings):
    huge = b'{"name": "' + b"x" * (settings.web.max_body_bytes + 10) + b'"}'
    await expect(await client.post(REGISTER, data=huge, headers={"Content-Type": "application/json"}), 413, "payload_too_large")


async def test_huge_chunked_body_is_413(client, settings):
    async def chunks():
        for _ in range(settings.web.max_body_bytes // 65536 + 2):
            yield b"x" * 65536

    response = await client.post(REGISTER, data=chunks(), headers={"Content-Type": "application/json"})
    await expect(response, 413, "payload_too_large")


async def test_unknown_route_is_404_and_wrong_method_405(client):
    await expect(await client.get("/api/nothing-here"), 404, "not_found")
    response = await client.delete("/api/auth/me")
    await expect(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


async def test_non_numeric_id_is_404(client):
    await expect(await client.get("/api/users/abc"), 404, "not_found")
    await expect(await client.get("/api/users/99999"), 404, "not_found")


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic dXNlcjpwYXNz", "Bearer", "Bearer not.a.token", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."],
)
async def test_missing_or_bad_token_is_401(client, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.get("/api/auth/me", headers=headers)
    await expect(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_duplicate_email_is_409_even_with_other_case(client):
    user = await register(client)
    again = {"email": user["email"].upper(), "password": PASSWORD, "name": "Twin", "role": "seeker"}
    await expect(await client.post(REGISTER, json=again), 409, "conflict")


async def test_login_throttle_is_429_with_retry_after_before_hashing(client, settings, one_rate_window):
    user = await register(client)
    wrong = {"email": user["email"], "password": "wrong password!"}
    limit = settings.auth.login_per_account_per_min
    for _ in range(limit):
        assert (await client.post("/api/auth/login", json=wrong)).status == 401
    response = await client.post("/api/auth/login", json={"email": user["email"], "password": PASSWORD})
    await expect(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-RateLimit-Remaining"] == "0"


async def test_overload_sheds_sheddable_reads_first_with_503(make_client, settings):
    tight = settings.with_(web=replace(settings.web, max_in_flight=1, shed_reserve=1))
    client = await make_client(tight)
    response = await client.get("/api/users")  # sheddable: refused first
    await expect(response, 503, "overloaded")
    assert response.headers["Retry-After"] == "1"
    assert (await client.get("/health")).status == 200  # critical: still admitted


async def test_no_free_connection_is_503_not_a_hang(make_client, settings):
    one = settings.with_(db=replace(settings.db, pool_max=1, acquire_timeout_s=0.2))
    client = await make_client(one)
    user = await register(client)
    pool = client.server.app[DB].primary.pool
    held = await pool.acquire()
    try:
        response = await asyncio.wait_for(
            client.patch("/api/users/me", json={"bio": "x"}, headers=user["headers"]), timeout=5
        )
        await expect(response, 503, "overloaded")
        assert response.headers["Retry-After"]
    finally:
        await pool.release(held)
    assert (await client.patch("/api/users/me", json={"bio": "x"}, headers=user["headers"])).status == 200


async def test_cors_allows_only_configured_origins(make_client, settings):
    client = await make_client(settings.with_(web=replace(settings.web, cors_origins=("https://app.example.com",))))
    preflight = {"Access-Control-Request-Method": "POST"}
    ok = await client.options(REGISTER, headers={**preflight, "Origin": "https://app.example.com"})
    assert ok.status == 204 and ok.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    denied = await client.options(REGISTER, headers={**preflight, "Origin": "https://evil.example.com"})
    await expect(denied, 403, "forbidden")
    plain = await client.get("/health", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in plain.headers


async def test_request_id_is_kept_when_sane_and_replaced_when_not(client):
    kept = await client.get("/health", headers={"X-Request-ID": "abc12345-from-the-lb"})
    assert kept.headers["X-Request-ID"] == "abc12345-from-the-lb"
    replaced = await client.get("/health", headers={"X-Request-ID": "bad id\twith junk"})
    assert replaced.headers["X-Request-ID"] != "bad id\twith junk"
    assert replaced.headers["X-Process-Time"].endswith("ms")


async def test_large_bodies_are_gzipped_when_accepted(client):
    for _ in range(8):
        await register(client, name="n" * 100)
    response = await client.get("/api/users?limit=100", headers={"Accept-Encoding": "gzip"})
    assert response.status == 200
    assert response.headers.get("Content-Encoding") == "gzip"
    small = await client.get("/health", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in small.headers


async def test_a_cached_body_is_compressed_once_for_every_client_that_accepts_gzip(client):
    """A cache hit does no compression work either: the gzip of a body is kept beside it."""
    for _ in range(8):
        await register(client, name="n" * 100)
    compressed = client.server.app[CORE].gzip
    path = "/api/users?limit=100"
    before = compressed.compressions
    identity = await client.get(path, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in identity.headers
    plain = await identity.read()
    for _ in range(3):
        response = await client.get(path, headers={"Accept-Encoding": "gzip, deflate"})
        assert response.headers["Content-Encoding"] == "gzip"
        assert "Accept-Encoding" in response.headers.getall("Vary")
        assert await response.read() == plain  # the client inflated it
    assert compressed.compressions == before + 1
