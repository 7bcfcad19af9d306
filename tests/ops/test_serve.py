"""`hmb serve` under gunicorn: SIGTERM drains — /ready turns 503 at once, in-flight requests all finish."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys

import aiohttp
import asyncpg

from tests.conftest import TEST_ENV, wait_for

USERS = 6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def status_of(session: aiohttp.ClientSession, url: str) -> int | None:
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
            return response.status
    except aiohttp.ClientError:
        return None


async def test_sigterm_drains_without_failing_in_flight_requests(stack, primary):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, **TEST_ENV, **stack.env(), "PORT": str(port), "WEB_CONCURRENCY": "2", "DRAIN_DELAY_S": "4"}
    server = subprocess.Popen([sys.executable, "-m", "hmb", "serve", "--port", str(port), "--workers", "2"], env=env)
    try:
        # force_close: each probe opens a new connection, as a balancer's health check does.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as probe, aiohttp.ClientSession() as api:
            await wait_for(lambda: _is(probe, f"{base}/startup", 200), timeout=30)
            tokens = []
            for i in range(USERS):
                payload = {"email": f"drain{i}@example.com", "password": "long enough password", "name": f"D{i}", "role": "seeker"}
                async with api.post(f"{base}/api/auth/register", json=payload) as response:
                    assert response.status == 201
                    tokens.append((await response.json())["access_token"])

            # Hold every profile update in flight behind a lock we control.
            blocker = await asyncpg.connect(stack.primary_url)
            tx = blocker.transaction()
            await tx.start()
            await blocker.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
            in_flight = [
                asyncio.create_task(_patch(api, base, token, f"bio {i}")) for i, token in enumerate(tokens)
            ]
            await wait_for(lambda: _waiting_on_lock(primary), timeout=10)

            server.send_signal(signal.SIGTERM)
            await wait_for(lambda: _is(probe, f"{base}/ready", 503), timeout=5)
            assert await status_of(probe, f"{base}/health") == 200  # alive while draining

            await tx.rollback()
            await blocker.close()
            results = await asyncio.gather(*in_flight)
            assert results == [200] * USERS
        assert await asyncio.to_thread(server.wait, 30) == 0
        rows = await primary.fetch("SELECT bio FROM users WHERE email LIKE 'drain%' ORDER BY email")
        assert [r["bio"] for r in rows] == [f"bio {i}" for i in range(USERS)]
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


async def _is(session, url, expected) -> bool:
    return await status_of(session, url) == expected


async def _waiting_on_lock(primary) -> bool:
    waiting = await primary.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name LIKE 'hmb:%'"
    )
    return waiting >= USERS


async def _patch(session, base, token, bio) -> int:
    async with session.patch(
        f"{base}/api/users/me", json={"bio": bio}, headers={"Authorization": f"Bearer {token}"}
    ) as response:
        return response.status
