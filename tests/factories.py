"""Test data made through the API, the way clients make it."""

from __future__ import annotations

import itertools

from aiohttp.test_utils import TestClient

PASSWORD = "correct horse battery staple"
_seq = itertools.count(1)


async def register(client: TestClient, role: str = "seeker", name: str | None = None, **extra) -> dict:
    """A new account; returns the register response body plus ready-made headers.

    The headers carry the read position as a careful API client would, so any app
    instance (not only the one whose cookie jar holds it) reads this account back.
    """
    n = next(_seq)
    payload = {"email": f"user{n}@example.com", "password": PASSWORD, "name": name or f"User {n}", "role": role, **extra}
    response = await client.post("/api/auth/register", json=payload)
    assert response.status == 201, await response.text()
    body = await response.json()
    body["headers"] = {
        "Authorization": f"Bearer {body['access_token']}",
        "X-Read-Position": response.headers["X-Read-Position"],
    }
    body["email"] = payload["email"]
    return body
