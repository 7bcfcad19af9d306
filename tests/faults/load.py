"""A mixed read/write load through the balancer that records every request, then audits the writes."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
import asyncpg

# Past this a request "hangs": the service bounds itself well below it (acquire 2 s, statements 5 s).
REQUEST_TIMEOUT_S = 10.0
HUNG = -1  # status of a request that hit REQUEST_TIMEOUT_S
FAILED = 0  # status of a request that got no HTTP answer at all (connection reset, refused)


@dataclass
class Record:
    op: str
    status: int
    started: float
    elapsed: float
    error: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Write:
    user: int
    key: str  # Idempotency-Key, and the post's body, so the database can be asked about it
    status: int
    post_id: int | None = None


@dataclass
class Audit:
    acked: int = 0
    lost: int = 0
    errored: int = 0
    applied_anyway: int = 0  # errored, yet committed in full (the answer was lost): a retry replays it
    half: int = 0
    duplicates: int = 0
    retried_ok: int = 0


@dataclass
class Load:
    """`concurrency` virtual users, each looping over a weighted mix of API calls through `base`."""

    base: str
    users: list[dict]
    concurrency: int = 6
    records: list[Record] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    stale_reads: int = 0  # an acknowledged post its own author could not read back at once
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _seq: itertools.count = field(default_factory=itertools.count)

    # -- running --
    async def __aenter__(self) -> Load:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S))
        self._tasks = [asyncio.create_task(self._user(i)) for i in range(self.concurrency)]
        return self

    async def __aexit__(self, *exc) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        await self._session.close()

    async def _user(self, i: int) -> None:
        rng = random.Random(i)
        user = self.users[i % len(self.users)]
        headers = dict(user["headers"])
        mine: list[int] = []
        while not self._stop.is_set():
            roll = rng.random()
            if roll < 0.35:
                post_id = await self._post(user, headers)
                if post_id is not None:
                    mine.append(post_id)
                    # Read-your-writes through any pod and any replica: the author sees it at once.
                    status, _ = await self._call("GET", f"/api/posts/{post_id}", headers, "read_own")
                    if status == 404:
                        self.stale_reads += 1
            elif roll < 0.55:
                await self._call("GET", "/api/posts?limit=10", headers, "list")
            elif roll < 0.75:
                await self._call("GET", "/api/posts/feed?limit=10", headers, "feed")
            elif roll < 0.9 and mine:
                await self._call("GET", f"/api/posts/{rng.choice(mine)}", headers, "get")
            else:
                other = rng.choice(self.users)["id"]
                await self._call("GET", f"/api/users/{other}", headers, "profile")

    async def _post(self, user: dict, headers: dict) -> int | None:
        key = f"fault-{next(self._seq)}-{uuid.uuid4().hex[:12]}"
        status, body = await self._call(
            "POST", "/api/posts", headers, "write", json={"body": key}, extra={"Idempotency-Key": key}
        )
        post_id = body.get("id") if 200 <= status < 300 and isinstance(body, dict) else None
        self.writes.append(Write(user["id"], key, status, post_id))
        return post_id

    async def _call(
        self, method: str, path: str, headers: dict, op: str, json=None, extra: dict | None = None
    ) -> tuple[int, object]:
        """One request; `headers` is the user's own and keeps the read position a response hands back."""
        started = time.monotonic()
        body: object = None
        error = ""
        try:
            async with self._session.request(method, self.base + path, headers={**headers, **(extra or {})}, json=json) as resp:
                status = resp.status
                if resp.content_type == "application/json":
                    body = await resp.json()
                else:
                    await resp.read()
                if "X-Read-Position" in resp.headers:
                    headers["X-Read-Position"] = resp.headers["X-Read-Position"]
        except asyncio.TimeoutError:
            status, error = HUNG, "timeout"
        except aiohttp.ClientError as exc:
            status, error = FAILED, type(exc).__name__
        self.records.append(Record(op, status, started, time.monotonic() - started, error))
        return status, body

    # -- figures --
    def window(self, start: float, end: float) -> list[Record]:
        return [r for r in self.records if start <= r.started <= end]

    async def wait_ok_after(self, moment: float, n: int = 20, timeout: float = 30) -> float:
        """Until n requests started after `moment` succeeded in a row; returns when (monotonic)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            later = [r for r in self.records if r.started >= moment]
            if len(later) >= n and all(r.ok for r in later[-n:]):
                return time.monotonic()
            await asyncio.sleep(0.05)
        raise AssertionError(f"the service did not recover within {timeout}s: "
                             f"{Counter(r.status for r in self.records if r.started >= moment)}")

    async def wait_requests(self, n: int, timeout: float = 15) -> None:
        """Until n more requests have finished (load is flowing)."""
        target = len(self.records) + n
        deadline = time.monotonic() + timeout
        while len(self.records) < target:
            assert time.monotonic() < deadline, "the load is not flowing"
            await asyncio.sleep(0.02)

    # -- the audit --
    async def audit(self, conn: asyncpg.Connection) -> Audit:
        """Every acknowledged write is in the database; every errored one is all there or not at all.

        An errored create may still have committed (the answer was lost): then its idempotency
        record must be complete, and a retry with the same key must answer the same post.
        """
        result = Audit()
        acked = [w for w in self.writes if w.post_id is not None]
        errored = [w for w in self.writes if w.post_id is None]
        result.acked, result.errored = len(acked), len(errored)
        rows = await conn.fetch(
            "SELECT body, array_agg(id) AS ids FROM posts WHERE body = ANY($1::text[]) GROUP BY body",
            [w.key for w in self.writes],
        )
        posts = {r["body"]: list(r["ids"]) for r in rows}
        keys = {
            (r["user_id"], r["key"]): r
            for r in await conn.fetch(
                "SELECT user_id, key, status, body FROM idempotency_keys WHERE key = ANY($1::text[])",
                [w.key for w in self.writes],
            )
        }
        result.duplicates = sum(1 for ids in posts.values() if len(ids) > 1)
        result.lost = sum(1 for w in acked if posts.get(w.key) != [w.post_id])
        for w in errored:
            ids, record = posts.get(w.key), keys.get((w.user, w.key))
            if ids is None and record is None:
                continue
            complete = ids is not None and record is not None and record["status"] == 201 and str(ids[0]).encode() in bytes(record["body"])
            result.applied_anyway += complete
            result.half += not complete
        result.retried_ok = await self._retry(errored, posts)
        return result

    async def _retry(self, errored: list[Write], posts: dict[str, list[int]]) -> int:
        """Retry every errored write with its key: it succeeds, and a committed one replays its post."""
        by_id = {u["id"]: u for u in self.users}
        ok = 0
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as session:
            for w in errored:
                headers = {**by_id[w.user]["headers"], "Idempotency-Key": w.key}
                async with session.post(f"{self.base}/api/posts", json={"body": w.key}, headers=headers) as resp:
                    body = await resp.json()
                expected = posts.get(w.key, [body.get("id")])[0]
                ok += resp.status == 201 and body.get("id") == expected
        return ok


def status_counts(records: list[Record]) -> Counter:
    names = {HUNG: "hung", FAILED: "reset"}
    return Counter(names.get(r.status, r.status) for r in records)


def p99_ms(records: list[Record]) -> float:
    if not records:
        return 0.0
    times = sorted(r.elapsed for r in records)
    return times[min(len(times) - 1, int(len(times) * 0.99))] * 1000
