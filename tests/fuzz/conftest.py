"""A real server for the fuzzer: the app on a loopback port, in its own thread and event loop."""

from __future__ import annotations

import asyncio
import threading

import psycopg
import pytest
from aiohttp import web

from hmb.app import create_app
from hmb.config import Settings
from hmb.security import Tokens


class ServerThread:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> str:
        self.thread.start()
        return asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)

    async def _start(self) -> str:
        self.runner = web.AppRunner(await create_app(self.settings))
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def base_url(settings) -> str:
    server = ServerThread(settings)
    url = server.start()
    yield url
    server.stop()


@pytest.fixture
def auth_headers(stack, settings, clean) -> dict[str, str]:
    """A signed-in employer made straight in the database (registration is rate limited per IP)."""
    with psycopg.connect(stack.primary_url, autocommit=True) as conn:
        user_id = conn.execute(
            "INSERT INTO users (email, password_hash, name, role) VALUES ('fuzz@example.com', '!', 'Fuzz', 'employer') RETURNING id"
        ).fetchone()[0]
        session_id = conn.execute("INSERT INTO auth_sessions (user_id) VALUES (%s) RETURNING id", (user_id,)).fetchone()[0]
    return {"Authorization": f"Bearer {Tokens(settings.auth).issue_access(user_id, session_id, 'employer')}"}
