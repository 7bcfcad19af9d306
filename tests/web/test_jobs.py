"""/api/jobs: ranked full-text search with filters, caching that follows edits, and owner-only changes."""

from __future__ import annotations

from tests import factories


async def register(client, role: str = "seeker", name: str | None = None, **extra) -> dict:
    """factories.register, with the read position left to the client's cookie.

    The factory's headers freeze the position of the registration, and the header wins
    over the cookie: after our own later writes that would point reads at a replica
    that may not have them yet. The cookie always holds this client's latest write.
    """
    user = await factories.register(client, role=role, name=name, **extra)
    user["headers"] = {"Authorization": user["headers"]["Authorization"]}
    return user

JOB = {
    "title": "Line cook",
    "company": "Island Resorts",
    "description": "Prepare meals for our guests.",
    "location": "Nassau, New Providence",
    "employment_type": "full_time",
    "remote": False,
    "salary_min": 25000,
    "salary_max": 32000,
}


async def post_job(client, employer, **fields) -> dict:
    response = await client.post("/api/jobs", json={**JOB, **fields}, headers=employer["headers"])
    assert response.status == 201, await response.text()
    return await response.json()


async def search(client, **params) -> tuple[list[int], dict]:
    response = await client.get("/api/jobs", params={k: str(v) for k, v in params.items()})
    assert response.status == 200, await response.text()
    body = await response.json()
    return [item["id"] for item in body["items"]], body


async def assert_error(response, status: int, code: str) -> dict:
    assert response.status == status, await response.text()
    body = await response.json()
    assert body["error"]["code"] == code
    return body["error"]


async def test_title_match_ranks_above_description_match(client):
    employer = await register(client, role="employer")
    in_description = await post_job(
        client, employer, title="Front desk agent", description="Greet guests; some work with our Python scripts."
    )
    in_company = await post_job(client, employer, title="Accountant", company="Python Labs", description="Books.")
    in_title = await post_job(client, employer, title="Python developer", description="Build our booking system.")
    await post_job(client, employer, title="Gardener", description="Keep the grounds.")
    ids, body = await search(client, q="python")
    assert ids == [in_title["id"], in_company["id"], in_description["id"]]
    assert "description" not in body["items"][0] and body["items"][0]["summary"] == "Build our booking system."
    # websearch syntax: quoted phrases and exclusions
    assert (await search(client, q='"python developer"'))[0] == [in_title["id"]]
    assert (await search(client, q="python -developer"))[0] == [in_company["id"], in_description["id"]]


async def test_each_filter_narrows_the_results(client):
    employer = await register(client, role="employer")
    nassau = await post_job(client, employer, location="Nassau", employment_type="full_time", salary_min=20000, salary_max=30000)
    freeport = await post_job(client, employer, location="Freeport, Grand Bahama", employment_type="contract", salary_max=80000)
    remote = await post_job(client, employer, location="Anywhere", remote=True, employment_type="part_time", salary_min=60000, salary_max=None)
    unpaid = await post_job(client, employer, location="nassau", employment_type="internship", salary_min=None, salary_max=None)
    other = await register(client, role="employer")
    theirs = await post_job(client, other, location="Exuma", employment_type="temporary")

    everything = (await search(client))[0]
    assert everything == [theirs["id"], unpaid["id"], remote["id"], freeport["id"], nassau["id"]]
    assert (await search(client, location="NASSAU"))[0] == [unpaid["id"], nassau["id"]]
    assert (await search(client, location="grand bahama"))[0] == [freeport["id"]]
    assert (await search(client, type="contract"))[0] == [freeport["id"]]
    assert (await search(client, type="internship"))[0] == [unpaid["id"]]
    assert (await search(client, remote="true"))[0] == [remote["id"]]
    assert set((await search(client, remote="false"))[0]) == set(everything) - {remote["id"]}
    # salary_min: jobs whose pay can reach it (their top, or their only figure); unknown pay is left out
    assert (await search(client, salary_min=50000))[0] == [remote["id"], freeport["id"]]
    assert (await search(client, salary_min=30000))[0] == [theirs["id"], remote["id"], freeport["id"], nassau["id"]]
    assert (await search(client, employer_id=other["user"]["id"]))[0] == [theirs["id"]]
    assert (await search(client, location="nassau", type="full_time"))[0] == [nassau["id"]]
    assert (await search(client, q="cook", location="exuma"))[0] == [theirs["id"]]
    response = await client.get("/api/jobs", params={"type": "forever"})
    error = await assert_error(response, 422, "validation_failed")
    assert "type" in error["fields"]
    await assert_error(await client.get("/api/jobs", params={"sort": "x"}), 422, "validation_failed")


async def test_an_employers_edit_is_visible_to_the_next_search_on_every_instance(client, make_client):
    other_pod = await make_client()
    employer = await register(client, role="employer")
    job = await post_job(client, employer, title="Dive instructor")
    for c in (client, other_pod):
        assert (await search(c, q="dive"))[0] == [job["id"]]
        repeat = await c.get("/api/jobs", params={"q": "dive"})
        assert repeat.headers["X-Cache"] in ("l1", "l2")
    response = await client.patch(f"/api/jobs/{job['id']}", json={"title": "Boat captain"}, headers=employer["headers"])
    assert response.status == 200 and (await response.json())["title"] == "Boat captain"
    for c in (client, other_pod):
        assert (await search(c, q="dive"))[0] == []
        assert (await search(c, q="boat captain"))[0] == [job["id"]]
    # closing takes it out of search, but the listing stays readable
    response = await other_pod.delete(f"/api/jobs/{job['id']}", headers=employer["headers"])
    assert response.status == 204
    assert (await search(client, q="boat"))[0] == []
    assert (await search(client, q="boat", status="closed"))[0] == [job["id"]]
    detail = await (await client.get(f"/api/jobs/{job['id']}")).json()
    assert detail["status"] == "closed" and detail["closed_at"] is not None
    assert (await client.delete(f"/api/jobs/{job['id']}", headers=employer["headers"])).status == 204


async def test_equivalent_searches_share_one_cache_entry(client):
    employer = await register(client, role="employer")
    await post_job(client, employer, title="Python developer")
    first = await client.get("/api/jobs", params={"q": "Python  Developer", "location": "NASSAU"})
    assert first.headers["X-Cache"] == "miss"
    again = await client.get("/api/jobs", params={"location": " nassau ", "q": "python developer"})
    assert again.headers["X-Cache"] == "l1"
    assert await again.json() == await first.json()


async def test_ranked_pages_are_stable_and_complete(client):
    employer = await register(client, role="employer")
    ids = set()
    for i in range(7):
        # two ranks: the word in the title for some, only in the description for others
        title = "Chef" if i % 2 else f"Cook {i}"
        ids.add((await post_job(client, employer, title=title, description="Chef wanted for a busy kitchen."))["id"])
    seen, cursor, pages = [], None, 0
    while True:
        params = {"q": "chef", "limit": 3, **({"cursor": cursor} if cursor else {})}
        _, body = await search(client, **params)
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 7 and set(seen) == ids
    titled = [i for i in seen if i in {j for j in ids if j % 2 == 0}]
    assert seen[: len(titled)] == sorted(titled, reverse=True)  # title hits first, newest first among equals
    await assert_error(await client.get("/api/jobs", params={"q": "chef", "cursor": "bm9wZQ"}), 400, "bad_request")


async def test_job_detail_is_cached_and_invalidated_on_change(client, make_client):
    other_pod = await make_client()
    employer = await register(client, role="employer")
    created = await client.post("/api/jobs", json=JOB, headers=employer["headers"])
    job = await created.json()
    # The employer's next read goes through another pod, carrying their read position as clients do.
    position = {"X-Read-Position": created.headers["X-Read-Position"]}
    first = await other_pod.get(f"/api/jobs/{job['id']}", headers=position)
    assert first.status == 200 and first.headers["X-Cache"] == "miss"
    assert (await other_pod.get(f"/api/jobs/{job['id']}")).headers["X-Cache"] == "l1"
    patch = {"salary_max": None, "remote": True, "description": "Now remote."}
    response = await client.patch(f"/api/jobs/{job['id']}", json=patch, headers=employer["headers"])
    assert response.status == 200
    position = {"X-Read-Position": response.headers["X-Read-Position"]}
    fresh = await (await other_pod.get(f"/api/jobs/{job['id']}", headers=position)).json()
    assert (fresh["salary_max"], fresh["remote"], fresh["description"]) == (None, True, "Now remote.")
    await assert_error(await client.get("/api/jobs/999999"), 404, "not_found")
    await assert_error(await client.get("/api/jobs/abc"), 404, "not_found")


async def test_only_employers_post_and_only_the_owner_changes(client, primary):
    employer = await register(client, role="employer")
    seeker = await register(client, role="seeker")
    rival = await register(client, role="employer")
    await assert_error(await client.post("/api/jobs", json=JOB), 401, "unauthorized")
    await assert_error(await client.post("/api/jobs", json=JOB, headers=seeker["headers"]), 403, "forbidden")
    job = await post_job(client, employer)
    url = f"/api/jobs/{job['id']}"
    # Listings are public, so someone else's edit is 403 (they can see it), and a missing one 404.
    for who in (seeker, rival):
        await assert_error(await client.patch(url, json={"title": "Mine now"}, headers=who["headers"]), 403, "forbidden")
        await assert_error(await client.delete(url, headers=who["headers"]), 403, "forbidden")
    await assert_error(await client.patch(url, json={"title": "x"}), 401, "unauthorized")
    await assert_error(await client.patch("/api/jobs/999999", json={"title": "x"}, headers=employer["headers"]), 404, "not_found")
    await assert_error(await client.delete("/api/jobs/999999", headers=employer["headers"]), 404, "not_found")
    row = await primary.fetchrow("SELECT title, status FROM jobs WHERE id = $1", job["id"])
    assert tuple(row) == ("Line cook", "open")


async def test_listing_validation(client):
    employer = await register(client, role="employer")
    headers = employer["headers"]
    cases = [
        ({**JOB, "salary_min": 50, "salary_max": 10}, "body"),
        ({**JOB, "employment_type": "gig"}, "employment_type"),
        ({**JOB, "title": "   "}, "title"),
        ({**JOB, "currency": "usd"}, "currency"),
        ({**JOB, "employer_id": 1}, "employer_id"),
        ({k: v for k, v in JOB.items() if k != "description"}, "description"),
    ]
    for payload, field in cases:
        error = await assert_error(await client.post("/api/jobs", json=payload, headers=headers), 422, "validation_failed")
        assert field in error["fields"], (field, error)
    job = await post_job(client, employer)
    url = f"/api/jobs/{job['id']}"
    error = await assert_error(await client.patch(url, json={"salary_min": 40000}, headers=headers), 422, "validation_failed")
    assert "salary_max" in error["fields"]
    await assert_error(await client.patch(url, json={"title": None}, headers=headers), 422, "validation_failed")
    await assert_error(await client.patch(url, json={"status": "archived"}, headers=headers), 422, "validation_failed")
    reopened = await client.patch(url, json={"status": "closed"}, headers=headers)
    assert (await reopened.json())["closed_at"] is not None
    reopened = await client.patch(url, json={"status": "open"}, headers=headers)
    assert (await reopened.json())["status"] == "open" and (await reopened.json())["closed_at"] is None


async def test_create_honours_idempotency_key(client, primary):
    employer = await register(client, role="employer")
    headers = {**employer["headers"], "Idempotency-Key": "job-1"}
    first = await client.post("/api/jobs", json=JOB, headers=headers)
    again = await client.post("/api/jobs", json=JOB, headers=headers)
    assert first.status == again.status == 201
    assert (await first.json())["id"] == (await again.json())["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await primary.fetchval("SELECT count(*) FROM jobs") == 1
