"""Live message fan-out between pods: Redis pub/sub, one channel per user.

A send publishes, after its commit, to the recipient's and the sender's channels.
Each worker holds one pub/sub connection subscribed to the channels of the users
with a socket on it, so a message costs two PUBLISHes whatever the number of pods.

Pub/sub forgets whatever it could not deliver, so nothing here is the source of
truth: each event carries the previous message id of that user's stream, and a
listener that sees a gap (or is told to resync after a lost subscription) replays
from Postgres. Redis makes delivery fast; the database makes it complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable

import orjson
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from hmb.config import RedisSettings
from hmb.store import cache_keys
from hmb.store.messages import Sent
from hmb.store.redis import Redis, RedisDown, Script, make_client

log = logging.getLogger("hmb.live")

_PREFIX = cache_keys.live_channel(0)[:-1].encode()
_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


# Two PUBLISHes as one command (a pipeline is a command each). The channels are passed as KEYS
# only to keep them apart from the events; they name no keys.
_PUBLISH_BOTH = Script("""
redis.call('PUBLISH', KEYS[1], ARGV[1])
redis.call('PUBLISH', KEYS[2], ARGV[2])
""")


def event(message: dict, prev: int, lsn: int) -> bytes:
    """What a listener receives: the message, its stream's previous id, and the commit's WAL position."""
    return orjson.dumps({"message": message, "prev": prev, "lsn": lsn}, option=_OPTIONS)


async def publish(redis: Redis, sent: Sent, lsn: int) -> None:
    """Tell both members' pods about a committed message. Never raises: the database has it anyway."""
    message = dict(sent.message)
    recipient, sender = message["recipient_id"], message["sender_id"]

    channels = [cache_keys.live_channel(recipient), cache_keys.live_channel(sender)]
    events = [event(message, sent.recipient_prev, lsn), event(message, sent.sender_prev, lsn)]
    try:
        await redis.run_script(_PUBLISH_BOTH, channels, *events)
    except RedisDown as exc:
        # Listeners notice the gap at the next message, or replay when their subscription returns.
        log.warning("live publish failed", extra={"message_id": message["id"], "error": str(exc)})


class LiveBus:
    """This worker's subscription to the channels of users with a local socket.

    `deliver(user_id, data)` gets each event; `resync(user_id)` is called when the
    user's subscription came back after a loss (events may have been missed).
    Subscribing waits for Redis's confirmation: from then on nothing published for
    the user can pass us by, which is what lets a socket subscribe first and replay
    from the database second.
    """

    def __init__(
        self,
        settings: RedisSettings,
        deliver: Callable[[int, bytes], None],
        resync: Callable[[int], None],
    ):
        self.settings = settings
        self._deliver = deliver
        self._resync = resync
        # No hidden reconnects: a lost connection surfaces here and we resubscribe (and resync) ourselves.
        self._client = make_client(settings, socket_timeout=None, retry=Retry(NoBackoff(), 0))
        self._control = cache_keys.live_control_channel(uuid.uuid4().hex)
        self._pubsub = None
        self._send_lock = asyncio.Lock()
        self.wanted: set[int] = set()  # users with a local socket
        self.live: set[int] = set()  # ...whose subscription Redis has confirmed
        self._pending: dict[int, int] = {}  # (un)subscribe commands sent, not yet confirmed
        self._waiters: dict[int, list[asyncio.Future[None]]] = {}
        self._stopping = False

    async def subscribe(self, user_id: int, timeout: float) -> None:
        """Return once Redis has confirmed the user's channel (at once if it already had)."""
        if user_id in self.live and not self._pending.get(user_id):
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(user_id, []).append(waiter)
        if user_id not in self.wanted:
            self.wanted.add(user_id)
            await self._send("subscribe", user_id)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        finally:
            waiters = self._waiters.get(user_id, [])
            if waiter in waiters:
                waiters.remove(waiter)

    async def unsubscribe(self, user_id: int) -> None:
        self.wanted.discard(user_id)
        self.live.discard(user_id)
        await self._send("unsubscribe", user_id)

    async def _send(self, command: str, user_id: int) -> None:
        # State changes happen before the first await, so callers see them at once;
        # the lock keeps commands on the wire in the order they were decided.
        if self._pubsub is None:
            return  # not connected: run() subscribes everything wanted when it is
        self._pending[user_id] = self._pending.get(user_id, 0) + 1
        async with self._send_lock:
            pubsub = self._pubsub
            if pubsub is None:
                return
            try:
                await getattr(pubsub, command)(cache_keys.live_channel(user_id))
            except Exception as exc:  # noqa: BLE001 - run() notices the broken connection and recovers
                log.info("live %s failed", command, extra={"user_id": user_id, "error": str(exc)})

    async def run(self) -> None:
        """Hold the subscription for the worker's life, reconnecting with backoff; stop() ends it."""
        backoff = 0.1
        try:
            while not self._stopping:
                try:
                    async with self._client.pubsub() as pubsub:
                        await self._listen(pubsub)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - any failure means resubscribe
                    if self._stopping:
                        return  # a cancellation a library turned into an error
                    log.warning("live subscriber lost Redis, retrying", extra={"error": str(exc)})
                finally:
                    self._pubsub = None
                    self._pending.clear()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
        finally:
            await self._client.aclose()

    async def stop(self, task: asyncio.Task) -> None:
        """End run() (its task): the flag holds even if a library swallows the cancellation."""
        self._stopping = True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _listen(self, pubsub) -> None:
        async with self._send_lock:
            # Publish the connection and what it owes in one step: a _send() from now on
            # queues behind this subscribe and counts its own confirmation.
            users = list(self.wanted)
            self._pending = {user_id: 1 for user_id in users}
            self._pubsub = pubsub
            await pubsub.subscribe(self._control, *(cache_keys.live_channel(u) for u in users))
        last_ping = time.monotonic()
        while not self._stopping:
            message = await pubsub.get_message(timeout=1.0)
            if message is not None:
                self._handle(message)
            elif time.monotonic() - last_ping > 5:
                # A hung Redis never closes the socket: ping to find out.
                async with asyncio.timeout(2 * self.settings.timeout_s + 1):
                    await pubsub.ping()
                last_ping = time.monotonic()

    def _handle(self, message: dict) -> None:
        channel = message.get("channel") or b""
        if not channel.startswith(_PREFIX):
            return
        user_id = int(channel[len(_PREFIX) :])
        kind = message["type"]
        if kind == "message":
            self._deliver(user_id, message["data"])
            return
        if kind not in ("subscribe", "unsubscribe"):
            return
        pending = self._pending.get(user_id, 0) - 1
        if pending > 0:
            self._pending[user_id] = pending
            return
        self._pending.pop(user_id, None)
        if kind != "subscribe" or user_id not in self.wanted:
            return
        if user_id in self.live:
            self._resync(user_id)  # subscribed again after a loss: events may have gone by
        self.live.add(user_id)
        for waiter in self._waiters.pop(user_id, []):
            if not waiter.done():
                waiter.set_result(None)
