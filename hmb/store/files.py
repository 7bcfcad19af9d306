"""File metadata rows, and who may read a private file."""

from __future__ import annotations

import asyncpg

_COLUMNS = "id, owner_id, purpose, content_type, size_bytes, storage_key, created_at"


async def insert_file(
    conn: asyncpg.Connection,
    owner_id: int,
    purpose: str,
    content_type: str,
    size_bytes: int,
    storage_key: str,
    sha256: bytes,
) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""
        INSERT INTO files (owner_id, purpose, content_type, size_bytes, storage_key, sha256)
        VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}
        """,
        owner_id,
        purpose,
        content_type,
        size_bytes,
        storage_key,
        sha256,
    )


async def get_file(conn: asyncpg.Connection, file_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM files WHERE id = $1", file_id)


async def delete_file(conn: asyncpg.Connection, file_id: int) -> str | None:
    """Delete the row; returns its storage key, for deleting the object after commit."""
    return await conn.fetchval("DELETE FROM files WHERE id = $1 RETURNING storage_key", file_id)


async def employer_can_read(conn: asyncpg.Connection, applicant_id: int, employer_id: int) -> bool:
    """True if `applicant_id` applied to one of `employer_id`'s jobs.

    The jobs and applications tables come with the jobs migrations (0010+); until
    they exist, nobody but the owner may read a private file.
    """
    try:
        return await conn.fetchval(
            """
            SELECT EXISTS (
                SELECT 1 FROM applications a JOIN jobs j ON j.id = a.job_id
                WHERE a.applicant_id = $1 AND j.employer_id = $2
            )
            """,
            applicant_id,
            employer_id,
        )
    except asyncpg.UndefinedTableError:
        return False
