"""Every cache key, spelled by hand and versioned, with its namespace's TTL.

Keys are the only place cache strings exist: the code that invalidates an entry
calls the same function that named it. Groups of keys (all of a user's feed pages)
carry a generation number; bumping it orphans the whole group in one INCR.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import NamedTuple

PREFIX = "hmb:v1"
INVALIDATION_CHANNEL = f"{PREFIX}:invalidate"

# Seconds an entry is fresh, per namespace (the seed's: trending 600, feed 300).
TTL = {
    "user": 300,
    "users": 30,
    "feed": 300,
    "posts": 30,
    "post": 300,
    "trending": 600,
    "job": 300,
    "jobs": 60,
    "gen": 3600,
}
# How long a worker trusts its copy of a feed generation: feeds are bumped without an L1
# broadcast, so this bounds how late a followee's post reaches a follower on another worker.
FEED_GEN_LOCAL_S = 1.0


class Key(NamedTuple):
    """A cache key: its full name and its namespace (which sets its TTL and its counters).

    A NamedTuple, not a frozen dataclass: reads make one or two per request, and a frozen
    dataclass's __init__ costs ~0.4 µs more. The functions below build it with `_key`.
    """

    name: str
    namespace: str

    @property
    def ttl(self) -> int:
        return TTL[self.namespace]

    def __str__(self) -> str:
        return self.name


# Key((name, namespace)) without the NamedTuple's generated __new__, a Python call: 0.11 µs, not 0.28.
_key = functools.partial(tuple.__new__, Key)


def user(user_id: int) -> Key:
    """A public profile (the encoded JSON body)."""
    return _key((f"{PREFIX}:user:{user_id}", "user"))


def users_list(gen: int, cursor: str, limit: int) -> Key:
    """A page of the public directory; `gen` moves when any profile changes."""
    return _key((f"{PREFIX}:users:g{gen}:{cursor or '-'}:{limit}", "users"))


def users_gen() -> Key:
    return _key((f"{PREFIX}:gen:users", "gen"))


def feed(user_id: int, gen: int, cursor: str, limit: int) -> Key:
    return _key((f"{PREFIX}:feed:{user_id}:g{gen}:{cursor or '-'}:{limit}", "feed"))


def feed_gen(user_id: int) -> Key:
    return _key((f"{PREFIX}:gen:feed:{user_id}", "gen"))


_FEED_GEN = feed_gen(0).name[:-1]


def feed_gen_names(user_ids: Iterable[int]) -> list[str]:
    """The names of many users' feed_gen (a post's followers), at a tenth of the cost of the Keys."""
    return [f"{_FEED_GEN}{user_id}" for user_id in user_ids]


def posts_list(gen: int, cursor: str, limit: int) -> Key:
    return _key((f"{PREFIX}:posts:g{gen}:{cursor or '-'}:{limit}", "posts"))


def posts_gen() -> Key:
    return _key((f"{PREFIX}:gen:posts", "gen"))


def post(post_id: int) -> Key:
    """One post (the encoded JSON body); deleted when it is edited, liked or removed."""
    return _key((f"{PREFIX}:post:{post_id}", "post"))


def trending(limit: int) -> Key:
    return _key((f"{PREFIX}:trending:{limit}", "trending"))


def job(job_id: int) -> Key:
    return _key((f"{PREFIX}:job:{job_id}", "job"))


def jobs_search(gen: int, normalised_query: str) -> Key:
    return _key((f"{PREFIX}:jobs:g{gen}:{normalised_query}", "jobs"))


def jobs_gen() -> Key:
    return _key((f"{PREFIX}:gen:jobs", "gen"))


def lock(key: Key) -> str:
    """The refresh lock that lets one request recompute a stale hot key."""
    return f"{PREFIX}:lock:{key.name}"



def rate_limit(scope: str, subject: str, window: int) -> str:
    """A fixed-window counter, e.g. hmb:v1:rl:login-ip:203.0.113.9:29381234."""
    return f"{PREFIX}:rl:{scope}:{subject}:{window}"


def revoked_session(session_id: int) -> str:
    """Broadcast on the invalidation channel when a session is revoked."""
    return f"{PREFIX}:revoked:{session_id}"


# --- operator data (not cache entries: `hmb cache flush` never touches these) ---

HEARTBEAT_INDEX = f"{PREFIX}:hb:index"  # sorted set: member "pod|pid", score = unix time of its last beat


def heartbeat(pod: str, pid: int) -> str:
    """One worker's latest snapshot (JSON, with a TTL), e.g. hmb:v1:hb:web-7f9c:4121."""
    return f"{PREFIX}:hb:{pod}:{pid}"


def heartbeat_member(pod: str, pid: int) -> str:
    return f"{pod}|{pid}"


def namespace_pattern(namespace: str) -> str:
    """The SCAN pattern of every key in a cache namespace (operator tools only, never a request path)."""
    return f"{PREFIX}:{namespace}:*"


def live_channel(user_id: int) -> str:
    """The Redis pub/sub channel carrying a user's new messages to whichever pod holds their sockets."""
    return f"{PREFIX}:live:{user_id}"


def live_control_channel(worker: str) -> str:
    """Every worker's subscriber also holds its own quiet channel, so it is never without a subscription."""
    return f"{PREFIX}:live-worker:{worker}"
