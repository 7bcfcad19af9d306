"""/api/users: profiles with counts and is_following, follows, lists, search, editing one's own profile."""

from __future__ import annotations

from tests.factories import register


async def _follow(client, who, target_id, method="POST"):
    response = await client.request(method, f"/api/users/{target_id}/follow", headers=who["headers"])
    assert response.status == 204, await response.text()


async def test_profile_has_counts_and_is_following_for_each_caller(client):
    a, b, c = await register(client, name="Ana"), await register(client), await register(client)
    await _follow(client, b, a["user"]["id"])
    await _follow(client, a, c["user"]["id"])
    await client.post("/api/posts", json={"body": "hello"}, headers=a["headers"])

    as_b = await client.get(f"/api/users/{a['user']['id']}", headers=b["headers"])
    as_c = await client.get(f"/api/users/{a['user']['id']}", headers=c["headers"])
    anonymous = await client.get(f"/api/users/{a['user']['id']}")
    body_b, body_c, body_anon = await as_b.json(), await as_c.json(), await anonymous.json()
    assert body_b["is_following"] is True
    assert body_c["is_following"] is False and body_anon["is_following"] is False
    assert (body_b["followers_count"], body_b["following_count"], body_b["posts_count"]) == (1, 1, 1)
    # One cached body for everyone; only the caller's own view differs.
    assert as_c.headers["X-Cache"] == "l1" and anonymous.headers["X-Cache"] == "l1"
    assert {k: v for k, v in body_b.items() if k != "is_following"} == {
        k: v for k, v in body_c.items() if k != "is_following"
    }
    assert "email" not in body_b


async def test_follow_is_idempotent_and_counts_move_once(client):
    a, b = await register(client), await register(client)
    await _follow(client, b, a["user"]["id"])
    await _follow(client, b, a["user"]["id"])
    profile = await (await client.get(f"/api/users/{a['user']['id']}", headers=b["headers"])).json()
    assert profile["followers_count"] == 1 and profile["is_following"] is True
    await _follow(client, b, a["user"]["id"], "DELETE")
    await _follow(client, b, a["user"]["id"], "DELETE")
    profile = await (await client.get(f"/api/users/{a['user']['id']}", headers=b["headers"])).json()
    me = await (await client.get(f"/api/users/{b['user']['id']}")).json()
    assert profile["followers_count"] == 0 and profile["is_following"] is False and me["following_count"] == 0


async def test_following_yourself_is_422_and_unknown_users_404(client):
    a = await register(client)
    response = await client.post(f"/api/users/{a['user']['id']}/follow", headers=a["headers"])
    assert response.status == 422
    assert (await response.json())["error"]["code"] == "validation_failed"
    for method in ("POST", "DELETE"):
        response = await client.request(method, "/api/users/999999/follow", headers=a["headers"])
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "not_found"
    response = await client.post(f"/api/users/{a['user']['id']}/follow")
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthorized"


async def test_followers_and_following_lists_are_newest_first_and_paginated(client, make_users):
    star = await register(client)
    fans = await make_users(client, 5)
    for fan in fans:
        await _follow(client, fan, star["user"]["id"])
    seen, cursor = [], None
    while True:
        url = f"/api/users/{star['user']['id']}/followers?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = await (await client.get(url)).json()
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f["id"] for f in reversed(fans)]
    following = await (await client.get(f"/api/users/{fans[0]['id']}/following")).json()
    assert [p["id"] for p in following["items"]] == [star["user"]["id"]]
    missing = await client.get("/api/users/999999/followers")
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "not_found"
    bad = await client.get(f"/api/users/{star['user']['id']}/followers?cursor=nonsense")
    assert bad.status == 400 and (await bad.json())["error"]["code"] == "bad_request"


async def test_search_by_name(client):
    await register(client, name="Grace Hopper")
    await register(client, name="Alan Turing")
    found = await (await client.get("/api/users?q=hopp")).json()
    assert [p["name"] for p in found["items"]] == ["Grace Hopper"]


async def test_patch_me_changes_only_documented_fields(client, primary):
    a = await register(client)
    for field, value in (("role", "employer"), ("email", "x@example.com"), ("followers_count", 999), ("id", 1)):
        response = await client.patch("/api/users/me", json={field: value}, headers=a["headers"])
        assert response.status == 422, field
        assert (await response.json())["error"]["code"] == "validation_failed"
    row = await primary.fetchrow("SELECT role, email, followers_count FROM users WHERE id = $1", a["user"]["id"])
    assert (row["role"], row["email"], row["followers_count"]) == ("seeker", a["email"], 0)
    response = await client.patch("/api/users/me", json={"headline": "Engineer"}, headers=a["headers"])
    assert response.status == 200
    profile = await (await client.get(f"/api/users/{a['user']['id']}")).json()
    assert profile["headline"] == "Engineer"
