"""Schema migrations: yoyo's SQL files applied under a Postgres advisory lock.

yoyo's own lock is a table row that survives a SIGKILL; an advisory lock dies with
its session, so two pods running `hmb migrate` at once simply take turns.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from yoyo import get_backend, read_migrations

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
LOCK_ID = 0x686D62  # "hmb"


@dataclass(frozen=True)
class MigrationState:
    id: str
    applied: bool


def _yoyo_url(database_url: str) -> str:
    scheme, rest = database_url.split("://", 1)
    return f"postgresql+psycopg://{rest}" if scheme in ("postgres", "postgresql") else database_url


@contextmanager
def _locked(database_url: str, timeout_s: float) -> Iterator[None]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"SET lock_timeout = '{int(timeout_s * 1000)}ms'")
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_ID,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_ID,))


def apply(database_url: str, timeout_s: float = 60.0) -> list[str]:
    """Apply every pending migration; returns the ids applied."""
    with _locked(database_url, timeout_s):
        backend = get_backend(_yoyo_url(database_url))
        migrations = read_migrations(str(MIGRATIONS_DIR))
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
        return [m.id for m in pending]


def rollback(database_url: str, count: int = 1, timeout_s: float = 60.0) -> list[str]:
    """Roll back the last `count` applied migrations; returns the ids rolled back."""
    with _locked(database_url, timeout_s):
        backend = get_backend(_yoyo_url(database_url))
        migrations = read_migrations(str(MIGRATIONS_DIR))
        with backend.lock():
            to_undo = backend.to_rollback(migrations)[:count]
            backend.rollback_migrations(to_undo)
        return [m.id for m in to_undo]


def status(database_url: str) -> list[MigrationState]:
    backend = get_backend(_yoyo_url(database_url))
    migrations = read_migrations(str(MIGRATIONS_DIR))
    return [MigrationState(m.id, backend.is_applied(m)) for m in migrations]
