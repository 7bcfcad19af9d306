"""Applications: seekers apply to open jobs; the job's owner moves them along; the applicant may withdraw.

submitted → reviewing → interview → offered, and rejected from any stage before an
offer (employer); withdrawn from any stage before offered/rejected (applicant).
An application is private to its applicant and the job's owner: anyone else gets 404.
"""

from __future__ import annotations

from aiohttp import web

from hmb.appkeys import DB
from hmb.errors import Forbidden, Invalid, NotFound
from hmb.store import applications, jobs
from hmb.store.router import Write
from hmb.web.http import json_response, parse_body, parse_query, path_id
from hmb.web.identity import caller
from hmb.web.idempotency import create_once
from hmb.web.pagination import decode_id_cursor, page
from hmb.web.schemas.jobs import Application, ApplicationPatch, ApplicationsQuery, ApplyIn

ACTIVE = ("submitted", "reviewing", "interview")
# Who may move an application from a status, and to where.
EMPLOYER_MOVES = {
    "submitted": {"reviewing", "rejected"},
    "reviewing": {"interview", "rejected"},
    "interview": {"offered", "rejected"},
}
APPLICANT_MOVES = {status: {"withdrawn"} for status in ACTIVE}


async def apply(request: web.Request) -> web.Response:
    principal = caller(request)
    job_id = path_id(request)
    if principal.role != "seeker":
        raise Forbidden("only job seekers can apply")
    body = await parse_body(request, ApplyIn)

    async def create(w: Write) -> dict:
        status = await jobs.hold_job_status(w.conn, job_id)
        if status is None:
            raise NotFound("no such job")
        if status != "open":
            raise Invalid("this job is closed", {"job_id": "the job is no longer taking applications"})
        if not await applications.resume_belongs_to(w.conn, body.resume_file_id, principal.user_id):
            raise Invalid(fields={"resume_file_id": "not a résumé you uploaded"})
        row = await applications.insert_application(
            w.conn, job_id, principal.user_id, body.resume_file_id, body.cover_letter
        )
        return _application(row)

    return await create_once(request, principal, create)


async def get_application(request: web.Request) -> web.Response:
    principal = caller(request)
    row = await request.app[DB].read(applications.get_application, path_id(request))
    if row is None or principal.user_id not in (row["applicant_id"], row["employer_id"]):
        raise NotFound("no such application")
    return json_response(_application(row))


async def move(request: web.Request) -> web.Response:
    principal = caller(request)
    application_id = path_id(request)
    target = (await parse_body(request, ApplicationPatch)).status
    async with request.app[DB].write() as w:
        current = await applications.lock_application(w.conn, application_id)
        if current is None:
            raise NotFound("no such application")
        if principal.user_id == current["employer_id"]:
            moves, other = EMPLOYER_MOVES, APPLICANT_MOVES
        elif principal.user_id == current["applicant_id"]:
            moves, other = APPLICANT_MOVES, EMPLOYER_MOVES
        else:
            raise NotFound("no such application")
        status = current["status"]
        if target not in moves.get(status, set()):
            if target in other.get(status, set()):
                who = "applicant" if moves is EMPLOYER_MOVES else "job's employer"
                raise Forbidden(f"only the {who} can move an application to {target}")
            raise Invalid(f"an application cannot go from {status} to {target}", {"status": f"not allowed from {status}"})
        row = await applications.set_status(w.conn, application_id, target)
    return json_response(_application(row))


async def list_for_job(request: web.Request) -> web.Response:
    """The job's owner reviews its applications (the job is public: others get 403)."""
    principal = caller(request)
    job_id = path_id(request)
    query = parse_query(request, ApplicationsQuery)
    before_id = decode_id_cursor(query.cursor)
    db = request.app[DB]
    job = await db.read(jobs.get_job, job_id)
    if job is None:
        raise NotFound("no such job")
    if job["employer_id"] != principal.user_id:
        raise Forbidden("only the employer who posted this job can see its applications")
    rows = await db.read(
        applications.list_for_job, job_id, query.status, before_id, query.limit + 1
    )
    return json_response(_page(rows, query.limit))


async def list_mine(request: web.Request) -> web.Response:
    principal = caller(request)
    query = parse_query(request, ApplicationsQuery)
    before_id = decode_id_cursor(query.cursor)
    rows = await request.app[DB].read(
        applications.list_for_applicant,
        principal.user_id,
        query.status,
        before_id,
        query.limit + 1,
    )
    return json_response(_page(rows, query.limit))


def _page(rows, limit: int) -> dict:
    result = page(rows, limit, lambda r: [r["id"]])
    result["items"] = [_application(r) for r in result["items"]]
    return result


def _application(row) -> dict:
    return Application.model_validate(
        {
            **dict(row),
            "job": {"id": row["job_id"], "title": row["job_title"], "company": row["job_company"], "status": row["job_status"]},
            "applicant": {"id": row["applicant_id"], "name": row["applicant_name"], "headline": row["applicant_headline"]},
        }
    ).model_dump()
