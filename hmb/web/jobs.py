"""/api/jobs: search (cached per normalised query), detail (cached), and employers' listings.

Every listing is public, open or closed, so a caller who may not change one gets
403 (they can see it), and 404 only when it does not exist.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from hmb.appkeys import DB
from hmb.errors import Forbidden, NotFound
from hmb.security import Principal
from hmb.store import cache_keys, jobs
from hmb.store.cache_keys import Key
from hmb.store.router import Write
from hmb.web import cached
from hmb.web.cached import PublicRead
from hmb.web.http import dumps, json_response, parse_body, parse_query, path_id
from hmb.web.identity import caller
from hmb.web.idempotency import create_once
from hmb.web.pagination import decode_cursor, page
from hmb.web.schemas.jobs import Job, JobIn, JobPatch, JobsQuery, JobSummary

SUMMARY_CHARS = 280


async def search(request: web.Request) -> web.Response:
    query = normalise(parse_query(request, JobsQuery))
    shape = (float, int) if query.q else (int,)
    position = decode_cursor(query.cursor, shape)
    criteria = jobs.Search(
        q=query.q,
        location=query.location,
        employment_type=query.type,
        remote=query.remote,
        salary_min=query.salary_min,
        employer_id=query.employer_id,
        status=query.status,
        after=tuple(position) if position else None,
        limit=query.limit + 1,
    )
    db = request.app[DB]

    async def load(floor: int | None) -> bytes:
        rows = await db.read(jobs.search_jobs, criteria, floor=floor)
        key = (lambda r: [r["rank"], r["id"]]) if query.q else (lambda r: [r["id"]])
        result = page(rows, query.limit, key)
        result["items"] = [_summary(r) for r in result["items"]]
        return dumps(result)

    text = cache_text(query)
    return await cached.by_generation(request, cache_keys.jobs_gen(), lambda g: cache_keys.jobs_search(g, text), load)


def normalise(query: JobsQuery) -> JobsQuery:
    """Lowercase and collapse the free text, so equivalent searches share one cache entry."""
    changes = {}
    if query.q is not None:
        changes["q"] = " ".join(query.q.lower().split()) or None
    if query.location is not None:
        changes["location"] = " ".join(query.location.lower().split()) or None
    return query.model_copy(update=changes)


def cache_text(query: JobsQuery) -> str:
    """The query as sorted, URL-encoded parameters: readable, and no two queries collide."""
    params = query.model_dump(exclude_none=True)
    return urlencode(sorted((k, str(v).lower() if isinstance(v, bool) else v) for k, v in params.items()))


def _job_key(request: web.Request) -> Key:
    return cache_keys.job(path_id(request))


async def _load_job(request: web.Request) -> bytes:
    row = await request.app[DB].read(jobs.get_job, path_id(request))
    if row is None:
        raise NotFound("no such job")
    return dumps(_job(row))


get_job = PublicRead(_job_key, _load_job)


async def create_job(request: web.Request) -> web.Response:
    principal = caller(request)
    if principal.role != "employer":
        raise Forbidden("only employers can post jobs")
    body = await parse_body(request, JobIn)

    async def create(w: Write) -> dict:
        row = await jobs.insert_job(w.conn, principal.user_id, body.model_dump())
        w.bump(cache_keys.jobs_gen())
        return _job(row)

    return await create_once(request, principal, create)


async def patch_job(request: web.Request) -> web.Response:
    principal = caller(request)
    job_id = path_id(request)
    changes = (await parse_body(request, JobPatch)).model_dump(exclude_unset=True)
    async with request.app[DB].write() as w:
        await _owned(w, job_id, principal)
        row = await jobs.update_job(w.conn, job_id, changes)
        _changed(w, job_id)
    return json_response(_job(row))


async def close_job(request: web.Request) -> web.Response:
    """DELETE closes the listing (applications keep pointing at it); closing twice is fine."""
    principal = caller(request)
    job_id = path_id(request)
    async with request.app[DB].write() as w:
        await _owned(w, job_id, principal)
        if await jobs.close_job(w.conn, job_id):
            _changed(w, job_id)
    return web.Response(status=204)


async def _owned(w: Write, job_id: int, principal: Principal) -> None:
    job = await jobs.lock_job(w.conn, job_id)
    if job is None:
        raise NotFound("no such job")
    if job["employer_id"] != principal.user_id:
        raise Forbidden("only the employer who posted this job can change it")


def _changed(w: Write, job_id: int) -> None:
    w.invalidate(cache_keys.job(job_id))
    w.bump(cache_keys.jobs_gen())


def _job(row) -> dict:
    return Job.model_validate(dict(row)).model_dump()


def _summary(row) -> dict:
    data = dict(row)
    description = data.pop("description")
    data["summary"] = description[:SUMMARY_CHARS]
    return JobSummary.model_validate(data).model_dump()
