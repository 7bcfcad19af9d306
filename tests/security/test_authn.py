"""Authentication under attack: forged tokens, refresh reuse, throttling, enumeration, password storage."""

from __future__ import annotations

import base64
import json
import statistics
import time

import jwt
import pytest
from argon2 import PasswordHasher, Type

from hmb.appkeys import TOKENS
from hmb.security import HASHER, is_breached
from tests.factories import PASSWORD, register

IGNORED_HEADERS = {"X-Request-ID", "X-Process-Time", "Date", "Content-Length"}


def b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims_for(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def forged(token: str, secret: bytes) -> dict[str, str]:
    """A valid token bent every way an attacker would bend it."""
    header, payload, signature = token.split(".")
    claims = claims_for(token)
    now = int(time.time())
    return {
        "tampered payload": f"{header}.{b64({**claims, 'sub': str(int(claims['sub']) + 1)})}.{signature}",
        "tampered signature": f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}",
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "alg None (case)": f"{b64({'alg': 'None', 'typ': 'JWT'})}.{payload}.",
        "wrong alg (HS512, same key)": jwt.encode(claims, secret, algorithm="HS512"),
        "wrong key": jwt.encode(claims, b"another-secret-that-is-long-enough-000000", algorithm="HS256"),
        "expired": jwt.encode({**claims, "iat": now - 3600, "exp": now - 60}, secret, algorithm="HS256"),
        "refresh type": jwt.encode({**claims, "typ": "refresh"}, secret, algorithm="HS256"),
        "no exp": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, secret, algorithm="HS256"),
        "other issuer": jwt.encode({**claims, "iss": "evil"}, secret, algorithm="HS256"),
        "garbage": "not.a.token",
    }


@pytest.mark.filterwarnings("ignore:The HMAC key is")  # the forger's HS512 token, on purpose
async def test_forged_expired_and_wrong_algorithm_tokens_are_401(client, settings):
    user = await register(client)
    secret = settings.auth.secret_key.encode()
    for name, token in forged(user["access_token"], secret).items():
        response = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        body = await response.json()
        assert response.status == 401, name
        assert body["error"]["code"] == "unauthorized", name
    ok = await client.get("/api/auth/me", headers=user["headers"])
    assert ok.status == 200


async def test_a_bad_authorization_header_fails_only_the_routes_that_ask_who_calls(client):
    """The header is checked when a handler asks who calls: a route that never asks (a probe,
    trending) answers as if it had not been sent, one that does (any public read with a caller's
    view, any signed-in route) refuses a token it cannot trust. An ended session's is refused too."""
    user = await register(client)
    for header in ("Bearer not.a.token", "Basic dXNlcjpwYXNz", "Bearer"):
        bad = {"Authorization": header}
        assert (await client.get("/health", headers=bad)).status == 200, header
        assert (await client.get("/api/posts/trending", headers=bad)).status == 200, header
        for path in (f"/api/users/{user['user']['id']}", "/api/posts/feed", "/api/auth/me"):
            response = await client.get(path, headers=bad)
            assert response.status == 401, (header, path)
            assert (await response.json())["error"]["code"] == "unauthorized"
    assert (await client.post("/api/auth/logout", headers=user["headers"])).status == 204
    ended = await client.get("/api/posts/feed", headers=user["headers"])
    assert ended.status == 401 and "ended" in (await ended.json())["error"]["message"]
    assert (await client.get("/health", headers=user["headers"])).status == 200


async def test_refresh_token_reuse_revokes_the_whole_family(client):
    user = await register(client)
    first = user["refresh_token"]
    rotated = await (await client.post("/api/auth/refresh", json={"refresh_token": first})).json()
    # The spent token comes back (stolen and replayed): the session ends, for thief and owner alike.
    replay = await client.post("/api/auth/refresh", json={"refresh_token": first})
    assert replay.status == 401 and (await replay.json())["error"]["code"] == "unauthorized"
    assert (await client.post("/api/auth/refresh", json={"refresh_token": rotated["refresh_token"]})).status == 401
    for token in (user["access_token"], rotated["access_token"]):
        assert (await client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})).status == 401


async def _login(client, email: str, password: str):
    return await client.post("/api/auth/login", json={"email": email, "password": password})


async def test_login_throttle_trips_holds_across_instances_and_recovers(make_client, settings, redis_client, one_rate_window):
    one, two = await make_client(), await make_client()
    user = await register(one)
    limit = settings.auth.login_per_account_per_min
    # Wrong passwords spread over two workers count against one account limit (in Redis).
    for attempt in range(limit):
        response = await _login(one if attempt % 2 else two, user["email"], "wrong password!")
        assert response.status == 401
    for instance in (one, two):
        tripped = await _login(instance, user["email"], PASSWORD)  # even the right password waits
        assert tripped.status == 429
        assert (await tripped.json())["error"]["code"] == "rate_limited"
        assert int(tripped.headers["Retry-After"]) >= 1
    # The window ending is its counters expiring; expire them now instead of waiting a minute.
    keys = [k async for k in redis_client.scan_iter("*login-account*")]
    assert keys
    await redis_client.delete(*keys)
    assert (await _login(two, user["email"], PASSWORD)).status == 200


async def test_unknown_email_and_wrong_password_answer_identically(client):
    user = await register(client)
    answers, timings = {}, {"unknown": [], "wrong": []}
    for _ in range(3):
        for kind, email in (("unknown", "nobody-here@example.com"), ("wrong", user["email"])):
            started = time.perf_counter()
            response = await _login(client, email, "not the password")
            timings[kind].append(time.perf_counter() - started)
            body = await response.json()
            body["error"].pop("request_id")
            headers = {k: v for k, v in response.headers.items() if k not in IGNORED_HEADERS}
            answers[kind] = (response.status, body, headers)
    assert answers["unknown"] == answers["wrong"]
    # Both pay one argon2 verification (a decoy hash for unknown emails): no timing oracle.
    ratio = statistics.median(timings["unknown"]) / statistics.median(timings["wrong"])
    print(f"\nlogin timing: unknown/wrong median ratio {ratio:.2f}")
    assert 0.5 < ratio < 2.0


async def test_argon2id_parameters_meet_owasp_and_old_hashes_are_rehashed_on_login(client, primary):
    assert HASHER.type is Type.ID
    assert HASHER.memory_cost >= 19 * 1024 and HASHER.time_cost >= 2 and HASHER.parallelism >= 1
    user = await register(client)
    stored = await primary.fetchval("SELECT password_hash FROM users WHERE id = $1", user["user"]["id"])
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1, type=Type.ID).hash(PASSWORD)
    await primary.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user["user"]["id"], weak)
    assert (await _login(client, user["email"], PASSWORD)).status == 200
    rehashed = await primary.fetchval("SELECT password_hash FROM users WHERE id = $1", user["user"]["id"])
    assert rehashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


async def test_long_passwords_work_whole_and_too_long_ones_are_422(client):
    long = "ü" * 500 + "x" * 524  # 1024 characters, ~1.5 KB of UTF-8: past bcrypt's 72 bytes
    user = await register(client, password=long)
    assert (await _login(client, user["email"], long)).status == 200
    assert (await _login(client, user["email"], long[:-1] + "y")).status == 401
    assert (await _login(client, user["email"], long[:72])).status == 401
    response = await client.post("/api/auth/register", json={
        "email": "toolong@example.com", "password": "x" * 1025, "name": "T", "role": "seeker"})
    assert response.status == 422 and "password" in (await response.json())["error"]["fields"]


@pytest.mark.parametrize("password", ["qwertyuiop", "Password123", "1q2w3e4r5t", "QWERTYUIOP"])
async def test_a_top_breached_password_is_refused_at_registration(client, password):
    assert is_breached(password)
    response = await client.post("/api/auth/register", json={
        "email": "breached@example.com", "password": password, "name": "B", "role": "seeker"})
    body = await response.json()
    assert response.status == 422
    assert body["error"]["code"] == "validation_failed"
    assert "breached" in body["error"]["fields"]["password"]


def test_an_uncommon_password_is_not_called_breached():
    assert not is_breached(PASSWORD)
    assert not is_breached("x7#Lq9!vR2@m")


async def test_tokens_are_signed_with_the_configured_algorithm_only(client):
    user = await register(client)
    header = jwt.get_unverified_header(user["access_token"])
    assert header["alg"] == "HS256"
    principal = client.app[TOKENS].verify_access(user["access_token"])
    assert principal.user_id == user["user"]["id"]
