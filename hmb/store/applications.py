"""Applications: one per seeker per job, with the job and applicant they belong to."""

from __future__ import annotations

import asyncpg

from hmb.errors import Conflict
from hmb.store import pg

# Every read returns the application with its job's headline and its applicant's.
SELECT = """
    SELECT a.id, a.job_id, a.applicant_id, a.resume_file_id, a.cover_letter, a.status,
           a.created_at, a.updated_at,
           j.title AS job_title, j.company AS job_company, j.status AS job_status, j.employer_id,
           u.name AS applicant_name, u.headline AS applicant_headline
    FROM applications a
    JOIN jobs j ON j.id = a.job_id
    JOIN users u ON u.id = a.applicant_id
"""


async def resume_belongs_to(conn: asyncpg.Connection, file_id: int, user_id: int) -> bool:
    """Whether `file_id` is a résumé the user uploaded (files belong to hmb.store.files)."""
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM files WHERE id = $1 AND owner_id = $2 AND purpose = 'resume')",
        file_id,
        user_id,
    )


async def latest_resume_of(conn: asyncpg.Connection, user_id: int) -> int | None:
    return await conn.fetchval(
        "SELECT id FROM files WHERE owner_id = $1 AND purpose = 'resume' ORDER BY id DESC LIMIT 1", user_id
    )


async def insert_application(
    conn: asyncpg.Connection, job_id: int, applicant_id: int, resume_file_id: int | None, cover_letter: str
) -> asyncpg.Record:
    try:
        application_id = await conn.fetchval(
            """
            INSERT INTO applications (job_id, applicant_id, resume_file_id, cover_letter)
            VALUES ($1, $2, $3, $4) RETURNING id
            """,
            job_id,
            applicant_id,
            resume_file_id,
            cover_letter,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict("you have already applied to this job", field="job_id") from None
    return await get_application(conn, application_id)


async def get_application(conn: asyncpg.Connection, application_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"{SELECT} WHERE a.id = $1", application_id)


async def lock_application(conn: asyncpg.Connection, application_id: int) -> asyncpg.Record | None:
    """Who may move it and where it is now, locked until the transaction ends."""
    return await conn.fetchrow(
        """
        SELECT a.id, a.applicant_id, a.status, j.employer_id
        FROM applications a JOIN jobs j ON j.id = a.job_id
        WHERE a.id = $1
        FOR UPDATE OF a
        """,
        application_id,
    )


async def set_status(conn: asyncpg.Connection, application_id: int, status: str) -> asyncpg.Record:
    await conn.execute(
        "UPDATE applications SET status = $2, updated_at = now() WHERE id = $1", application_id, status
    )
    return await get_application(conn, application_id)


async def list_for_job(
    conn: asyncpg.Connection, job_id: int, status: str | None, before_id: int | None, limit: int
) -> list[asyncpg.Record]:
    return await _list_by(conn, "job_id", job_id, status, before_id, limit)


async def list_for_applicant(
    conn: asyncpg.Connection, applicant_id: int, status: str | None, before_id: int | None, limit: int
) -> list[asyncpg.Record]:
    return await _list_by(conn, "applicant_id", applicant_id, status, before_id, limit)


async def _list_by(conn, column: str, value: int, status: str | None, before_id: int | None, limit: int):
    # `column` is one of this module's names above, never input.
    return await conn.fetch(
        f"""{SELECT}
        WHERE a.{column} = $1 AND ($2::text IS NULL OR a.status = $2) AND a.id < $3
        ORDER BY a.id DESC LIMIT $4
        """,
        value,
        status,
        pg.before(before_id),
        limit,
    )
