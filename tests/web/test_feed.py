"""The feed (fan-out on read, cached per user and page) and trending (stale-while-revalidate)."""

from __future__ import annotations

import asyncio
import struct
import time

from hmb.appkeys import CACHE, FANOUT, REDIS
from hmb.ops.seed import DEMO_PASSWORD, DEMO_PEOPLE, load_demo
from hmb.store import cache_keys
from tests.conftest import TEST_ENV, wait_for
from tests.factories import register


async def _post(client, who, body="hello") -> dict:
    response = await client.post("/api/posts", json={"body": body}, headers=who["headers"])
    assert response.status == 201, await response.text()
    return await response.json()


async def _feed(client, who, query="") -> tuple[list[int], dict]:
    response = await client.get(f"/api/posts/feed{query}", headers=who["headers"])
    assert response.status == 200, await response.text()
    body = await response.json()
    return [p["id"] for p in body["items"]], {"cache": response.headers["X-Cache"], **body}


async def test_follower_sees_a_new_post_within_the_bound_across_two_instances(make_client):
    one, two = await make_client(), await make_client()
    author, reader = await register(one), await register(one)
    assert (await one.post(f"/api/users/{author['user']['id']}/follow", headers=reader["headers"])).status == 204
    await _post(one, author, "before")
    ids, page = await _feed(two, reader)
    ids_again, page_again = await _feed(two, reader)
    assert ids == ids_again and page_again["cache"] == "l1"  # the page is cached on instance two

    new = await _post(one, author, "after")  # written through instance one: no broadcast reaches two
    posted = time.monotonic()

    async def shown() -> bool:
        return (await _feed(two, reader))[0][0] == new["id"]

    await wait_for(shown, timeout=cache_keys.FEED_GEN_LOCAL_S + 2)
    # Not before two's copy of the generation could age out, and not much after.
    assert time.monotonic() - posted <= cache_keys.FEED_GEN_LOCAL_S + 0.5
    own, _ = await _feed(two, author)  # the author's own feed too
    assert own[0] == new["id"]

    # A delete leaves the feeds the same way.
    assert (await one.delete(f"/api/posts/{new['id']}", headers=author["headers"])).status == 204
    await wait_for(lambda: _gone(two, reader, new["id"]), timeout=cache_keys.FEED_GEN_LOCAL_S + 2)


async def _gone(client, who, post_id: int) -> bool:
    return post_id not in (await _feed(client, who))[0]


async def test_own_write_shows_at_once_on_another_instance(make_client):
    """Read-your-writes: a read position past the worker's copy of the generation asks Redis."""
    one, two = await make_client(), await make_client()
    me, followed = await register(one), await register(one)
    assert (await one.post(f"/api/users/{followed['user']['id']}/follow", headers=me["headers"])).status == 204
    await _post(one, followed, "theirs")
    await _feed(two, me)
    assert (await _feed(two, me))[1]["cache"] == "l1"  # two holds the page and the generation

    response = await one.post("/api/posts", json={"body": "mine"}, headers=me["headers"])
    mine = await response.json()
    position = {"X-Read-Position": response.headers["X-Read-Position"]}
    ids, page = await _feed(two, {"headers": {**me["headers"], **position}})  # the very next read
    assert ids[0] == mine["id"] and page["cache"] == "miss"


async def test_a_posts_invalidations_bumps_and_fan_out_take_two_redis_round_trips(client, redis_client):
    """The announced work, then the fan-out (which is also what makes the announcement leave first)."""
    author, reader = await register(client), await register(client)
    assert (await client.post(f"/api/users/{author['user']['id']}/follow", headers=reader["headers"])).status == 204
    profile = cache_keys.user(author["user"]["id"]).name
    await redis_client.set(profile, b"cached profile")
    redis = client.app[REDIS]
    calls = []
    real_call = redis.call

    async def counted(fn):
        calls.append(fn)
        return await real_call(fn)

    redis.call = counted
    try:
        await _post(client, author)
    finally:
        del redis.call
    assert len(calls) == 2, calls
    assert not await redis_client.exists(profile)
    gens = [cache_keys.posts_gen(), cache_keys.feed_gen(author["user"]["id"]), cache_keys.feed_gen(reader["user"]["id"])]
    values = await redis_client.mget([k.name for k in gens])
    assert values[0] is not None and len(set(values)) == 1  # all moved to the post's WAL position


async def test_feed_is_followees_and_own_newest_first_paginated(client):
    me, followed, stranger = await register(client), await register(client), await register(client)
    await client.post(f"/api/users/{followed['user']['id']}/follow", headers=me["headers"])
    expected = []
    for who in (followed, stranger, me, followed, stranger, me):
        post = await _post(client, who)
        if who is not stranger:
            expected.append(post["id"])
    seen, cursor = [], None
    while True:
        ids, page = await _feed(client, me, "?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        seen += ids
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == expected[::-1]
    # Unfollowing takes their posts out of the next read.
    await client.delete(f"/api/users/{followed['user']['id']}/follow", headers=me["headers"])
    ids, _ = await _feed(client, me)
    assert ids == [expected[3], expected[1]]


async def test_10000_followers_feeds_invalidated_in_bounded_time(client, make_users, primary, redis_client):
    author = await register(client)
    followers = await make_users(client, 10_000)
    await primary.execute(
        "INSERT INTO follows (follower_id, followee_id) SELECT unnest($1::bigint[]), $2",
        [f["id"] for f in followers],
        author["user"]["id"],
    )
    await _post(client, author, "old")
    await wait_for(lambda: not client.app[FANOUT].tasks, timeout=30)
    sample = [followers[0], followers[4_999], followers[-1]]
    for who in sample:  # cached feed pages that must not be served after the next post
        await _feed(client, who)
        assert (await _feed(client, who))[1]["cache"] == "l1"

    gen_keys = [cache_keys.feed_gen(f["id"]).name for f in followers]
    started = time.perf_counter()
    new = await _post(client, author, "to ten thousand followers")
    request_s = time.perf_counter() - started

    async def all_bumped() -> bool:
        values = await redis_client.mget(gen_keys)
        return len({v for v in values}) == 1 and values[0] is not None

    await wait_for(all_bumped, timeout=30)
    elapsed = time.perf_counter() - started
    fanout = client.app[FANOUT].last
    print(
        f"\n10,000 followers: POST answered in {request_s * 1000:.0f} ms; every follower's feed generation moved "
        f"{elapsed * 1000:.0f} ms after the POST began (fan-out task: {fanout['seconds'] * 1000:.0f} ms "
        f"for {fanout['followers']} followers)"
    )
    assert fanout["followers"] == 10_000
    author_gen = await redis_client.get(cache_keys.feed_gen(author["user"]["id"]).name)
    assert author_gen == (await redis_client.get(gen_keys[0]))
    for who in sample:
        ids, page = await _feed(client, who)
        assert ids[0] == new["id"] and page["cache"] == "miss"


async def test_feed_query_uses_the_author_index(primary, client):
    """Fan-out on read stays a few index probes per followed author, whatever the table size."""
    user = await register(client)
    plan = "\n".join(
        r[0]
        for r in await primary.fetch(
            """
            EXPLAIN SELECT p.id FROM (SELECT followee_id AS author_id FROM follows WHERE follower_id = $1
                                      UNION ALL SELECT $1::bigint) a
            CROSS JOIN LATERAL (SELECT * FROM posts WHERE posts.author_id = a.author_id ORDER BY posts.id DESC LIMIT 21) p
            ORDER BY p.id DESC LIMIT 21
            """,
            user["user"]["id"],
        )
    )
    assert "posts_author_id" in plan, plan


async def _trending(client) -> tuple[list[int], str]:
    response = await client.get("/api/posts/trending?limit=5")
    assert response.status == 200
    body = await response.json()
    assert body["window_hours"] == 72
    return [p["id"] for p in body["items"]], response.headers["X-Cache"]


async def test_trending_is_the_most_liked_recent_posts(client, make_users, primary, launcher):
    author = await register(client)
    likers = await make_users(client, 3)
    posts = [await _post(client, author, f"p{i}") for i in range(4)]
    for post, n in zip(posts, (1, 3, 0, 2)):
        for liker in likers[:n]:
            await client.post(f"/api/posts/{post['id']}/like", headers=liker["headers"])
    old = await _post(client, author, "old but popular")
    for liker in likers:
        await client.post(f"/api/posts/{old['id']}/like", headers=liker["headers"])
    await primary.execute("UPDATE posts SET created_at = now() - interval '73 hours' WHERE id = $1", old["id"])
    await asyncio.to_thread(launcher.wait_replica_caught_up, 10)  # written behind the API's back
    ids, _ = await _trending(client)
    assert ids == [posts[1]["id"], posts[3]["id"], posts[0]["id"]]
    bad = await client.get("/api/posts/trending?limit=500")
    assert bad.status == 422 and (await bad.json())["error"]["code"] == "validation_failed"


async def test_trending_expiry_is_recomputed_once_in_the_background_while_every_request_gets_the_previous_list(
    make_client, make_users, redis_client, launcher
):
    one, two = await make_client(), await make_client()
    author = await register(one)
    likers = await make_users(one, 2)
    first = await _post(one, author, "first")
    await one.post(f"/api/posts/{first['id']}/like", headers=likers[0]["headers"])
    previous, _ = await _trending(one)
    assert previous == [first["id"]]

    # Something new gets more likes; then the cached list reaches its 600 s expiry.
    second = await _post(one, author, "second")
    for liker in likers:
        await one.post(f"/api/posts/{second['id']}/like", headers=liker["headers"])
    # Trending is computed on a replica without a read position: let it see the likes.
    await asyncio.to_thread(launcher.wait_replica_caught_up, 10)
    key = cache_keys.trending(5)
    raw = await redis_client.get(key.name)
    await redis_client.set(key.name, struct.pack("!d", time.time() - 1) + raw[8:], ex=60)
    for app_client in (one, two):
        app_client.app[CACHE].invalidations.drop_local(["*"])

    # While one request holds the refresh lock, everyone else keeps getting the previous list.
    await redis_client.set(cache_keys.lock(key), b"1", px=10_000)
    stale = await asyncio.gather(*(_trending(c) for c in (one, two) for _ in range(5)))
    assert all(ids == previous and level != "miss" for ids, level in stale)

    # Lock released: of 20 concurrent requests on two instances none waits for the database;
    # one takes the lock and the list is recomputed once, in the background.
    await redis_client.delete(cache_keys.lock(key))
    for app_client in (one, two):
        app_client.app[CACHE].invalidations.drop_local(["*"])  # their stale copies lapse (held in L1 for STALE_L1_S)
    results = await asyncio.gather(*(_trending(c) for c in (one, two) for _ in range(10)))
    assert all(ids == previous and level != "miss" for ids, level in results)

    def refreshes() -> int:
        return sum(c.app[CACHE].counts[("trending", "refresh", "done")] for c in (one, two))

    await wait_for(lambda: refreshes() == 1)
    two.app[CACHE].invalidations.drop_local(["*"])
    assert (await _trending(two))[0] == [second["id"], first["id"]]
    assert refreshes() == 1


async def test_demo_data_gives_a_newcomer_a_full_feed(client, stack, monkeypatch):
    for name, value in {**TEST_ENV, **stack.env()}.items():
        monkeypatch.setenv(name, value)
    assert await load_demo(stack.primary_url)
    email = DEMO_PEOPLE[0][0]
    login = await client.post("/api/auth/login", json={"email": email, "password": DEMO_PASSWORD})
    headers = {"Authorization": f"Bearer {(await login.json())['access_token']}"}
    ids, page = await _feed(client, {"headers": headers})
    assert len(ids) >= 5 and any(p["like_count"] > 0 for p in page["items"])
    me = await (await client.get("/api/auth/me", headers=headers)).json()
    profile = await (await client.get(f"/api/users/{me['id']}", headers=headers)).json()
    assert profile["avatar_url"] and profile["followers_count"] == len(DEMO_PEOPLE) - 1
    avatar = await client.get(profile["avatar_url"])
    assert avatar.status == 200 and avatar.content_type == "image/png"
