"""Jobs: listings, full-text search with filters, and owner edits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from hmb.errors import Invalid

COLUMNS = (
    "id, employer_id, title, company, description, location, employment_type, remote,"
    " salary_min, salary_max, currency, status, created_at, updated_at, closed_at"
)
EDITABLE = (
    "title",
    "company",
    "description",
    "location",
    "employment_type",
    "remote",
    "salary_min",
    "salary_max",
    "currency",
    "status",
)
# Search weights for D, C, B, A (description is C, company B, title A): a title hit
# outweighs several description hits.
RANK = "ts_rank_cd('{0.05, 0.1, 0.4, 1.0}', j.search, q)"


@dataclass(frozen=True)
class Search:
    """A normalised search; `after` is the last row's (rank, id) or (id,) position."""

    q: str | None = None
    location: str | None = None
    employment_type: str | None = None
    remote: bool | None = None
    salary_min: int | None = None
    employer_id: int | None = None
    status: str = "open"
    after: tuple[Any, ...] | None = None
    limit: int = 20


async def insert_job(conn: asyncpg.Connection, employer_id: int, fields: dict[str, Any]) -> asyncpg.Record:
    columns = [c for c in EDITABLE if c in fields and c != "status"]
    placeholders = ", ".join(f"${i}" for i in range(2, len(columns) + 2))
    try:
        return await conn.fetchrow(
            f"INSERT INTO jobs (employer_id, {', '.join(columns)}) VALUES ($1, {placeholders}) RETURNING {COLUMNS}",
            employer_id,
            *(fields[c] for c in columns),
        )
    except asyncpg.CheckViolationError as exc:
        raise _invalid(exc) from None


async def get_job(conn: asyncpg.Connection, job_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM jobs WHERE id = $1", job_id)


async def lock_job(conn: asyncpg.Connection, job_id: int) -> asyncpg.Record | None:
    """The job's owner and status, locked for the rest of the transaction."""
    return await conn.fetchrow("SELECT id, employer_id, status FROM jobs WHERE id = $1 FOR UPDATE", job_id)


async def hold_job_status(conn: asyncpg.Connection, job_id: int) -> str | None:
    """The job's status, share-locked: it cannot close until this transaction ends."""
    return await conn.fetchval("SELECT status FROM jobs WHERE id = $1 FOR SHARE", job_id)


async def update_job(conn: asyncpg.Connection, job_id: int, changes: dict[str, Any]) -> asyncpg.Record:
    """Change only EDITABLE columns (names never come from the client); closing stamps closed_at."""
    columns = [c for c in EDITABLE if c in changes]
    assignments = [f"{c} = ${i}" for i, c in enumerate(columns, start=2)]
    if "status" in columns:
        status = f"${columns.index('status') + 2}"
        assignments.append(f"closed_at = CASE WHEN {status} = 'closed' THEN coalesce(closed_at, now()) END")
    assignments.append("updated_at = now()")
    try:
        return await conn.fetchrow(
            f"UPDATE jobs SET {', '.join(assignments)} WHERE id = $1 RETURNING {COLUMNS}",
            job_id,
            *(changes[c] for c in columns),
        )
    except asyncpg.CheckViolationError as exc:
        raise _invalid(exc) from None


async def close_job(conn: asyncpg.Connection, job_id: int) -> bool:
    """Close an open job; False if it was closed already."""
    result = await conn.execute(
        "UPDATE jobs SET status = 'closed', closed_at = now(), updated_at = now() WHERE id = $1 AND status = 'open'",
        job_id,
    )
    return result.endswith(" 1")


async def search_jobs(conn: asyncpg.Connection, s: Search) -> list[asyncpg.Record]:
    """One page, fetched with LIMIT s.limit (ask for one more to know if there is a next page).

    With a query: ranked (rank, id) descending, keyset-paginated on that pair so the
    order is total and stable. Without: newest first.
    """
    args: list[Any] = [s.status]
    where = ["j.status = $1"]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if s.location:
        pattern = "%" + s.location.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(f"lower(j.location) LIKE {arg(pattern)}")
    if s.employment_type:
        where.append(f"j.employment_type = {arg(s.employment_type)}")
    if s.remote is not None:
        where.append(f"j.remote = {arg(s.remote)}")
    if s.salary_min is not None:
        # The job can pay at least this much: its top end (or its only figure) reaches it.
        where.append(f"coalesce(j.salary_max, j.salary_min) >= {arg(s.salary_min)}")
    if s.employer_id is not None:
        where.append(f"j.employer_id = {arg(s.employer_id)}")
    if s.q:
        source = f"jobs j, websearch_to_tsquery('english', {arg(s.q)}) q"
        where.append("j.search @@ q")
        if s.after:
            where.append(f"({RANK}, j.id) < ({arg(s.after[0])}::real, {arg(s.after[1])}::bigint)")
        order = "rank DESC, j.id DESC"
        rank = RANK
    else:
        source = "jobs j"
        if s.after:
            where.append(f"j.id < {arg(s.after[0])}")
        order = "j.id DESC"
        rank = "NULL::real"
    columns = ", ".join(f"j.{c.strip()}" for c in COLUMNS.split(","))
    return await conn.fetch(
        f"SELECT {columns}, {rank} AS rank FROM {source} WHERE {' AND '.join(where)} ORDER BY {order} LIMIT {arg(s.limit)}",
        *args,
    )


def _invalid(exc: asyncpg.CheckViolationError) -> Invalid:
    if exc.constraint_name == "jobs_salary_range":
        return Invalid(fields={"salary_max": "must not be below salary_min"})
    return Invalid(fields={"body": "a value is out of range"})
