"""`hmb dash` driven by Textual's pilot against the live stack (no mocks, no snapshot plugin)."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import pytest

from hmb.config import OpsSettings
from hmb.ops.dash.app import DashApp
from hmb.ops.dash.dialogs import ConfirmDialog, FlushDialog, HelpScreen
from hmb.store import cache_keys
from tests.conftest import wait_for
from tests.factories import register

FAST = OpsSettings(heartbeat_interval_s=0.1, heartbeat_ttl_s=1.0, heartbeat_forget_s=30.0)
ARTIFACTS = os.environ.get("HMB_ARTIFACTS_DIR")


def screen_text(app: DashApp, directory: Path, name: str) -> str:
    """Save an SVG screenshot and return the text it shows, line by line."""
    path = app.save_screenshot(f"{name}.svg", str(directory))
    if ARTIFACTS:
        Path(ARTIFACTS).mkdir(parents=True, exist_ok=True)
        app.save_screenshot(f"{name}.svg", ARTIFACTS)
    svg = Path(path).read_text()
    rows: dict[float, list[tuple[float, str]]] = {}
    for x, y, text in re.findall(r'<text[^>]*?x="([\d.]+)" y="([\d.]+)"[^>]*>([^<]*)</text>', svg):
        rows.setdefault(float(y), []).append((float(x), html.unescape(text).replace("\xa0", " ")))
    return "\n".join("".join(t for _, t in sorted(parts)) for _, parts in sorted(rows.items()))


@pytest.fixture
async def live_pod(make_client, settings):
    """One in-process worker beating fast, with some traffic behind it."""
    client = await make_client(settings.with_(ops=FAST, pod_id="pod-dash"))
    user = await register(client)
    for _ in range(3):
        await client.get(f"/api/users/{user['user']['id']}")
    return client


async def test_panels_are_populated_at_80x24(live_pod, settings, tmp_path):
    app = DashApp(settings.with_(ops=FAST))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(lambda: app.snapshot and app.snapshot.pods and app.snapshot.cache, timeout=5)
        await pilot.pause()
        text = screen_text(app, tmp_path, "dash-80x24")
    for expected in ("Pods", "pod-dash", "healthy", "Pools", "primary", "replica-1", "in use 1/1",
                     "Cache", "user", "Slow queries", "get_public", "✔ healthy"):
        assert expected in text, f"{expected!r} not on screen:\n{text}"
    assert "waiting for the first snapshot" not in text


async def test_pause_and_refresh_rate(live_pod, settings):
    app = DashApp(settings.with_(ops=FAST), refresh_s=0.25)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(lambda: app.polls >= 2, timeout=5)
        await pilot.press("p")
        assert app.paused and app.sub_title == "PAUSED"
        await wait_for(lambda: not any(w.is_running for w in app.workers), timeout=2)
        frozen = app.polls
        await pilot.press("minus")  # slower: 0.5 s
        assert app.refresh_s == 0.5 and app.sub_title == "PAUSED"
        await pilot.pause(0.6)  # longer than a refresh: nothing may poll while paused
        assert app.polls == frozen
        await pilot.press("p", "plus", "plus")  # resume, then faster twice (floor 0.25 s)
        assert not app.paused and app.refresh_s == 0.25 and app.sub_title == "every 0.25s"
        await wait_for(lambda: app.polls >= frozen + 2, timeout=3)


async def test_flush_asks_first_then_empties_the_namespace(live_pod, settings, redis_client):
    await redis_client.set(cache_keys.user(999).name, b"x")
    app = DashApp(settings.with_(ops=FAST), refresh_s=0.25)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f")
        assert isinstance(app.screen, FlushDialog)
        polls = app.polls
        await wait_for(lambda: app.polls >= polls + 2, timeout=3)  # the panels keep refreshing underneath
        await pilot.press("enter")  # the first namespace: user
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")  # changed my mind
        assert not isinstance(app.screen, ConfirmDialog)
        assert await redis_client.exists(cache_keys.user(999).name)

        await pilot.press("f", "enter")
        assert "user" in str(app.screen.message)
        await pilot.press("y")
        await wait_for(lambda: _no_user_keys(redis_client), timeout=5)
        await pilot.pause()
    assert await redis_client.exists(cache_keys.users_gen().name) in (0, 1)  # other namespaces untouched


async def _no_user_keys(redis_client) -> bool:
    return not await redis_client.keys("hmb:v1:user:*")


async def test_help_opens_and_closes(settings):
    app = DashApp(settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("q")
    assert app.return_code == 0


@pytest.mark.faults
async def test_redis_down_says_so_and_the_app_stays_up(live_pod, settings, launcher, tmp_path):
    app = DashApp(settings.with_(ops=FAST), refresh_s=0.25)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(lambda: app.snapshot and app.snapshot.pods, timeout=5)
        launcher.stop_redis()
        try:
            await wait_for(lambda: app.snapshot and not app.snapshot.redis.up, timeout=5)
            polls = app.polls
            await wait_for(lambda: app.polls > polls, timeout=3)  # still refreshing
            await pilot.pause()
            text = screen_text(app, tmp_path, "dash-redis-down")
        finally:
            launcher.start_redis()
        await wait_for(lambda: app.snapshot.redis.up, timeout=5)
    assert "Redis unavailable" in text
    assert "primary" in text and "replica-1" in text  # the database panels carry on
    assert "✖ redis: down" in text


async def test_wide_terminal_uses_three_columns(live_pod, settings, tmp_path):
    app = DashApp(settings.with_(ops=FAST))
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(lambda: app.snapshot and app.snapshot.pods, timeout=5)
        await pilot.pause()
        assert app.screen.has_class("-wide")
        pods, queries, pools, replicas, cache = (
            app.query_one(f"#{name}") for name in ("pods", "queries", "pools", "replicas", "cache")
        )
        assert pods.region.y == queries.region.y and pods.region.width > 2 * queries.region.width - 4
        assert pools.region.y == replicas.region.y == cache.region.y > pods.region.y
        text = screen_text(app, tmp_path, "dash-160x40")
    assert "p99" in text and "4xx" in text  # the wider pods table
