"""`hmb seed --preset NAME`: a synthetic, realistic data set, deterministic per `--seed`, loaded through COPY.

Everything is drawn with numpy from one seeded generator, then streamed to PostgreSQL in
the binary COPY format (hmb.ops.pgcopy: numpy encodes a chunk at a time, no Python object per row).
Secondary indexes are dropped first and rebuilt after the load (two at a time), leaf
tables are copied FROZEN (no vacuum debt), every table is ANALYZEd, identity sequences
move past the loaded ids, and the command returns only once every replica has replayed it.

Shape (the `full` preset): 1M users (5 % employers); follows skewed: 85 % of people follow
20–200 (Pareto, median ~28), the rest fewer, and a quarter of all follows go to a Zipf-ranked
few, so a handful of accounts have 100,000+ followers; 5M posts over 90 days (authors and
likes skewed the same way); 100k jobs; 1M applications; 2M messages in 500k conversations.
Counters (followers/following/posts per user, likes per post) are computed from the rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import asyncpg
import numpy as np

from hmb.ops.pgcopy import Table, Vocab
from hmb.security import HASHER

DAY_US = 86_400_000_000
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
PASSWORD = "hireme-demo-password"  # every generated account's password (one hash, shared)


@dataclass(frozen=True)
class Preset:
    users: int
    posts: int
    likes: int
    jobs: int
    applications: int
    messages: int
    days: int = 90
    employer_share: float = 0.05

    def scaled(self, scale: float) -> Preset:
        if scale == 1:
            return self
        n = lambda v: max(1, round(v * scale))
        return replace(self, users=max(50, n(self.users)), posts=n(self.posts), likes=n(self.likes),
                       jobs=n(self.jobs), applications=n(self.applications), messages=n(self.messages))


PRESETS = {
    "tiny": Preset(users=300, posts=1_500, likes=3_000, jobs=30, applications=300, messages=600),
    "small": Preset(users=10_000, posts=50_000, likes=100_000, jobs=1_000, applications=10_000, messages=20_000),
    "medium": Preset(users=100_000, posts=500_000, likes=1_000_000, jobs=10_000, applications=100_000, messages=200_000),
    "full": Preset(users=1_000_000, posts=5_000_000, likes=10_000_000, jobs=100_000, applications=1_000_000,
                   messages=2_000_000),
}

# --- vocabularies -----------------------------------------------------------------------

FIRST = ("Ava Marcus Sasha Devon Kayla Jamal Tia Andre Nia Shane Leah Omar Zoe Tyrone Maya Dario Kiara Jordan Alana "
         "Trevor Imani Keon Brianna Rashad Chloe Dwayne Talia Elijah Naomi Kendrick Jada Malik Renee Curtis Aisha "
         "Travis Monique Ricardo Latoya Vernon").split()
LAST = ("Rolle Knowles Ferguson Pinder Smith Johnson Bain Sweeting Cartwright Thompson Moss Saunders Major Taylor "
        "Williams Miller Newbold Dean Wallace Forbes Cooper Strachan Munroe Darville Gibson Symonette Bethel Hanna "
        "Rahming Butler").split()
ISLANDS = ("Nassau, Freeport, Paradise Island, Exuma, Eleuthera, Andros, Abaco, Long Island, Bimini, Cat Island, "
           "Harbour Island, Inagua, Remote").split(", ")
SEEKER_HEADLINES = ("Marine biologist, Full-stack developer, Hospitality manager, Electrician, Accountant, "
                    "Registered nurse, Dive instructor, Chef de partie, Graphic designer, Boat captain, Teacher, "
                    "Data analyst, Front desk agent, Carpenter, Sales associate, Student").split(", ")
COMPANY_A = "Island Conch Coral Palm Harbour Lucayan Blue Sandbar Flamingo Tropic Reef Sapphire".split()
COMPANY_B = "Resorts Tech Logistics Bank Foods Marine Builders Health Media Energy Tours Realty".split()
JOB_TITLES = ("Front office manager, Maintenance electrician, Dive instructor, Python developer, Line cook, "
              "Accounts payable clerk, Registered nurse, Boat captain, Housekeeping supervisor, Sales executive, "
              "IT support technician, Marketing coordinator, Security officer, Bartender, Data analyst").split(", ")
EMPLOYMENT = ("full_time", "part_time", "contract", "internship", "temporary")
APP_STATUS = ("submitted", "reviewing", "interview", "offered", "rejected", "withdrawn")
OPENINGS = ("Spent the morning", "Just wrapped up", "Excited to share", "Big thanks to the team for", "Reflecting on",
            "Proud of our crew for", "Quick lesson from", "Looking back at", "Can't believe we finished",
            "Anyone else working on")
MIDDLES = ("a reef survey off Rose Island", "a new booking system for a Freeport dive shop", "the night audit",
           "a solar install at a school in Nassau", "our apprenticeship programme", "a regatta in Exuma",
           "the hurricane preparedness drill", "a data migration for a local bank", "the Junkanoo rehearsals",
           "our first week of hiring season", "a marina expansion in Abaco", "guest feedback from last month")
ENDINGS = ("Coral recovery is real!", "Happy to share lessons learned.", "Onward.", "Who's hiring?",
           "Grateful for this community.", "More soon.", "DM me if you want details.", "#Bahamas #careers",
           "Teamwork makes it work.", "What would you have done differently?")
MESSAGE_BODIES = ("Hi, thanks for applying. Are you free for a call on Thursday?", "Yes, any time after 10 works.",
                  "Great, 10:30 then.", "Could you send your latest résumé?", "Congrats on the new role!",
                  "Are you still hiring for the front desk?", "Sure, here is the link.", "Thanks, talk soon.",
                  "We'd like you to meet the team next week.", "Looking forward to it!")


def _combos(*parts: tuple[str, ...] | list[str], sep: str = " ") -> list[str]:
    out = [""]
    for part in parts:
        out = [f"{a}{sep}{b}" if a else b for a in out for b in part]
    return out


# --- drawing the data -------------------------------------------------------------------


class Draw:
    def __init__(self, seed: int, anchor_us: int):
        self.rng = np.random.default_rng(seed)
        self.anchor = anchor_us

    def zipf_mix(self, n_items: int, size: int, s: float, share: float) -> np.ndarray:
        """Indices in [0, n_items): `share` from a Zipf(s) ranking over a random permutation, the rest uniform."""
        rng = self.rng
        ranks = np.arange(1, n_items + 1, dtype=np.float64) ** -s
        cdf = np.cumsum(ranks)
        cdf /= cdf[-1]
        perm = rng.permutation(n_items)
        picked = perm[np.minimum(np.searchsorted(cdf, rng.random(size)), n_items - 1)]
        uniform = rng.integers(0, n_items, size)
        return np.where(rng.random(size) < share, picked, uniform)

    def times_between(self, low: np.ndarray, high: int | np.ndarray) -> np.ndarray:
        return low + (self.rng.random(len(low)) * np.maximum(high - low, 0)).astype(np.int64)

    def pick(self, n_choices: int, size: int, p: list[float] | None = None) -> np.ndarray:
        return self.rng.choice(n_choices, size, p=p).astype(np.int64)


def _unique_pairs(a: np.ndarray, b: np.ndarray, base: int, target: int | None, draw: Draw):
    """Distinct (a, b) pairs sorted by (a, b); at most `target` of them, chosen at random."""
    keys = np.unique(a * base + b)
    if target is not None and len(keys) > target:
        keys = np.sort(draw.rng.choice(keys, target, replace=False))
    return keys // base, keys % base


def build(preset: Preset, seed: int, anchor: datetime, password_hash: str) -> list[list[Table]]:
    """Every table's rows, in load stages (a stage only references tables of earlier stages)."""
    d = Draw(seed, int((anchor - PG_EPOCH).total_seconds() * 1_000_000))
    p, now = preset, d.anchor
    n = p.users
    ids = np.arange(1, n + 1, dtype=np.int64)

    # Users: a few employers (companies), the rest seekers; joined 90..720 days ago.
    employer = d.rng.random(n) < p.employer_share
    employer[0] = False
    employer[1] = True
    employer_ids = ids[employer]
    seeker_ids = ids[~employer]
    user_created = now - p.days * DAY_US - (d.rng.random(n) * 630 * DAY_US).astype(np.int64)
    first, last = d.pick(len(FIRST), n), d.pick(len(LAST), n)
    companies = _combos(COMPANY_A, COMPANY_B)
    company = d.pick(len(companies), n)
    names = [companies[c] if e else f"{FIRST[f]} {LAST[la]}"
             for e, f, la, c in zip(employer.tolist(), first.tolist(), last.tolist(), company.tolist())]
    emails = [f"{FIRST[f].lower()}.{LAST[la].lower()}.{i}@example.com" if not e else f"jobs.{i}@example.com"
              for i, e, f, la in zip(ids.tolist(), employer.tolist(), first.tolist(), last.tolist())]
    headlines = SEEKER_HEADLINES + ["Hiring across the Bahamas"]
    headline = np.where(employer, len(headlines) - 1, d.pick(len(SEEKER_HEADLINES), n))
    location = d.pick(len(ISLANDS), n)

    # Follows: how many each person follows, then whom (a quarter to a Zipf-ranked few).
    heavy = d.rng.random(n) < 0.85
    wants = np.where(heavy, np.minimum(200, (20 / np.sqrt(1 - d.rng.random(n))).astype(np.int64)),
                     d.rng.integers(0, 20, n))
    wants = np.minimum(wants, n - 1)
    follower = np.repeat(ids, wants)
    followee = d.zipf_mix(n, len(follower), s=1.0, share=0.25) + 1
    mask = follower != followee
    follower, followee = _unique_pairs(follower[mask], followee[mask], n + 1, None, d)
    follow_created = d.times_between(np.maximum(user_created[follower - 1], user_created[followee - 1]), now)

    # Posts over the last `days`, ids in time order; authors skewed.
    post_created = np.sort(now - (d.rng.random(p.posts) * p.days * DAY_US).astype(np.int64))
    author = d.zipf_mix(n, p.posts, s=0.7, share=0.5) + 1
    bodies = [f"{o} {m}. {e}" for o in OPENINGS for m in MIDDLES for e in ENDINGS]
    body = d.pick(len(bodies), p.posts)
    post_ids = np.arange(1, p.posts + 1, dtype=np.int64)

    # Likes: popular posts get most of them; counters follow from the rows.
    like_post = d.zipf_mix(p.posts, int(p.likes * 1.1) + 10, s=0.8, share=0.6) + 1
    like_user = d.rng.integers(1, n + 1, len(like_post))
    like_post, like_user = _unique_pairs(like_post, like_user, n + 1, p.likes, d)
    like_created = d.times_between(post_created[like_post - 1], now)
    like_count = np.bincount(like_post, minlength=p.posts + 1)[1:]

    followers_count = np.bincount(followee, minlength=n + 1)[1:]
    following_count = np.bincount(follower, minlength=n + 1)[1:]
    posts_count = np.bincount(author, minlength=n + 1)[1:]

    # Jobs by employers (some employers post many), 80 % still open.
    job_ids = np.arange(1, p.jobs + 1, dtype=np.int64)
    job_employer = employer_ids[d.zipf_mix(len(employer_ids), p.jobs, s=0.8, share=0.5)]
    job_created = np.sort(now - (d.rng.random(p.jobs) * p.days * DAY_US).astype(np.int64))
    closed = d.rng.random(p.jobs) < 0.2
    closed_at = np.ma.masked_array(d.times_between(job_created, now), mask=~closed)
    salary_min = d.rng.integers(18, 80, p.jobs) * 1000
    salary_known = d.rng.random(p.jobs) < 0.8
    descriptions = _combos([f"Join us as a {t.lower()}." for t in JOB_TITLES],
                           [f"Based in {i}." for i in ISLANDS],
                           ["Experience preferred.", "Training provided.", "Great benefits and a friendly team."])
    job_title = d.pick(len(JOB_TITLES), p.jobs)

    # Applications: seekers to jobs (popular jobs draw more), one per seeker per job.
    app_job = d.zipf_mix(p.jobs, int(p.applications * 1.05) + 10, s=0.7, share=0.5) + 1
    app_user = seeker_ids[d.rng.integers(0, len(seeker_ids), len(app_job))]
    app_job, app_user = _unique_pairs(app_job, app_user, n + 1, p.applications, d)
    order = d.rng.permutation(len(app_job))  # ids in no particular job order, like real arrivals
    app_job, app_user = app_job[order], app_user[order]
    app_created = d.times_between(job_created[app_job - 1], now)
    app_status = d.pick(len(APP_STATUS), len(app_job), p=[0.5, 0.2, 0.1, 0.03, 0.12, 0.05])
    letters = [f"I would love to join as {t.lower()}; references on request." for t in JOB_TITLES]
    letter = d.pick(len(letters), len(app_job))

    # Conversations (distinct pairs) and their messages; message ids in time order.
    n_conv = max(1, p.messages // 4)
    a = d.rng.integers(1, n + 1, n_conv * 2)
    b = np.where(d.rng.random(len(a)) < 0.3, employer_ids[d.rng.integers(0, len(employer_ids), len(a))],
                 d.rng.integers(1, n + 1, len(a)))
    keep = a != b
    low, high = _unique_pairs(np.minimum(a, b)[keep], np.maximum(a, b)[keep], n + 1, n_conv, d)
    n_conv = len(low)
    msg_conv = np.concatenate((np.arange(n_conv), d.zipf_mix(n_conv, max(0, p.messages - n_conv), 0.6, 0.5)))
    msg_time = now - (d.rng.random(len(msg_conv)) * p.days * DAY_US).astype(np.int64)
    order = np.argsort(msg_time, kind="stable")
    msg_conv, msg_time = msg_conv[order], msg_time[order]
    first_msg = np.full(n_conv, len(msg_conv), np.int64)
    np.minimum.at(first_msg, msg_conv, np.arange(len(msg_conv)))
    conv_rank = np.empty(n_conv, np.int64)
    conv_rank[np.argsort(first_msg, kind="stable")] = np.arange(n_conv)  # conversation ids by first message
    conv_order = np.argsort(conv_rank)
    low, high, conv_created = low[conv_order], high[conv_order], msg_time[first_msg[conv_order]]
    msg_conv = conv_rank[msg_conv]  # now 0-based conversation id - 1
    msg_ids = np.arange(1, len(msg_conv) + 1, dtype=np.int64)
    from_low = d.rng.random(len(msg_conv)) < 0.5
    sender = np.where(from_low, low[msg_conv], high[msg_conv])
    recipient = np.where(from_low, high[msg_conv], low[msg_conv])
    msg_body = d.pick(len(MESSAGE_BODIES), len(msg_conv))
    last_msg = np.zeros(n_conv, np.int64)
    np.maximum.at(last_msg, msg_conv, msg_ids)
    read_low = np.where(d.rng.random(n_conv) < 0.7, last_msg, 0)
    read_high = np.where(d.rng.random(n_conv) < 0.7, last_msg, 0)
    conv_ids = np.arange(1, n_conv + 1, dtype=np.int64)
    mailbox = np.zeros(n + 1, np.int64)
    np.maximum.at(mailbox, sender, msg_ids)
    np.maximum.at(mailbox, recipient, msg_ids)
    mailbox_users = np.nonzero(mailbox)[0]

    hash_vocab, name_vocab = Vocab([password_hash]), Vocab(names)
    zeros = lambda k: np.zeros(k, np.int64)
    users = Table("users", ["id", "email", "password_hash", "name", "role", "headline", "bio", "location",
                            "created_at", "updated_at", "followers_count", "following_count", "posts_count"], [
        ("i8", ids), ("text", np.arange(n), Vocab(emails)), ("text", zeros(n), hash_vocab),
        ("text", np.arange(n), name_vocab), ("text", employer.astype(np.int64), Vocab(["seeker", "employer"])),
        ("text", headline, Vocab(headlines)), ("text", zeros(n), Vocab([""])), ("text", location, Vocab(ISLANDS)),
        ("ts", user_created), ("ts", user_created), ("i4", followers_count), ("i4", following_count),
        ("i4", posts_count)], n)
    follows = Table("follows", ["follower_id", "followee_id", "created_at"],
                    [("i8", follower), ("i8", followee), ("ts", follow_created)], len(follower), leaf=True)
    posts = Table("posts", ["id", "author_id", "body", "like_count", "created_at", "updated_at"], [
        ("i8", post_ids), ("i8", author), ("text", body, Vocab(bodies)), ("i4", like_count),
        ("ts", post_created), ("ts", post_created)], p.posts)
    likes = Table("likes", ["post_id", "user_id", "created_at"],
                  [("i8", like_post), ("i8", like_user), ("ts", like_created)], len(like_post), leaf=True)
    jobs = Table("jobs", ["id", "employer_id", "title", "company", "description", "location", "employment_type",
                          "remote", "salary_min", "salary_max", "currency", "status", "created_at", "updated_at",
                          "closed_at"], [
        ("i8", job_ids), ("i8", job_employer), ("text", job_title, Vocab(JOB_TITLES)),
        ("text", job_employer - 1, name_vocab),
        ("text", job_title * len(ISLANDS) * 3 + d.pick(len(ISLANDS) * 3, p.jobs), Vocab(descriptions)),
        ("text", d.pick(len(ISLANDS), p.jobs), Vocab(ISLANDS)),
        ("text", d.pick(len(EMPLOYMENT), p.jobs, p=[0.6, 0.15, 0.12, 0.05, 0.08]), Vocab(list(EMPLOYMENT))),
        ("bool", (d.rng.random(p.jobs) < 0.15).astype(np.uint8)),
        ("i4", np.ma.masked_array(salary_min, mask=~salary_known)),
        ("i4", np.ma.masked_array(salary_min + d.rng.integers(0, 30, p.jobs) * 1000, mask=~salary_known)),
        ("text", zeros(p.jobs), Vocab(["BSD"])), ("text", closed.astype(np.int64), Vocab(["open", "closed"])),
        ("ts", job_created), ("ts", np.ma.getdata(closed_at) * closed + job_created * ~closed),
        ("ts", closed_at)], p.jobs)
    applications = Table("applications", ["id", "job_id", "applicant_id", "cover_letter", "status", "created_at",
                                          "updated_at"], [
        ("i8", np.arange(1, len(app_job) + 1, dtype=np.int64)), ("i8", app_job), ("i8", app_user),
        ("text", letter, Vocab(letters)), ("text", app_status, Vocab(list(APP_STATUS))), ("ts", app_created),
        ("ts", app_created)], len(app_job), leaf=True)
    conversations = Table("conversations", ["id", "user_low", "user_high", "created_at"],
                          [("i8", conv_ids), ("i8", low), ("i8", high), ("ts", conv_created)], n_conv)
    messages = Table("messages", ["id", "conversation_id", "sender_id", "recipient_id", "body", "created_at"], [
        ("i8", msg_ids), ("i8", msg_conv + 1), ("i8", sender), ("i8", recipient),
        ("text", msg_body, Vocab(list(MESSAGE_BODIES))), ("ts", msg_time)], len(msg_ids), leaf=True)
    members = Table("conversation_members", ["conversation_id", "user_id", "peer_id", "last_message_id",
                                             "last_read_message_id"], [
        ("i8", np.repeat(conv_ids, 2)), ("i8", np.column_stack((low, high)).ravel()),
        ("i8", np.column_stack((high, low)).ravel()), ("i8", np.repeat(last_msg, 2)),
        ("i8", np.column_stack((read_low, read_high)).ravel())], 2 * n_conv, leaf=True)
    mailboxes = Table("mailboxes", ["user_id", "last_message_id"],
                      [("i8", mailbox_users.astype(np.int64)), ("i8", mailbox[mailbox_users])], len(mailbox_users),
                      leaf=True)
    return [[users], [follows, posts, jobs, conversations], [likes, applications, messages, members, mailboxes]]


# --- loading ----------------------------------------------------------------------------

SEQUENCES = ("users", "posts", "jobs", "applications", "conversations", "messages")


async def _connect(url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url)
    await conn.execute("SET maintenance_work_mem = '512MB'; SET synchronous_commit = off")
    try:
        # Skip per-row foreign-key triggers (the generator's rows are consistent by construction).
        await conn.execute("SET session_replication_role = replica")
    except asyncpg.InsufficientPrivilegeError:
        pass  # not a superuser: the checks run, the load is slower, the stage order keeps it valid
    return conn


async def _drop_indexes(conn: asyncpg.Connection, tables: list[str]) -> list[str]:
    """Drop the secondary indexes (not those behind a constraint); returns their definitions."""
    rows = await conn.fetch(
        """
        SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
        FROM pg_index i
        WHERE i.indrelid = ANY (SELECT c.oid FROM pg_class c WHERE c.relname = ANY($1::text[])
                                AND c.relnamespace = 'public'::regnamespace)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
        """,
        tables,
    )
    for r in rows:
        await conn.execute(f"DROP INDEX {r['name']}")
    return [r["def"].replace(" INDEX ", " INDEX IF NOT EXISTS ", 1) for r in rows]


async def _in_pairs(url: str, jobs: list[Callable[[asyncpg.Connection], object]], parallel: int = 2) -> None:
    queue = list(jobs)

    async def worker() -> None:
        conn = await _connect(url)
        try:
            while queue:
                await queue.pop(0)(conn)
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(min(parallel, len(queue)))))


def _copy(table: Table) -> Callable[[asyncpg.Connection], object]:
    async def run(conn: asyncpg.Connection) -> None:
        async with conn.transaction():
            if table.leaf:
                await conn.execute(f"TRUNCATE {table.name}")  # (empty already) what COPY FREEZE requires
            await conn.copy_to_table(table.name, source=table.chunks(), columns=table.names, format="binary",
                                     freeze=table.leaf)

    return run


async def _wait_replicas(primary: asyncpg.Connection, replica_urls: tuple[str, ...], timeout_s: float) -> None:
    """Return once every replica has replayed everything committed so far."""
    async with primary.transaction():
        # A synchronous commit with WAL of its own flushes all before it (the stack runs asynchronous commit).
        await primary.execute("SET LOCAL synchronous_commit = on")
        await primary.execute("SELECT pg_logical_emit_message(true, 'hmb_seed', 'loaded')")
    target = await primary.fetchval("SELECT pg_current_wal_lsn()")
    deadline = time.monotonic() + timeout_s
    for url in replica_urls:
        conn = await asyncpg.connect(url)
        try:
            while not await conn.fetchval("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", target):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"a replica has not replayed {target} within {timeout_s:.0f}s")
                await asyncio.sleep(0.2)
        finally:
            await conn.close()


async def generate(primary_url: str, replica_urls: tuple[str, ...], preset: Preset, seed: int,
                   anchor: datetime | None = None, echo: Callable[[str], None] = lambda _: None,
                   replica_timeout_s: float = 900) -> dict[str, int]:
    """Load the data set into an empty database; returns rows per table (plus `seconds`)."""
    started = time.perf_counter()
    anchor = anchor or datetime.now(UTC)
    password_hash = await asyncio.to_thread(HASHER.hash, PASSWORD)
    stages = await asyncio.to_thread(build, preset, seed, anchor, password_hash)
    tables = [t for stage in stages for t in stage]
    counts = {t.name: t.rows for t in tables}
    echo(f"generated {sum(counts.values()):,} rows in {time.perf_counter() - started:.1f}s")
    conn = await _connect(primary_url)
    try:
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM users)"):
            raise RuntimeError("the database already has users: load into an empty one (hmb seed --reset)")
        indexes = await _drop_indexes(conn, [t.name for t in tables])
        build_all = [lambda c, d=d: c.execute(d) for d in indexes]
        try:
            for stage in stages:
                mark = time.perf_counter()
                await _in_pairs(primary_url, [_copy(t) for t in sorted(stage, key=lambda t: -t.rows)])
                echo(f"copied {', '.join(t.name for t in stage)} in {time.perf_counter() - mark:.1f}s")
        except BaseException:
            with contextlib.suppress(Exception):  # put the schema back whatever the data
                await _in_pairs(primary_url, build_all)
            raise
        mark = time.perf_counter()
        await _in_pairs(primary_url, build_all)
        echo(f"built {len(indexes)} indexes in {time.perf_counter() - mark:.1f}s")
        for name in SEQUENCES:
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), GREATEST((SELECT max(id) FROM {name}), 1),"
                f" (SELECT count(*) > 0 FROM {name}))"
            )
        mark = time.perf_counter()
        # Frozen tables need only statistics; the others also get their visibility map (index-only scans).
        await _in_pairs(primary_url, [lambda c, t=t: c.execute(f"{'ANALYZE' if t.leaf else 'VACUUM (ANALYZE)'} {t.name}")
                                      for t in sorted(tables, key=lambda t: -t.rows)])
        echo(f"analyzed in {time.perf_counter() - mark:.1f}s")
        mark = time.perf_counter()
        await _wait_replicas(conn, replica_urls, replica_timeout_s)
        echo(f"replicas caught up in {time.perf_counter() - mark:.1f}s")
    finally:
        await conn.close()
    counts["seconds"] = round(time.perf_counter() - started)
    return counts


async def reset(primary_url: str) -> None:
    """Empty every application table (ids restart at 1)."""
    conn = await asyncpg.connect(primary_url)
    try:
        names = [r[0] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE '%yoyo%'")]
        if names:
            await conn.execute(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
