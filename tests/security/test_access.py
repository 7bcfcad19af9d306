"""Authorization over the whole route table: strangers (BOLA), anonymous callers, content types, SQL text.

Driven by hmb.web.routes.ROUTE_TABLE, so a new route fails here until someone says who may use it.
"""

from __future__ import annotations

import pytest

from hmb.web.routes import ROUTE_TABLE
from tests.factories import register
from tests.web.test_applications import resume_for

# Object routes a stranger must not reach: 403 (the object is public, the change is not theirs)
# or 404 (they may not even know it exists).
PRIVATE = {
    "posts.patch", "posts.delete",
    "jobs.patch", "jobs.close", "jobs.applications",
    "applications.get", "applications.move",
    "messages.conversation", "messages.read",
    "files.get",
}
# Object routes anyone may use on someone else's object: public reads, or acting as themselves.
PUBLIC = {
    "users.get", "users.follow", "users.unfollow", "users.followers", "users.following",
    "posts.get", "posts.like", "posts.unlike", "jobs.get", "jobs.apply",
}
OBJECT_OF = {  # which of the victims' objects each route's {id} names
    "users": "alice", "posts": "post", "jobs": "job", "applications": "application",
    "messages": "conversation", "files": "resume",
}
BODIES = {"posts.patch": {"body": "pwned"}, "jobs.patch": {"title": "pwned"}, "applications.move": {"status": "withdrawn"}}
SQL = ["' OR '1'='1", "1; DROP TABLE users; --", "\\'; SELECT pg_sleep(5); --", "%_%", "\"; --", "' UNION SELECT password_hash FROM users --", "nul\x00byte"]


def object_routes():
    return [r for r in ROUTE_TABLE if "{" in r.path]


def url(route, world) -> str:
    return route.path.replace("{id}", str(world[OBJECT_OF[route.name.split(".")[0]]]))


@pytest.fixture
async def world(client, primary) -> dict:
    """Alice (seeker) with a post, a résumé, an application and a conversation; Erin's job;
    and two strangers: Mallory (seeker) and Eve (employer)."""
    alice, carol = await register(client), await register(client)
    erin, mallory, eve = await register(client, role="employer"), await register(client), await register(client, role="employer")
    post = await (await client.post("/api/posts", json={"body": "mine"}, headers=alice["headers"])).json()
    job = await (await client.post("/api/jobs", json={
        "title": "Line cook", "company": "Island Resorts", "description": "Cook.", "employment_type": "full_time",
    }, headers=erin["headers"])).json()
    resume = await resume_for(primary, alice)
    application = await (await client.post(f"/api/jobs/{job['id']}/applications", json={
        "cover_letter": "Hire me", "resume_file_id": resume}, headers=alice["headers"])).json()
    sent = await client.post("/api/messages", json={"recipient_id": carol["user"]["id"], "body": "hi"}, headers=alice["headers"])
    message = await sent.json()
    alice["headers"]["X-Read-Position"] = sent.headers["X-Read-Position"]  # her last write, as a careful client echoes it
    return {
        "alice": alice["user"]["id"], "post": post["id"], "job": job["id"], "application": application["id"],
        "conversation": message["conversation_id"], "resume": resume,
        "strangers": {"mallory": mallory["headers"], "eve": eve["headers"]}, "alice_headers": alice["headers"],
        "erin_headers": erin["headers"],
    }


def test_every_object_route_is_classified():
    names = {r.name for r in object_routes()}
    assert names == PRIVATE | PUBLIC, f"say whether strangers may use: {sorted(names ^ (PRIVATE | PUBLIC))}"


async def test_strangers_reach_no_private_object(client, world, primary):
    tried = 0
    for route in object_routes():
        if route.name not in PRIVATE:
            continue
        for who, headers in world["strangers"].items():
            response = await client.request(route.method, url(route, world), json=BODIES.get(route.name), headers=headers)
            body = await response.json()
            assert response.status in (403, 404), f"{who}: {route.method} {route.path} -> {response.status} {body}"
            assert body["error"]["code"] in ("forbidden", "not_found")
            tried += 1
    # ...and nothing of the victims' changed.
    assert await primary.fetchval("SELECT body FROM posts WHERE id = $1", world["post"]) == "mine"
    assert await primary.fetchrow("SELECT title, status FROM jobs WHERE id = $1", world["job"]) == ("Line cook", "open")
    assert await primary.fetchval("SELECT status FROM applications WHERE id = $1", world["application"]) == "submitted"
    print(f"\nBOLA: {tried} stranger attempts on {len(PRIVATE)} private object routes, all 403/404")


async def test_the_owner_does_reach_them(client, world):
    """The same calls succeed for the owner, so the refusals above are about who, not about how."""
    for name in ("applications.get", "messages.conversation", "messages.read"):
        route = next(r for r in ROUTE_TABLE if r.name == name)
        response = await client.request(route.method, url(route, world), headers=world["alice_headers"])
        assert response.status < 300, (name, response.status, await response.text())


async def test_anonymous_callers_get_401_on_every_authenticated_route(client, world):
    for route in ROUTE_TABLE:
        path = url(route, world) if "{" in route.path else route.path
        if route.name == "messages.ws":  # a WebSocket: unauthenticated, it is closed with 4401
            async with client.ws_connect(path) as ws:
                await ws.send_json({"type": "auth", "token": "not-a-token"})
                await ws.receive()
            assert ws.close_code == 4401
            continue
        response = await client.request(route.method, path, json=BODIES.get(route.name))
        if route.auth:
            body = await response.json()
            assert response.status == 401, f"{route.method} {route.path} -> {response.status}"
            assert body["error"]["code"] == "unauthorized"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        elif route.name in PRIVATE:
            assert response.status in (401, 404), f"{route.method} {route.path} -> {response.status}"


async def test_every_json_body_route_refuses_other_content_types_with_415(client, world):
    for route in ROUTE_TABLE:
        # As someone allowed to call it, so the refusal is about the body alone.
        headers = world["erin_headers"] if route.path.startswith("/api/jobs") and route.name != "jobs.apply" else world["alice_headers"]
        if route.body is None or route.body_type != "application/json" or route.name == "auth.logout":
            continue
        path = url(route, world) if "{" in route.path else route.path
        response = await client.request(route.method, path, data="body=x", headers={**headers, "Content-Type": "text/plain"})
        body = await response.json()
        assert response.status == 415, f"{route.method} {route.path} -> {response.status}"
        assert body["error"]["code"] == "unsupported_media_type"


async def test_sql_metacharacters_in_every_query_parameter_are_harmless(client, world, primary):
    headers = world["alice_headers"]
    users_before = await primary.fetchval("SELECT count(*) FROM users")
    for route in ROUTE_TABLE:
        if route.query is None or route.method != "GET" or route.name == "messages.ws":
            continue
        path = url(route, world) if "{" in route.path else route.path
        for field, info in route.query.model_fields.items():
            if info.annotation not in (str, str | None):
                continue
            for value in SQL:
                response = await client.get(path, params={field: value}, headers=headers)
                assert response.status < 500, f"{route.path}?{field}={value!r} -> {response.status}"
                assert response.status in (200, 400, 422)
    assert await primary.fetchval("SELECT count(*) FROM users") == users_before


async def test_sql_metacharacters_in_text_bodies_are_stored_verbatim(client, world, primary):
    headers = world["alice_headers"]
    for value in SQL[:-1]:  # (NUL is refused with 422: PostgreSQL text cannot hold it)
        response = await client.post("/api/posts", json={"body": value}, headers=headers)
        assert response.status == 201
        post = await response.json()
        assert (await (await client.get(f"/api/posts/{post['id']}", headers=headers)).json())["body"] == value.strip()
        response = await client.patch("/api/users/me", json={"name": value, "bio": value}, headers=headers)
        assert response.status == 200 and (await response.json())["bio"] == value.strip()
    found = await client.get("/api/users", params={"q": "' OR '1'='1"})
    assert (await found.json())["items"] == [] or all("'" in u["name"] for u in (await found.json())["items"])
    assert await primary.fetchval("SELECT count(*) FROM users") == 5
