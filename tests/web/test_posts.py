"""/api/posts: create/read/edit/delete, the newest list, likes, and who may change what."""

from __future__ import annotations

import asyncio

from tests.factories import register


async def _post(client, who, body="hello", **extra) -> dict:
    response = await client.post("/api/posts", json={"body": body, **extra}, headers=who["headers"])
    assert response.status == 201, await response.text()
    return await response.json()


async def _error(response, status: int, code: str) -> None:
    assert response.status == status, await response.text()
    assert (await response.json())["error"]["code"] == code


async def test_create_read_edit_delete(client):
    a = await register(client, name="Author")
    post = await _post(client, a, "first post")
    assert post["author"]["name"] == "Author" and post["like_count"] == 0 and post["image_url"] is None
    got = await (await client.get(f"/api/posts/{post['id']}")).json()
    assert got["body"] == "first post" and got["liked_by_me"] is False
    edited = await client.patch(f"/api/posts/{post['id']}", json={"body": "edited"}, headers=a["headers"])
    assert edited.status == 200 and (await edited.json())["body"] == "edited"
    assert (await (await client.get(f"/api/posts/{post['id']}")).json())["body"] == "edited"
    assert (await client.delete(f"/api/posts/{post['id']}", headers=a["headers"])).status == 204
    await _error(await client.get(f"/api/posts/{post['id']}"), 404, "not_found")
    profile = await (await client.get(f"/api/users/{a['user']['id']}")).json()
    assert profile["posts_count"] == 0


async def test_invalid_posts_are_422(client):
    a = await register(client)
    for body in ({"body": ""}, {"body": "x" * 5001}, {}, {"body": "ok", "author_id": 1}):
        await _error(await client.post("/api/posts", json=body, headers=a["headers"]), 422, "validation_failed")
    await _error(await client.post("/api/posts", json={"body": "x"}), 401, "unauthorized")


async def test_list_is_newest_first_paginated_and_filters_by_author(client):
    a, b = await register(client), await register(client)
    ids = [(await _post(client, who, f"p{i}"))["id"] for i, who in enumerate([a, b, a, b, a])]
    first = await (await client.get("/api/posts?limit=3")).json()
    second = await (await client.get(f"/api/posts?limit=3&cursor={first['next_cursor']}")).json()
    assert [p["id"] for p in first["items"] + second["items"]] == ids[::-1]
    assert second["next_cursor"] is None
    only_a = await (await client.get(f"/api/posts?author_id={a['user']['id']}")).json()
    assert [p["id"] for p in only_a["items"]] == [ids[4], ids[2], ids[0]]
    # A new post shows in the cached list at once (its generation moved).
    new = await _post(client, b, "newest")
    assert (await (await client.get("/api/posts?limit=3")).json())["items"][0]["id"] == new["id"]


async def test_likes_are_idempotent(client):
    a, b = await register(client), await register(client)
    post = await _post(client, a)
    for _ in range(2):
        assert (await client.post(f"/api/posts/{post['id']}/like", headers=b["headers"])).status == 204
    got = await (await client.get(f"/api/posts/{post['id']}", headers=b["headers"])).json()
    assert got["like_count"] == 1 and got["liked_by_me"] is True
    for _ in range(2):
        assert (await client.delete(f"/api/posts/{post['id']}/like", headers=b["headers"])).status == 204
    got = await (await client.get(f"/api/posts/{post['id']}", headers=b["headers"])).json()
    assert got["like_count"] == 0 and got["liked_by_me"] is False
    await _error(await client.post("/api/posts/999999/like", headers=b["headers"]), 404, "not_found")
    await _error(await client.delete("/api/posts/999999/like", headers=b["headers"]), 404, "not_found")


async def test_100_concurrent_likes_from_100_users_count_exactly_100(client, make_users, primary):
    author = await register(client)
    post = await _post(client, author)
    likers = await make_users(client, 100)

    async def like(user) -> int:
        return (await client.post(f"/api/posts/{post['id']}/like", headers=user["headers"])).status

    # Each user likes twice, all at once: 200 requests, 100 likes.
    statuses = await asyncio.gather(*(like(u) for u in likers + likers))
    assert set(statuses) == {204}
    got = await (await client.get(f"/api/posts/{post['id']}")).json()
    assert got["like_count"] == 100
    assert await primary.fetchval("SELECT count(*) FROM likes WHERE post_id = $1", post["id"]) == 100


async def test_idempotency_key_creates_one_post(client, primary):
    a = await register(client)
    headers = {**a["headers"], "Idempotency-Key": "post-1"}
    responses = [await client.post("/api/posts", json={"body": "once"}, headers=headers) for _ in range(3)]
    assert {r.status for r in responses} == {201}
    assert len({(await r.json())["id"] for r in responses}) == 1
    assert await primary.fetchval("SELECT count(*) FROM posts") == 1


async def test_authorization_matrix_another_user_changes_nothing(client, primary):
    """Every mutating route and private read of users/posts/feed, tried by someone else."""
    owner, other = await register(client), await register(client)
    post = await _post(client, owner, "mine")
    await client.post(f"/api/posts/{post['id']}/like", headers=owner["headers"])
    outsider = await register(client)
    await client.post(f"/api/users/{owner['user']['id']}/follow", headers=outsider["headers"])
    before = await primary.fetchrow(
        "SELECT p.body, p.like_count, u.name, u.followers_count FROM posts p JOIN users u ON u.id = p.author_id"
    )

    # Someone else's post: visible, so 403 (not 404) on change; a post that is not there is 404.
    await _error(await client.patch(f"/api/posts/{post['id']}", json={"body": "x"}, headers=other["headers"]), 403, "forbidden")
    await _error(await client.delete(f"/api/posts/{post['id']}", headers=other["headers"]), 403, "forbidden")
    await _error(await client.patch("/api/posts/999999", json={"body": "x"}, headers=other["headers"]), 404, "not_found")
    await _error(await client.delete("/api/posts/999999", headers=other["headers"]), 404, "not_found")
    # Removing a like or a follow only ever touches the caller's own: the owner's stay.
    assert (await client.delete(f"/api/posts/{post['id']}/like", headers=other["headers"])).status == 204
    assert (await client.delete(f"/api/users/{owner['user']['id']}/follow", headers=other["headers"])).status == 204
    # /me routes have no target: they change the caller, never the owner.
    assert (await client.patch("/api/users/me", json={"name": "Renamed"}, headers=other["headers"])).status == 200
    # No token: 401 on every mutating route.
    for method, path in (
        ("PATCH", f"/api/posts/{post['id']}"),
        ("DELETE", f"/api/posts/{post['id']}"),
        ("POST", f"/api/posts/{post['id']}/like"),
        ("DELETE", f"/api/posts/{post['id']}/like"),
        ("POST", f"/api/users/{owner['user']['id']}/follow"),
        ("DELETE", f"/api/users/{owner['user']['id']}/follow"),
        ("PATCH", "/api/users/me"),
        ("GET", "/api/posts/feed"),
    ):
        await _error(await client.request(method, path, json={"body": "x"}), 401, "unauthorized")
    # The feed is private to its reader: the other user's feed does not carry the owner's own view.
    feed = await (await client.get("/api/posts/feed", headers=other["headers"])).json()
    assert feed["items"] == []

    after = await primary.fetchrow(
        "SELECT p.body, p.like_count, u.name, u.followers_count FROM posts p JOIN users u ON u.id = p.author_id"
    )
    assert dict(after) == dict(before)
