"""/api/messages: conversations per pair, pages newest first, read markers and exact unread counts."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from tests.web.test_jobs import assert_error, register


def uid(user: dict) -> int:
    """The id of a user from register() or from the make_users fixture."""
    return user["user"]["id"] if "user" in user else user["id"]


async def send(client, sender: dict, recipient: dict, body: str, **headers):
    return await client.post(
        "/api/messages",
        json={"recipient_id": uid(recipient), "body": body},
        headers={**sender["headers"], **headers},
    )


async def sent(client, sender: dict, recipient: dict, body: str) -> dict:
    response = await send(client, sender, recipient, body)
    assert response.status == 201, await response.text()
    return await response.json()


async def conversations(client, user: dict, **params) -> dict:
    response = await client.get("/api/messages/conversations", params=params, headers=user["headers"])
    assert response.status == 200, await response.text()
    return await response.json()


async def test_the_first_message_starts_the_one_conversation_of_a_pair(client, primary):
    ann, bob, cat = [await register(client, name=n) for n in ("Ann", "Bob", "Cat")]
    first = await sent(client, ann, bob, "  Hi Bob  ")
    assert first["body"] == "Hi Bob"  # trimmed
    assert (first["sender_id"], first["recipient_id"]) == (ann["user"]["id"], bob["user"]["id"])
    reply = await sent(client, bob, ann, "Hi Ann")
    assert reply["conversation_id"] == first["conversation_id"]
    other = await sent(client, cat, bob, "Hello")
    assert other["conversation_id"] != first["conversation_id"]
    assert await primary.fetchval("SELECT count(*) FROM conversations") == 2

    listed = await conversations(client, bob)
    assert [c["id"] for c in listed["items"]] == [other["conversation_id"], first["conversation_id"]]
    latest = listed["items"][1]
    assert latest["peer"] == {"id": ann["user"]["id"], "name": "Ann"}
    assert latest["last_message"]["body"] == "Hi Ann"
    assert latest["unread_count"] == 1  # Ann's; his own reply never counts
    ann_view = (await conversations(client, ann))["items"]
    assert [(c["peer"]["name"], c["unread_count"]) for c in ann_view] == [("Bob", 1)]


async def test_bodies_are_checked(client, primary):
    ann, bob = await register(client), await register(client)
    for body in ("", "   \n\t ", "x" * 5001):
        error = await assert_error(await send(client, ann, bob, body), 422, "validation_failed")
        assert "body" in error["fields"]
    assert (await send(client, ann, bob, " " + "x" * 5000 + " ")).status == 201
    error = await assert_error(await send(client, ann, ann, "me"), 422, "validation_failed")
    assert "recipient_id" in error["fields"]
    error = await assert_error(await send(client, ann, {"user": {"id": 999999}}, "hello?"), 422, "validation_failed")
    assert "recipient_id" in error["fields"]
    await assert_error(await client.post("/api/messages", json={"recipient_id": 1, "body": "x"}), 401, "unauthorized")
    assert await primary.fetchval("SELECT count(*) FROM messages") == 1


async def test_messages_newest_first_with_cursor_pages(client):
    ann, bob = await register(client), await register(client)
    ids = [(await sent(client, *((ann, bob) if i % 2 else (bob, ann)), f"m{i}"))["id"] for i in range(7)]
    conversation_id = (await conversations(client, ann))["items"][0]["id"]
    seen, cursor = [], None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        response = await client.get(f"/api/messages/conversations/{conversation_id}", params=params, headers=bob["headers"])
        assert response.status == 200
        page = await response.json()
        seen += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids[::-1]


async def test_only_the_two_members_see_a_conversation(client, primary):
    ann, bob, eve = [await register(client) for _ in range(3)]
    message = await sent(client, ann, bob, "private")
    url = f"/api/messages/conversations/{message['conversation_id']}"
    await assert_error(await client.get(url, headers=eve["headers"]), 404, "not_found")
    await assert_error(await client.post(f"{url}/read", headers=eve["headers"]), 404, "not_found")
    await assert_error(await client.get(url), 401, "unauthorized")
    await assert_error(await client.get("/api/messages/conversations/999999", headers=ann["headers"]), 404, "not_found")
    assert (await conversations(client, eve))["items"] == []
    assert await primary.fetchval("SELECT last_read_message_id FROM conversation_members WHERE user_id = $1", bob["user"]["id"]) == 0


async def test_unread_counts_are_exact_after_concurrent_sends_and_a_read_marker(client, make_client, make_users, launcher):
    other_pod = await make_client()
    reader = await register(client, name="Reader")
    senders = await make_users(client, 10)
    names = {s["id"]: f"S{i}" for i, s in enumerate(senders)}

    async def burst(sender, n, tag):
        for i in range(n):
            await sent(other_pod if i % 2 else client, sender, reader, f"{tag}{i}")

    await asyncio.gather(*(burst(s, 5, "a") for s in senders), sent(client, reader, senders[0], "hello all"))
    # Others' writes carry no read position of the reader's: let the replica catch up (eventual, not read-your-writes).
    await asyncio.to_thread(launcher.wait_replica_caught_up, 10)
    items = {names[c["peer"]["id"]]: c for c in (await conversations(client, reader))["items"]}
    assert {name: c["unread_count"] for name, c in items.items()} == {f"S{i}": 5 for i in range(10)}

    # Read S0 up to its 3rd message, S1 completely; then everyone sends 3 more at once.
    s0 = items["S0"]["id"]
    page = await (await client.get(f"/api/messages/conversations/{s0}", headers=reader["headers"])).json()
    from_s0 = sorted(m["id"] for m in page["items"] if m["sender_id"] == senders[0]["id"])
    marker = await client.post(f"/api/messages/conversations/{s0}/read", params={"up_to": str(from_s0[2])}, headers=reader["headers"])
    assert (await marker.json()) == {"conversation_id": s0, "last_read_message_id": from_s0[2], "unread_count": 2}
    marker = await client.post(f"/api/messages/conversations/{items['S1']['id']}/read", headers=reader["headers"])
    assert (await marker.json())["unread_count"] == 0
    # the marker never moves back
    back = await client.post(f"/api/messages/conversations/{s0}/read", params={"up_to": "1"}, headers=reader["headers"])
    assert (await back.json())["last_read_message_id"] == from_s0[2]

    await asyncio.gather(*(burst(s, 3, "b") for s in senders))
    await asyncio.to_thread(launcher.wait_replica_caught_up, 10)
    after = {names[c["peer"]["id"]]: c["unread_count"] for c in (await conversations(client, reader, limit="100"))["items"]}
    expected = {f"S{i}": 8 for i in range(10)} | {"S0": 5, "S1": 3}
    assert after == expected
    s0_view = (await conversations(client, senders[0]))["items"][0]
    assert s0_view["unread_count"] == 1  # the reader's "hello all"


async def test_conversation_list_pages_by_latest_activity(client):
    me = await register(client)
    peers = [await register(client) for _ in range(5)]
    for peer in peers:
        await sent(client, peer, me, "hi")
    await sent(client, me, peers[0], "back to you")  # moves that conversation to the top
    first = await conversations(client, me, limit="3")
    rest = await conversations(client, me, limit="3", cursor=first["next_cursor"])
    order = [c["peer"]["id"] for c in first["items"] + rest["items"]]
    assert order == [peers[0]["user"]["id"]] + [p["user"]["id"] for p in reversed(peers[1:])]
    assert rest["next_cursor"] is None


async def test_send_honours_idempotency_key(client, primary):
    ann, bob = await register(client), await register(client)
    responses = await asyncio.gather(*(send(client, ann, bob, "once", **{"Idempotency-Key": "m-1"}) for _ in range(3)))
    assert {r.status for r in responses} == {201}
    assert len({(await r.json())["id"] for r in responses}) == 1
    assert await primary.fetchval("SELECT count(*) FROM messages") == 1


async def test_sending_too_fast_is_429_and_nothing_is_stored(make_client, settings, primary, one_rate_window):
    client = await make_client(settings.with_(web=replace(settings.web, messages_per_min=3)))
    sender, recipient = await register(client), await register(client)
    for i in range(3):
        ok = await client.post("/api/messages", json={"recipient_id": recipient["user"]["id"], "body": f"hi {i}"}, headers=sender["headers"])
        assert ok.status == 201 and ok.headers["X-RateLimit-Limit"] == "3"
    refused = await client.post("/api/messages", json={"recipient_id": recipient["user"]["id"], "body": "again"}, headers=sender["headers"])
    assert refused.status == 429
    assert (await refused.json())["error"]["code"] == "rate_limited" and int(refused.headers["Retry-After"]) >= 1
    assert await primary.fetchval("SELECT count(*) FROM messages WHERE sender_id = $1", sender["user"]["id"]) == 3
