"""Applications: once per seeker per job, résumés the applicant owns, and the state machine."""

from __future__ import annotations

import hashlib
import itertools

from tests.web.test_jobs import JOB, assert_error, post_job, register

STATES = ("submitted", "reviewing", "interview", "offered", "rejected", "withdrawn")
# The employer's path through the states, and the applicant's way out.
EMPLOYER = {("submitted", "reviewing"), ("reviewing", "interview"), ("interview", "offered")} | {
    (s, "rejected") for s in ("submitted", "reviewing", "interview")
}
APPLICANT = {(s, "withdrawn") for s in ("submitted", "reviewing", "interview")}
PATH_TO = {
    "submitted": [],
    "reviewing": ["reviewing"],
    "interview": ["reviewing", "interview"],
    "offered": ["reviewing", "interview", "offered"],
    "rejected": ["reviewing", "rejected"],
    "withdrawn": ["withdrawn"],
}
_files = itertools.count(1)


async def resume_for(primary, user: dict) -> int:
    """A résumé row owned by the user, as the files API stores it (the bytes don't matter here)."""
    n = next(_files)
    return await primary.fetchval(
        """
        INSERT INTO files (owner_id, purpose, content_type, size_bytes, storage_key, sha256)
        VALUES ($1, 'resume', 'application/pdf', 100, $2, $3) RETURNING id
        """,
        user["user"]["id"],
        f"test/resume-{n}.pdf",
        hashlib.sha256(str(n).encode()).digest(),
    )


async def apply(client, primary, seeker: dict, job: dict, **extra):
    body = {"cover_letter": "I would love to.", "resume_file_id": await resume_for(primary, seeker), **extra}
    return await client.post(f"/api/jobs/{job['id']}/applications", json=body, headers=seeker["headers"])


async def move(client, who: dict, application_id: int, status: str):
    return await client.patch(f"/api/applications/{application_id}", json={"status": status}, headers=who["headers"])


async def test_the_full_state_machine(client, primary):
    employer = await register(client, role="employer")
    job = await post_job(client, employer)
    hired, turned_down, gone = [await register(client, name=n) for n in ("Hired", "Turned Down", "Gone")]
    ids = {}
    for seeker in (hired, turned_down, gone):
        response = await apply(client, primary, seeker, job)
        assert response.status == 201, await response.text()
        body = await response.json()
        assert body["status"] == "submitted"
        assert body["job"] == {"id": job["id"], "title": "Line cook", "company": "Island Resorts", "status": "open"}
        assert body["applicant"]["id"] == seeker["user"]["id"]
        ids[seeker["user"]["name"]] = body["id"]
    for status in ("reviewing", "interview", "offered"):
        response = await move(client, employer, ids["Hired"], status)
        assert response.status == 200 and (await response.json())["status"] == status
    for status in ("reviewing", "interview", "rejected"):
        assert (await move(client, employer, ids["Turned Down"], status)).status == 200
    for status in ("reviewing", "interview"):
        assert (await move(client, employer, ids["Gone"], status)).status == 200
    withdrawn = await move(client, gone, ids["Gone"], "withdrawn")
    assert withdrawn.status == 200 and (await withdrawn.json())["status"] == "withdrawn"
    # Each side sees it the same way.
    for who in (employer, gone):
        response = await client.get(f"/api/applications/{ids['Gone']}", headers=who["headers"])
        assert (await response.json())["status"] == "withdrawn"


async def test_every_illegal_transition_is_rejected_and_changes_nothing(client, primary):
    employer = await register(client, role="employer")
    job = await post_job(client, employer)
    seekers, ids = {}, {}
    for state in STATES:
        seeker = await register(client)
        response = await apply(client, primary, seeker, job)
        ids[state], seekers[state] = (await response.json())["id"], seeker
        for step in PATH_TO[state]:
            who = seeker if step == "withdrawn" else employer
            assert (await move(client, who, ids[state], step)).status == 200
    checked = 0
    for state, target in itertools.product(STATES, STATES):
        for who, allowed, others in ((employer, EMPLOYER, APPLICANT), (seekers[state], APPLICANT, EMPLOYER)):
            if (state, target) in allowed:
                continue
            response = await move(client, who, ids[state], target)
            if (state, target) in others:
                await assert_error(response, 403, "forbidden")  # the other party's move
            else:
                error = await assert_error(response, 422, "validation_failed")
                assert "status" in error["fields"]
            checked += 1
    assert checked == 2 * 36 - len(EMPLOYER) - len(APPLICANT)
    rows = await primary.fetch("SELECT id, status FROM applications")
    assert {r["id"]: r["status"] for r in rows} == {ids[s]: s for s in STATES}
    await assert_error(await move(client, employer, ids["submitted"], "hired"), 422, "validation_failed")


async def test_one_application_per_job_and_only_to_open_jobs(client, primary):
    employer = await register(client, role="employer")
    seeker = await register(client)
    job = await post_job(client, employer)
    assert (await apply(client, primary, seeker, job)).status == 201
    await assert_error(await apply(client, primary, seeker, job), 409, "conflict")
    closed = await post_job(client, employer, title="Closed one")
    assert (await client.delete(f"/api/jobs/{closed['id']}", headers=employer["headers"])).status == 204
    error = await assert_error(await apply(client, primary, seeker, closed), 422, "validation_failed")
    assert "job_id" in error["fields"]
    await assert_error(await apply(client, primary, seeker, {"id": 999999}), 404, "not_found")
    # employers don't apply
    await assert_error(await apply(client, primary, employer, job), 403, "forbidden")
    assert await primary.fetchval("SELECT count(*) FROM applications") == 1


async def test_the_resume_must_be_one_the_applicant_uploaded(client, primary):
    employer = await register(client, role="employer")
    seeker, other = await register(client), await register(client)
    job = await post_job(client, employer)
    someone_elses = await resume_for(primary, other)
    avatar = await primary.fetchval(
        """
        INSERT INTO files (owner_id, purpose, content_type, size_bytes, storage_key, sha256)
        VALUES ($1, 'avatar', 'image/png', 10, 'test/a.png', '\\x00') RETURNING id
        """,
        seeker["user"]["id"],
    )
    for file_id in (someone_elses, avatar, 999999):
        response = await apply(client, primary, seeker, job, resume_file_id=file_id)
        error = await assert_error(response, 422, "validation_failed")
        assert "resume_file_id" in error["fields"]
    error = await assert_error(
        await client.post(f"/api/jobs/{job['id']}/applications", json={"cover_letter": "hi"}, headers=seeker["headers"]),
        422,
        "validation_failed",
    )
    assert "resume_file_id" in error["fields"]
    assert await primary.fetchval("SELECT count(*) FROM applications") == 0


async def test_applications_are_private_to_applicant_and_job_owner(client, primary):
    employer, rival = await register(client, role="employer"), await register(client, role="employer")
    seeker, stranger = await register(client), await register(client)
    job = await post_job(client, employer)
    application = await (await apply(client, primary, seeker, job)).json()
    url = f"/api/applications/{application['id']}"
    for who in (rival, stranger):
        await assert_error(await client.get(url, headers=who["headers"]), 404, "not_found")
        await assert_error(await move(client, who, application["id"], "withdrawn"), 404, "not_found")
        await assert_error(await move(client, who, application["id"], "reviewing"), 404, "not_found")
        # the job is public, its applications are its owner's: 403
        await assert_error(await client.get(f"/api/jobs/{job['id']}/applications", headers=who["headers"]), 403, "forbidden")
    await assert_error(await client.get(url), 401, "unauthorized")
    await assert_error(await client.get("/api/applications/999999", headers=seeker["headers"]), 404, "not_found")
    await assert_error(await client.get("/api/jobs/999999/applications", headers=employer["headers"]), 404, "not_found")
    assert await primary.fetchval("SELECT status FROM applications") == "submitted"


async def test_seekers_list_their_own_and_owners_list_their_jobs(client, primary):
    employer = await register(client, role="employer")
    seeker, other = await register(client), await register(client)
    jobs = [await post_job(client, employer, title=f"Job {i}") for i in range(3)]
    for job in jobs:
        assert (await apply(client, primary, seeker, job)).status == 201
    assert (await apply(client, primary, other, jobs[0])).status == 201
    mine = await (await client.get("/api/applications", headers=seeker["headers"])).json()
    assert [(a["job"]["title"], a["status"]) for a in mine["items"]] == [
        ("Job 2", "submitted"),
        ("Job 1", "submitted"),
        ("Job 0", "submitted"),
    ]
    first = mine["items"][-1]
    assert (await move(client, employer, first["id"], "reviewing")).status == 200
    page = await (await client.get("/api/applications", params={"limit": "2"}, headers=seeker["headers"])).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = await (
        await client.get("/api/applications", params={"limit": "2", "cursor": page["next_cursor"]}, headers=seeker["headers"])
    ).json()
    assert [(a["job"]["title"], a["status"]) for a in rest["items"]] == [("Job 0", "reviewing")]
    assert rest["next_cursor"] is None
    listed = await (await client.get(f"/api/jobs/{jobs[0]['id']}/applications", headers=employer["headers"])).json()
    assert [a["applicant"]["id"] for a in listed["items"]] == [other["user"]["id"], seeker["user"]["id"]]
    filtered = await client.get(
        f"/api/jobs/{jobs[0]['id']}/applications", params={"status": "reviewing"}, headers=employer["headers"]
    )
    assert [a["id"] for a in (await filtered.json())["items"]] == [first["id"]]


async def test_apply_honours_idempotency_key(client, primary):
    employer = await register(client, role="employer")
    seeker = await register(client)
    job = await post_job(client, employer)
    body = {"cover_letter": "hello", "resume_file_id": await resume_for(primary, seeker)}
    headers = {**seeker["headers"], "Idempotency-Key": "apply-1"}
    url = f"/api/jobs/{job['id']}/applications"
    first, again = [await client.post(url, json=body, headers=headers) for _ in range(2)]
    assert first.status == again.status == 201
    assert (await first.json())["id"] == (await again.json())["id"]
    assert JOB["title"] == (await again.json())["job"]["title"]
