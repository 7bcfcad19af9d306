"""Shared fixtures: one real stack for the session (primary, streaming replica, Redis), clean data per test."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from hmb.app import create_app
from hmb.appkeys import TOKENS
from hmb.config import Settings
from hmb.ops import migrate
from hmb.ops.stack import Stack, StackInfo
from tests.s3 import moto_endpoint, storage_settings  # noqa: F401 - fixtures

TEST_ENV = {
    "ENVIRONMENT": "test",
    "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
    "WEB_CONCURRENCY": "1",
    "MAX_PODS": "4",
    "DB_POOL_MAX": "8",
    # Fast probes and a low lag threshold so router tests see changes within a second.
    "REPLICA_PROBE_INTERVAL_S": "0.1",
    "REPLICA_MAX_LAG_S": "1.0",
    "LOG_LEVEL": "WARNING",
    # Uploads of the default (local) backend go to a scratch directory, never ./var.
    "STORAGE_DIR": os.path.join(tempfile.gettempdir(), f"hmb-test-files-{os.getpid()}"),
}


@pytest.fixture(scope="session")
def stack() -> StackInfo:
    """The session's stack; HMB_TEST_STACK_DIR reuses one across runs while developing."""
    keep = os.environ.get("HMB_TEST_STACK_DIR")
    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="hmb-test-"))
    launcher = Stack(root)
    info = launcher.up()
    migrate.apply(info.primary_url)
    launcher.wait_replica_caught_up(30)
    yield info
    if not keep:
        launcher.destroy()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def scratch_files():
    """Uploads of the local backend land in a scratch directory, removed after the run."""
    yield
    shutil.rmtree(TEST_ENV["STORAGE_DIR"], ignore_errors=True)


@pytest.fixture(scope="session")
def launcher(stack: StackInfo) -> Stack:
    """The stack's controls, for tests that stop, pause or kill its parts."""
    return Stack(stack.dir)


@pytest.fixture(scope="session")
def settings(stack: StackInfo) -> Settings:
    return Settings.from_env({**TEST_ENV, **stack.env()})


@pytest.fixture
async def primary(stack: StackInfo) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the primary, to arrange and check data behind the API."""
    conn = await asyncpg.connect(stack.primary_url)
    yield conn
    await conn.close()


@pytest.fixture
async def redis_client(stack: StackInfo) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(stack.redis_url)
    yield client
    await client.aclose()


@pytest.fixture(autouse=True)
async def clean(request) -> None:
    """Every test that uses the stack starts from empty tables and an empty Redis."""
    if "stack" not in request.fixturenames:
        return
    stack: StackInfo = request.getfixturevalue("stack")
    conn = await asyncpg.connect(stack.primary_url)
    try:
        names = [
            r["tablename"]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE '%yoyo%'"
            )
        ]
        if names:
            await conn.execute(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
    client = aioredis.Redis.from_url(stack.redis_url)
    try:
        await client.flushdb()
    except Exception:  # noqa: BLE001 - a test may have left Redis stopped; it restarts it itself
        pass
    finally:
        await client.aclose()


@pytest.fixture
async def make_client(settings: Settings) -> AsyncIterator[Callable]:
    """Start app instances (each a separate "worker") and return test clients for them."""
    clients: list[TestClient] = []

    async def start(custom: Settings | None = None) -> TestClient:
        client = TestClient(TestServer(await create_app(custom or settings)))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


@pytest.fixture
async def client(make_client) -> TestClient:
    return await make_client()


RATE_WINDOW_MARGIN_S = 5.0


@pytest.fixture
async def one_rate_window() -> None:
    """For a test that counts requests up to a rate limit: it starts with at least RATE_WINDOW_MARGIN_S
    left in the limits' fixed minute, so its requests are all counted in one window (a run that
    crossed the minute would find the count reset and no 429: waiting out the minute's last
    seconds is waiting for that condition)."""
    left = 60 - time.time() % 60
    if left < RATE_WINDOW_MARGIN_S:
        await asyncio.sleep(left + 0.05)


async def wait_for(predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.02) -> None:
    """Poll a condition until it holds (never a fixed sleep)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


@pytest.fixture
def make_users(primary):
    """Many accounts at once, straight into the database, each with a signed-in session
    (no password hashing, no registration rate limit): for tests that need hundreds of users."""
    async def make(client: TestClient, n: int, role: str = "seeker") -> list[dict]:
        prefix = f"bulk{next(_bulk_batches)}"
        rows = await primary.fetch(
            """
            WITH u AS (
                INSERT INTO users (email, password_hash, name, role)
                SELECT $1 || '-' || g || '@example.com', '!', $1 || ' ' || g, $2 FROM generate_series(1, $3) g
                RETURNING id, role
            )
            INSERT INTO auth_sessions (user_id) SELECT id FROM u RETURNING id AS session_id, user_id
            """,
            prefix,
            role,
            n,
        )
        tokens = client.app[TOKENS]
        return [
            {
                "id": r["user_id"],
                "headers": {"Authorization": f"Bearer {tokens.issue_access(r['user_id'], r['session_id'], role)}"},
            }
            for r in sorted(rows, key=lambda r: r["user_id"])
        ]

    return make


_bulk_batches = itertools.count(1)
