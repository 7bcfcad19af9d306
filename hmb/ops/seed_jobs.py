"""Demo jobs, applications and conversations for `hmb seed`, made through hmb.store."""

from __future__ import annotations

import asyncpg

from hmb.store import applications, jobs, messages

RESORTS, CONCH = "island.resorts@example.com", "conch.tech@example.com"
AVA, MARCUS, SASHA, DEVON = (
    "ava.rolle@example.com",
    "marcus.knowles@example.com",
    "sasha.ferguson@example.com",
    "devon.pinder@example.com",
)

DEMO_JOBS = [
    (RESORTS, "Front office manager", "Island Resorts Ltd", "Lead the front desk team of a 300-room beach resort: "
     "rosters, guest relations, and the night audit.", "Paradise Island", "full_time", False, 45000, 60000),
    (RESORTS, "Maintenance electrician", "Island Resorts Ltd", "Keep the resort's power, lighting and kitchen equipment "
     "running; licensed electricians with hotel experience preferred.", "Nassau", "full_time", False, 38000, 50000),
    (RESORTS, "Dive instructor", "Island Resorts Ltd", "PADI instructors to run reef dives and snorkel trips for guests.",
     "Exuma", "temporary", False, 28000, 34000),
    (RESORTS, "Marine biology intern", "Island Resorts Ltd", "Help our reef restoration programme: coral nursery work, "
     "surveys and guest talks.", "Andros", "internship", False, None, None),
    (CONCH, "Python developer", "Conch Tech", "Build booking and payments APIs for Caribbean businesses in Python "
     "(aiohttp, PostgreSQL, Redis).", "Freeport", "full_time", True, 55000, 80000),
    (CONCH, "Front-end developer (contract)", "Conch Tech", "Six months building a React dashboard for hotel operators.",
     "Freeport", "contract", True, 60000, 75000),
    (CONCH, "IT support technician", "Conch Tech", "Part-time support for our clients' point-of-sale systems and networks.",
     "Nassau", "part_time", False, 18000, 24000),
]

# (seeker, job title, status, cover letter)
DEMO_APPLICATIONS = [
    (MARCUS, "Python developer", "interview", "Five years of Python; I built the ferry booking site in Freeport."),
    (SASHA, "Front office manager", "reviewing", "I ran the front desk of a 200-room hotel for four years."),
    (DEVON, "Maintenance electrician", "submitted", "Licensed electrician, eight years in commercial buildings."),
    (AVA, "Marine biology intern", "submitted", "I study coral bleaching and would love to help your nursery."),
]
PATHS = {"submitted": [], "reviewing": ["reviewing"], "interview": ["reviewing", "interview"]}

DEMO_MESSAGES = [
    (RESORTS, SASHA, "Hi Sasha, thanks for applying. Are you free for a call on Thursday?"),
    (SASHA, RESORTS, "Yes, any time after 10 works for me."),
    (RESORTS, SASHA, "Great, 10:30 then. We'll call you."),
    (CONCH, MARCUS, "Marcus, we'd like you to meet the team next week."),
    (MARCUS, CONCH, "Looking forward to it!"),
    (AVA, MARCUS, "Congrats on the interview! Any tips for mine?"),
]


async def seed_jobs(conn: asyncpg.Connection, people: dict[str, int]) -> None:
    """Open jobs, applications at different stages, and a few conversations with unread messages."""
    by_title = {}
    for email, title, company, description, location, kind, remote, low, high in DEMO_JOBS:
        row = await jobs.insert_job(
            conn,
            people[email],
            {
                "title": title,
                "company": company,
                "description": description,
                "location": location,
                "employment_type": kind,
                "remote": remote,
                "salary_min": low,
                "salary_max": high,
                "currency": "BSD",
            },
        )
        by_title[title] = row["id"]
    for email, title, status, letter in DEMO_APPLICATIONS:
        # A résumé the seeker uploaded, if an earlier step made one (files need the storage backend).
        resume = await applications.latest_resume_of(conn, people[email])
        row = await applications.insert_application(conn, by_title[title], people[email], resume, letter)
        for step in PATHS[status]:
            await applications.set_status(conn, row["id"], step)
    for sender, recipient, body in DEMO_MESSAGES:
        await messages.send_message(conn, people[sender], people[recipient], body)
