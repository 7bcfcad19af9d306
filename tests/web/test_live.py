"""GET /api/messages/ws: live delivery across instances, replay after a reconnect, auth, heartbeat, drain."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from aiohttp import WSMsgType

from hmb.appkeys import LIFECYCLE, LIVE
from hmb.store import messages as store
from tests.conftest import wait_for
from tests.web.test_jobs import assert_error, register
from tests.web.test_messages import send, sent, uid


async def connect(client, user: dict | None = None, after: int | None = None, **options):
    """A socket, authenticated by header, and its "ready" frame (the replay, if any, comes before it)."""
    params = {"after": str(after)} if after is not None else {}
    headers = user["headers"] if user else {}
    ws = await client.ws_connect("/api/messages/ws", params=params, headers=headers, **options)
    return ws


async def frame(ws, timeout: float = 5.0) -> dict:
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type == WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
    return json.loads(msg.data)


async def until_ready(ws) -> tuple[list[dict], dict]:
    """The replayed messages, then the ready frame."""
    replayed = []
    while True:
        data = await frame(ws)
        if data["type"] == "ready":
            return replayed, data
        replayed.append(data["message"])


async def messages_from(ws, n: int, timeout: float = 10.0) -> list[dict]:
    out = []
    for _ in range(n):
        data = await frame(ws, timeout)
        assert data["type"] == "message", data
        out.append(data["message"])
    return out


async def test_a_send_through_another_instance_is_delivered_once_in_order(make_client):
    pod1, pod2 = await make_client(), await make_client()
    ann, bob = await register(pod1, name="Ann"), await register(pod1, name="Bob")
    ws = await connect(pod1, bob)
    assert await until_ready(ws) == ([], {"type": "ready", "last_message_id": 0})
    ids = []
    for i in range(20):
        pod = pod2 if i % 3 else pod1
        ids.append((await sent(pod, ann, bob, f"m{i}"))["id"])
    # A retried send (same Idempotency-Key) is not delivered again.
    for _ in range(2):
        response = await send(pod2, ann, bob, "once", **{"Idempotency-Key": "k"})
        assert response.status == 201
    ids.append((await response.json())["id"])
    got = await messages_from(ws, 21)
    assert [m["id"] for m in got] == ids
    assert [m["body"] for m in got[:3]] == ["m0", "m1", "m2"]
    assert got[0]["sender_id"] == uid(ann) and got[0]["recipient_id"] == uid(bob)
    # Nothing else is in the pipe: the next frame is the next message.
    last = await sent(pod2, ann, bob, "sentinel")
    assert [m["id"] for m in await messages_from(ws, 1)] == [last["id"]]
    await ws.close()


async def test_200_messages_from_10_concurrent_senders_all_arrive_once(make_client, make_users, primary):
    pod1, pod2 = await make_client(), await make_client()
    recipient = await register(pod1)
    senders = await make_users(pod1, 10)
    ws = await connect(pod1, recipient)
    await until_ready(ws)

    async def burst(i: int, sender: dict) -> list[int]:
        pod = pod2 if i % 2 else pod1
        return [(await sent(pod, sender, recipient, f"{i}-{n}"))["id"] for n in range(20)]

    started = time.perf_counter()
    sent_ids = [i for batch in await asyncio.gather(*(burst(i, s) for i, s in enumerate(senders))) for i in batch]
    got = [m["id"] for m in await messages_from(ws, 200)]
    elapsed = time.perf_counter() - started
    print(f"\n200 messages from 10 concurrent senders over 2 instances delivered in {elapsed * 1000:.0f} ms")
    in_db = [r["id"] for r in await primary.fetch("SELECT id FROM messages WHERE recipient_id = $1 ORDER BY id", uid(recipient))]
    assert len(got) == len(set(got)) == 200
    assert got == sorted(got) == in_db == sorted(sent_ids)
    # Each sender's conversation holds its 20, each once.
    counts = await primary.fetch("SELECT sender_id, count(DISTINCT body) AS n FROM messages GROUP BY sender_id")
    assert sorted(r["n"] for r in counts) == [20] * 10
    last = await sent(pod2, senders[0], recipient, "sentinel")
    assert [m["id"] for m in await messages_from(ws, 1)] == [last["id"]]


async def test_reconnect_with_the_last_seen_id_replays_exactly_what_was_missed(make_client):
    pod1, pod2 = await make_client(), await make_client()
    ann, bob = await register(pod1), await register(pod1)
    ws = await connect(pod1, bob)
    await until_ready(ws)
    for i in range(3):
        await sent(pod2, ann, bob, f"seen {i}")
    seen = await messages_from(ws, 3)
    await ws.close()
    missed = [(await sent(pod2, ann if i % 2 else bob, bob if i % 2 else ann, f"missed {i}"))["id"] for i in range(5)]
    ws = await connect(pod2, bob, after=seen[-1]["id"])
    replayed, ready = await until_ready(ws)
    assert [m["id"] for m in replayed] == missed  # sent and received, in order, nothing else
    assert ready["last_message_id"] == missed[-1]
    live = await sent(pod1, ann, bob, "live again")
    assert [m["id"] for m in await messages_from(ws, 1)] == [live["id"]]
    # A position past the stream's end is clamped to it: nothing later is skipped.
    ws2 = await connect(pod1, bob, after=10**12)
    assert (await until_ready(ws2))[1]["last_message_id"] == live["id"]
    again = await sent(pod2, ann, bob, "after clamp")
    assert [m["id"] for m in await messages_from(ws2, 1)] == [again["id"]]


async def test_the_senders_other_sockets_get_their_own_messages(make_client):
    pod1, pod2 = await make_client(), await make_client()
    ann, bob = await register(pod1), await register(pod1)
    phone = await connect(pod1, ann)
    await until_ready(phone)
    message = await sent(pod2, ann, bob, "from my laptop")
    assert [m["id"] for m in await messages_from(phone, 1)] == [message["id"]]


async def test_a_missed_publish_is_replayed_before_the_next_message(client, primary):
    """Pub/sub may drop an event (Redis blip): the next event's predecessor id reveals the gap."""
    ann, bob = await register(client), await register(client)
    ws = await connect(client, bob)
    await until_ready(ws)
    async with primary.transaction():  # committed, never published
        lost = await store.send_message(primary, uid(ann), uid(bob), "lost in transit")
    after = await sent(client, ann, bob, "next")
    assert [m["id"] for m in await messages_from(ws, 2)] == [lost.message["id"], after["id"]]


async def test_a_lost_subscription_resyncs_from_the_database(client, primary, redis_client):
    ann, bob = await register(client), await register(client)
    ws = await connect(client, bob)
    await until_ready(ws)
    async with primary.transaction():
        lost = await store.send_message(primary, uid(ann), uid(bob), "while redis was away")
    # Kill every pub/sub connection: the worker resubscribes, and its sockets replay what they missed.
    await redis_client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    assert [m["id"] for m in await messages_from(ws, 1)] == [lost.message["id"]]
    after = await sent(client, ann, bob, "and live again")
    assert [m["id"] for m in await messages_from(ws, 1)] == [after["id"]]


async def test_browsers_authenticate_with_a_first_frame(client):
    ann, bob = await register(client), await register(client)
    ws = await client.ws_connect("/api/messages/ws")
    await ws.send_str(json.dumps({"type": "auth", "token": bob["access_token"]}))
    await until_ready(ws)
    message = await sent(client, ann, bob, "hi browser")
    assert [m["id"] for m in await messages_from(ws, 1)] == [message["id"]]


@pytest.mark.parametrize("first", ['{"type": "auth", "token": "nope"}', "not json", '{"type": "hello"}'])
async def test_a_bad_first_frame_closes_with_4401(client, first):
    ws = await client.ws_connect("/api/messages/ws")
    await ws.send_str(first)
    msg = await asyncio.wait_for(ws.receive(), 5)
    assert msg.type == WSMsgType.CLOSE and msg.data == 4401


async def test_an_ended_sessions_token_is_refused_in_the_first_frame_as_in_the_header(client):
    """A first frame's token is checked as a header's is (hmb.web.identity.verified)."""
    user = await register(client)
    assert (await client.post("/api/auth/logout", headers=user["headers"])).status == 204
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/api/messages/ws", headers={"Authorization": user["headers"]["Authorization"]})
    assert refused.value.status == 401
    ws = await client.ws_connect("/api/messages/ws")
    await ws.send_str(json.dumps({"type": "auth", "token": user["access_token"]}))
    msg = await asyncio.wait_for(ws.receive(), 5)
    assert msg.type == WSMsgType.CLOSE and msg.data == 4401


async def test_refusals_before_and_after_the_upgrade(client):
    user = await register(client)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/api/messages/ws", headers={"Authorization": "Bearer forged"})
    assert refused.value.status == 401
    response = await client.get("/api/messages/ws", params={"after": "-1"}, headers=user["headers"])
    await assert_error(response, 422, "validation_failed")
    client.app[LIVE].auth_timeout_s = 0.2
    ws = await client.ws_connect("/api/messages/ws")  # says nothing
    msg = await asyncio.wait_for(ws.receive(), 5)
    assert msg.type == WSMsgType.CLOSE and msg.data == 4401


async def test_heartbeat_closes_a_dead_socket(client):
    user = await register(client)
    hub = client.app[LIVE]
    hub.heartbeat_s = 0.2
    # autoping=False: this client never answers the server's pings, like a vanished phone.
    ws = await connect(client, user, autoping=False)
    await until_ready(ws)
    assert uid(user) in hub.listeners and uid(user) in hub.bus.live
    await wait_for(lambda: uid(user) not in hub.listeners, timeout=5)
    await wait_for(lambda: uid(user) not in hub.bus.wanted)
    await ws.close()


async def test_a_draining_pod_closes_its_sockets_with_1012(make_client):
    pod = await make_client()
    user = await register(pod)
    ws = await connect(pod, user)
    await until_ready(ws)
    await pod.server.close()  # what SIGTERM does: shutdown (on_shutdown), then cleanup
    msg = await asyncio.wait_for(ws.receive(), 5)
    assert msg.type == WSMsgType.CLOSE and msg.data == 1012


async def test_openapi_and_docs_cover_the_new_routes(client):
    spec = await (await client.get("/openapi.json")).json()
    expected = {
        ("get", "/api/jobs"), ("post", "/api/jobs"), ("get", "/api/jobs/{id}"), ("patch", "/api/jobs/{id}"),
        ("delete", "/api/jobs/{id}"), ("post", "/api/jobs/{id}/applications"), ("get", "/api/jobs/{id}/applications"),
        ("get", "/api/applications"), ("get", "/api/applications/{id}"), ("patch", "/api/applications/{id}"),
        ("get", "/api/messages/conversations"), ("post", "/api/messages"), ("get", "/api/messages/conversations/{id}"),
        ("post", "/api/messages/conversations/{id}/read"), ("get", "/api/messages/ws"),
    }
    for method, path in expected:
        assert method in spec["paths"].get(path, {}), (method, path)
    ws = spec["paths"]["/api/messages/ws"]["get"]
    assert "101" in ws["responses"] and ws["x-websocket"]["frames"] == {"$ref": "#/components/schemas/LiveFrames"}
    frames = spec["components"]["schemas"]["LiveFrames"]["properties"]
    assert set(frames) == {"client_to_server", "server_to_client"}
    assert {"AuthFrame", "MessageFrame", "ReadyFrame", "Message"} <= set(spec["components"]["schemas"])
    assert "Idempotency-Key" in [p["name"] for p in spec["paths"]["/api/messages"]["post"]["parameters"]]
    page = await (await client.get("/docs")).text()
    for _, path in expected:
        assert path in page
    assert "WebSocket" in page


async def test_open_sockets_are_not_requests_in_flight(client):
    life = client.server.app[LIFECYCLE]
    sockets = []
    for _ in range(3):
        ws = await connect(client, await register(client))
        await until_ready(ws)
        sockets.append(ws)
    assert life.in_flight == 0  # three open sockets hold no admission slot
    for ws in sockets:
        await ws.close()
    assert life.in_flight == 0
