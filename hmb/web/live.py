"""GET /api/messages/ws: the caller's messages, live, whichever pod handled the send.

Per socket: authenticate (the Authorization header, or for browsers a first frame
{"type": "auth", "token": ...}; never a token in the URL), subscribe and wait for
Redis to confirm, replay from Postgres everything after `?after=<message id>`, say
"ready", then forward live events. One writer task per socket keeps a position
(the last message id sent) so replayed and live copies are never sent twice and
always go out in id order; an event whose predecessor this socket has not sent
means something was missed, and the gap is replayed from the database first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import orjson
from aiohttp import WSMsgType, web

from hmb.appkeys import DB, LIVE, REVOKED, SETTINGS, TOKENS
from hmb.errors import HmbError, Invalid
from hmb.security import Principal
from hmb.store import messages
from hmb.store.live import LiveBus
from hmb.store.router import Databases
from hmb.web.http import dumps, parse_query, validate
from hmb.web.identity import optional_caller, verified
from hmb.web.schemas.messages import AuthFrame, LiveQuery, Message, MessageFrame, ReadyFrame

log = logging.getLogger("hmb.live")

REPLAY_PAGE = 200
QUEUE_MAX = 1000  # events waiting for a slow socket; past this it replays from the database instead
RESYNC = b"resync"
# WebSocket close codes: 1012 "service restart" (reconnect elsewhere), 4401 our "unauthorized".
SERVICE_RESTART = 1012
UNAUTHORIZED = 4401
TRY_AGAIN = 1013


class Listener:
    """One open socket: its user and the events waiting to be written to it."""

    def __init__(self, ws: web.WebSocketResponse, principal: Principal):
        self.ws = ws
        self.principal = principal
        self.user_id = principal.user_id
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_MAX)

    def push(self, item: bytes) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # Too far behind to buffer: drop the backlog and replay it from the database.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(RESYNC)


class Hub:
    """This worker's open sockets by user, fed by the Redis subscription."""

    def __init__(self, settings):
        self.heartbeat_s = 25.0  # aiohttp pings this often; no pong within half of it closes the socket
        self.auth_timeout_s = 10.0
        self.subscribe_timeout_s = 5.0
        self.listeners: dict[int, set[Listener]] = {}
        self.bus = LiveBus(settings.redis, self.deliver, self.resync)

    async def join(self, listener: Listener) -> None:
        self.listeners.setdefault(listener.user_id, set()).add(listener)
        await self.bus.subscribe(listener.user_id, self.subscribe_timeout_s)

    async def leave(self, listener: Listener) -> None:
        group = self.listeners.get(listener.user_id)
        if group is None:
            return
        group.discard(listener)
        if not group:
            del self.listeners[listener.user_id]
            await self.bus.unsubscribe(listener.user_id)

    def deliver(self, user_id: int, data: bytes) -> None:
        for listener in self.listeners.get(user_id, ()):
            listener.push(data)

    def resync(self, user_id: int) -> None:
        for listener in self.listeners.get(user_id, ()):
            listener.push(RESYNC)

    async def close_all(self, code: int = SERVICE_RESTART, reason: bytes = b"service restart") -> None:
        sockets = [listener.ws for group in self.listeners.values() for listener in group]
        await asyncio.gather(*(ws.close(code=code, message=reason) for ws in sockets), return_exceptions=True)


async def live_ctx(app: web.Application) -> AsyncIterator[None]:
    """The worker's hub and its Redis subscriber task (cleanup_ctx)."""
    hub = Hub(app[SETTINGS])
    app[LIVE] = hub
    task = asyncio.get_running_loop().create_task(hub.bus.run())
    yield
    await hub.bus.stop(task)


async def close_sockets(app: web.Application) -> None:
    """on_shutdown: a draining worker closes its sockets with 1012 so clients reconnect to another pod."""
    if LIVE in app:
        await app[LIVE].close_all()


async def socket(request: web.Request) -> web.WebSocketResponse:
    query = parse_query(request, LiveQuery)
    principal = optional_caller(request)  # a bad header is a plain 401 before the upgrade
    hub = request.app[LIVE]
    ws = web.WebSocketResponse(heartbeat=hub.heartbeat_s)
    await ws.prepare(request)
    if principal is None:
        principal = await _first_frame_auth(request, ws, hub.auth_timeout_s)
    if principal is not None:
        await _serve(request.app, hub, ws, principal, query.after)
    return ws


async def _serve(app: web.Application, hub: Hub, ws: web.WebSocketResponse, principal: Principal, after: int | None) -> None:
    listener = Listener(ws, principal)
    try:
        await hub.join(listener)
    except TimeoutError:
        await hub.leave(listener)
        await ws.close(code=TRY_AGAIN, message=b"live delivery is unavailable, retry shortly")
        return
    writer = asyncio.get_running_loop().create_task(_write(app, listener, after))
    try:
        await _read(ws, principal)
    finally:
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        await hub.leave(listener)


async def _first_frame_auth(request: web.Request, ws: web.WebSocketResponse, timeout: float) -> Principal | None:
    try:
        async with asyncio.timeout(timeout):
            msg = await ws.receive()
        if msg.type != WSMsgType.TEXT:
            raise Invalid("expected an auth frame")
        frame = validate(AuthFrame, orjson.loads(msg.data))
        return verified(frame.token, request.app[TOKENS], request.app[REVOKED])
    except (TimeoutError, HmbError, orjson.JSONDecodeError):
        await ws.close(code=UNAUTHORIZED, message=b"unauthorized")
        return None


async def _read(ws: web.WebSocketResponse, principal: Principal) -> None:
    """Drain what the client sends (nothing is expected) until it closes or its token expires."""
    try:
        async with asyncio.timeout(max(0.0, principal.expires_at - time.time())):
            async for _ in ws:
                pass
    except TimeoutError:
        await ws.close(code=UNAUTHORIZED, message=b"access token expired")


async def _write(app: web.Application, listener: Listener, after: int | None) -> None:
    """Replay, then forward events, in id order and each once."""
    db: Databases = app[DB]
    ws = listener.ws
    revoked = app[REVOKED]
    user_id = listener.user_id
    try:
        # Subscribed already, so whatever commits from here on also arrives as an event;
        # the primary has everything committed before, which the replay sends.
        head = await db.strong_read(messages.stream_head, user_id)
        position = head if after is None else min(after, head)
        position = await _replay(db, ws, user_id, position, None)
        await _send(ws, ReadyFrame(last_message_id=position))
        while True:
            item = await listener.queue.get()
            if listener.principal.session_id in revoked:
                await ws.close(code=UNAUTHORIZED, message=b"this session has ended")
                return
            if item == RESYNC:
                position = await _replay(db, ws, user_id, position, None)
                continue
            event = orjson.loads(item)
            message = event["message"]
            if message["id"] <= position:
                continue  # already sent (by a replay)
            if event["prev"] > position:
                # Its predecessor has not reached us yet: read the gap from a node that has this commit.
                position = await _replay(db, ws, user_id, position, event["lsn"])
                continue
            await _send(ws, MessageFrame(message=Message.model_validate(message)))
            position = message["id"]
    except (ConnectionError, RuntimeError):
        return  # the socket closed under us
    except Exception:
        log.exception("live socket writer failed", extra={"user_id": user_id})
        await ws.close(code=TRY_AGAIN, message=b"retry shortly")


async def _replay(db: Databases, ws: web.WebSocketResponse, user_id: int, position: int, floor: int | None) -> int:
    while True:
        if floor is None:
            rows = await db.strong_read(messages.stream_after, user_id, position, REPLAY_PAGE)
        else:
            rows = await db.read(messages.stream_after, user_id, position, REPLAY_PAGE, floor=floor)
        for row in rows:
            await _send(ws, MessageFrame(message=Message.model_validate(dict(row))))
            position = row["id"]
        if len(rows) < REPLAY_PAGE:
            return position


async def _send(ws: web.WebSocketResponse, frame: MessageFrame | ReadyFrame) -> None:
    await ws.send_str(dumps(frame.model_dump()).decode())
