"""Public reads (hmb.web.cached.PublicRead): the core answers a fresh L1 copy before the handler,
and that answer must be the one the handler gives, for every caller."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hmb.appkeys import CACHE
from tests.web.test_jobs import assert_error, post_job, register

# Set per request, or by which level answered: everything else must be the same.
PER_REQUEST = {"X-Cache", "X-Request-ID", "X-Process-Time", "X-DB-Route", "Date", "Content-Length"}


def fixed_headers(response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k not in PER_REQUEST}


@pytest.mark.parametrize("kind", ["job", "trending"])
async def test_an_l1_hit_answered_by_the_core_is_the_handlers_answer(client, kind):
    employer = await register(client, role="employer")
    if kind == "job":
        path, namespace = f"/api/jobs/{(await post_job(client, employer))['id']}", "job"
    else:
        path, namespace = "/api/posts/trending?limit=7", "trending"
    hits = lambda: client.app[CACHE].counts[(namespace, "l1", "hit")]  # noqa: E731
    loaded = await client.get(path)
    before = hits()
    hit = await client.get(path)
    signed_in = await client.get(path, headers=employer["headers"])
    assert [r.status for r in (loaded, hit, signed_in)] == [200] * 3
    assert [r.headers["X-Cache"] for r in (loaded, hit, signed_in)] == ["miss", "l1", "l1"]
    assert await hit.read() == await loaded.read() == await signed_in.read()
    assert fixed_headers(hit) == fixed_headers(loaded)
    # The core's own headers still apply: an authenticated answer is never stored by a shared cache.
    assert "Cache-Control" not in hit.headers and signed_in.headers["Cache-Control"] == "no-store"
    assert hits() == before + 2  # the dashboard's hit rate counts them


async def test_a_public_reads_key_is_checked_before_any_cache(client):
    """The key is made from the path first: a malformed id is a 404 in the envelope, whatever is cached."""
    await assert_error(await client.get("/api/jobs/abc"), 404, "not_found")
    await assert_error(await client.get("/api/jobs/1234567890123456789"), 404, "not_found")
    await assert_error(await client.get("/api/posts/trending?limit=0"), 422, "validation_failed")
    await assert_error(await client.get("/api/posts/trending?limit=abc"), 422, "validation_failed")


async def test_a_hit_answered_by_the_core_gets_the_cors_headers(make_client, settings):
    origin = "https://app.example.com"
    client = await make_client(settings.with_(web=replace(settings.web, cors_origins=(origin,))))
    employer = await register(client, role="employer")
    path = f"/api/jobs/{(await post_job(client, employer, title='Chef'))['id']}"
    await client.get(path)
    hit = await client.get(path, headers={"Origin": origin})
    assert hit.headers["X-Cache"] == "l1" and hit.headers["Access-Control-Allow-Origin"] == origin
    assert "Access-Control-Allow-Origin" not in (await client.get(path, headers={"Origin": "https://evil.example"})).headers
