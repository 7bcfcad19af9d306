"""/api/auth: register, login, refresh rotation and reuse, logout, me."""

from __future__ import annotations

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
