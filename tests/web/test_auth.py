"""/api/auth: register, login, refresh rotation and reuse, logout, me."""

from __future__ import annotations

from argon2 import PasswordHasher

from hmb.appkeys import REVOKED, TOKENS
from tests.conftest import wait_for
from tests.factories import PASSWORD, register


async def test_register_then_me(client):
    user = await register(client, name="Ada Lovelace")
    assert set(user) >= {"user", "access_token", "refresh_token", "expires_in"}
    response = await client.get("/api/auth/me", headers=user["headers"])
    assert response.status == 200
    me = await response.json()
    assert me["name"] == "Ada Lovelace" and me["email"] == user["email"]
    assert me["created_at"].endswith("Z")


async def test_login_unknown_email_and_wrong_password_answer_the_same(client):
    user = await register(client)
    wrong = await client.post("/api/auth/login", json={"email": user["email"], "password": "not the password"})
    unknown = await client.post("/api/auth/login", json={"email": "nobody@example.com", "password": PASSWORD})
    assert wrong.status == unknown.status == 401
    assert (await wrong.json())["error"]["message"] == (await unknown.json())["error"]["message"]


async def test_refresh_reuse_revokes_the_family(client):
    user = await register(client)
    first = await client.post("/api/auth/refresh", json={"refresh_token": user["refresh_token"]})
    assert first.status == 200
    pair = await first.json()
    reused = await client.post("/api/auth/refresh", json={"refresh_token": user["refresh_token"]})
    assert reused.status == 401
    # The successor pair dies with its family: its refresh and access tokens are refused.
    successor = await client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert successor.status == 401
    me = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.status == 401


async def test_logout_refuses_the_access_token_at_once_on_every_instance(make_client):
    a, b = await make_client(), await make_client()
    user = await register(a)
    assert (await b.get("/api/auth/me", headers=user["headers"])).status == 200
    assert (await a.post("/api/auth/logout", headers=user["headers"])).status == 204
    assert (await a.get("/api/auth/me", headers=user["headers"])).status == 401
    await wait_for(lambda: _status(b, user["headers"], 401), timeout=1.0)
    refresh = await a.post("/api/auth/refresh", json={"refresh_token": user["refresh_token"]})
    assert refresh.status == 401


async def test_a_revocation_reaches_a_worker_that_missed_the_broadcast(make_client):
    """Another worker learns of a logout from Postgres even if it never saw the Redis message."""
    a, b = await make_client(), await make_client()
    user = await register(a)
    session_id = b.server.app[TOKENS].verify_access(user["access_token"]).session_id
    b.server.app[REVOKED].on_broadcast = lambda names: None  # b hears nothing from now on
    assert (await a.post("/api/auth/logout", headers=user["headers"])).status == 204
    await wait_for(lambda: session_id in b.server.app[REVOKED], timeout=3)
    assert (await b.get("/api/auth/me", headers=user["headers"])).status == 401


async def test_login_rotates_in_new_hash_parameters(client, primary):
    user = await register(client)
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    await primary.execute("UPDATE users SET password_hash = $1 WHERE id = $2", weak, user["user"]["id"])
    response = await client.post("/api/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert response.status == 200
    stored = await primary.fetchval("SELECT password_hash FROM users WHERE id = $1", user["user"]["id"])
    assert stored.startswith("$argon2id$") and "m=19456,t=2,p=1" in stored


async def test_long_passwords_are_not_truncated(client):
    long_password = "p" * 500
    user = await register(client, password=long_password)
    ok = await client.post("/api/auth/login", json={"email": user["email"], "password": long_password})
    assert ok.status == 200
    cut = await client.post("/api/auth/login", json={"email": user["email"], "password": long_password[:-1]})
    assert cut.status == 401


async def test_email_is_normalised(client):
    user = await register(client)
    response = await client.post("/api/auth/login", json={"email": "  " + user["email"].upper(), "password": PASSWORD})
    assert response.status == 200


async def _status(client, headers, expected) -> bool:
    return (await client.get("/api/auth/me", headers=headers)).status == expected
