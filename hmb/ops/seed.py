"""`hmb seed`: a small demo data set, so a newcomer's first requests show something."""

from __future__ import annotations

import asyncio

import asyncpg
import click

from hmb.ops.cli import settings_or_exit
from hmb.ops.seed_jobs import seed_jobs
from hmb.ops.seed_social import seed_social
from hmb.security import HASHER

DEMO_PASSWORD = "hireme-demo-password"
DEMO_PEOPLE = [
    ("ava.rolle@example.com", "Ava Rolle", "seeker", "Marine biologist", "Nassau"),
    ("marcus.knowles@example.com", "Marcus Knowles", "seeker", "Full-stack developer", "Freeport"),
    ("sasha.ferguson@example.com", "Sasha Ferguson", "seeker", "Hospitality manager", "Paradise Island"),
    ("devon.pinder@example.com", "Devon Pinder", "seeker", "Electrician", "Nassau"),
    ("island.resorts@example.com", "Island Resorts Ltd", "employer", "Hotels across the Family Islands", "Nassau"),
    ("conch.tech@example.com", "Conch Tech", "employer", "Software for Caribbean businesses", "Freeport"),
]


async def seed_users(conn: asyncpg.Connection) -> dict[str, int]:
    """The demo people (all with DEMO_PASSWORD); returns email -> id."""
    password_hash = await asyncio.to_thread(HASHER.hash, DEMO_PASSWORD)
    ids = {}
    for email, name, role, headline, location in DEMO_PEOPLE:
        ids[email] = await conn.fetchval(
            """
            INSERT INTO users (email, password_hash, name, role, headline, location)
            VALUES ($1, $2, $3, $4, $5, $6) RETURNING id
            """,
            email,
            password_hash,
            name,
            role,
            headline,
            location,
        )
    return ids


# Each step takes the connection and the people's ids; later domains append theirs.
DEMO_STEPS = []
DEMO_STEPS.append(seed_social)  # follows, posts, likes, an avatar and résumés
DEMO_STEPS.append(seed_jobs)  # after the steps that upload résumés, so applications can use them


async def load_demo(database_url: str) -> bool:
    """Load the demo set once; False if the database already has users."""
    conn = await asyncpg.connect(database_url)
    try:
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM users)"):
            return False
        async with conn.transaction():
            people = await seed_users(conn)
            for step in DEMO_STEPS:
                await step(conn, people)
        return True
    finally:
        await conn.close()


@click.command()
def seed() -> None:
    """Load the demo data set (skipped if there are users already)."""
    settings = settings_or_exit()
    loaded = asyncio.run(load_demo(settings.db.primary_url))
    if loaded:
        click.echo(f"demo data loaded: sign in as {DEMO_PEOPLE[0][0]} / {DEMO_PASSWORD}")
    else:
        click.echo("the database already has users; demo data not loaded")
