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
@click.option("--preset", default="demo", show_default=True,
              type=click.Choice(["demo", "tiny", "small", "medium", "full"]),
              help="demo: the hand-written accounts; others: a generated set (full = 1M users), see hmb.ops.generate")
@click.option("--seed", "seed_value", default=1, show_default=True, type=int, help="generated sets: same seed, same rows")
@click.option("--scale", default=1.0, show_default=True, type=float, help="generated sets: multiply every count")
@click.option("--reset", is_flag=True, help="empty every table first (refused in production)")
def seed(preset: str, seed_value: int, scale: float, reset: bool) -> None:
    """Load the demo data set (skipped if there are users already), or a generated one with --preset."""
    settings = settings_or_exit()
    if reset and settings.production:
        raise click.UsageError("--reset is refused when ENVIRONMENT=production")
    if preset != "demo":
        from hmb.ops import generate  # numpy: only for generated sets

        if reset:
            asyncio.run(generate.reset(settings.db.primary_url))
        try:
            counts = asyncio.run(generate.generate(settings.db.primary_url, settings.db.replica_urls,
                                                   generate.PRESETS[preset].scaled(scale), seed_value, echo=click.echo))
        except RuntimeError as exc:
            raise click.ClickException(str(exc)) from None
        seconds = counts.pop("seconds")
        click.echo(", ".join(f"{name} {rows:,}" for name, rows in counts.items()) + f" loaded in {seconds}s"
                   f" (password {generate.PASSWORD})")
        return
    if reset:
        asyncio.run(_reset(settings.db.primary_url))
    loaded = asyncio.run(load_demo(settings.db.primary_url))
    if loaded:
        click.echo(f"demo data loaded: sign in as {DEMO_PEOPLE[0][0]} / {DEMO_PASSWORD}")
    else:
        click.echo("the database already has users; demo data not loaded")


async def _reset(database_url: str) -> None:
    from hmb.ops.generate import reset

    await reset(database_url)
