"""`python -m bench` (or `make bench`): hmb under wrk beside bare aiohttp yardsticks, on this machine.

Uses (or starts) the local stack in --dir, loads a generated data set if the database is
empty, starts `hmb serve` (production settings, loopback; once more with L1 off for the
Redis-only scenario) and the yardsticks under the same gunicorn worker, then runs each scenario in interleaved rounds (A, B, A, B...) so ratios come
from the same minutes. Prints, per scenario: req/s, p50/p95/p99, errors, the app's CPU µs per
request and who used the CPU (wrk, each worker, PostgreSQL, Redis, everything else); then
ratios, p99 at a paced 500 req/s, RSS per worker, and the feed query's plan. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import asyncpg

from bench import procs
from bench.paced import paced
from bench.prime import prime
from hmb.config import AuthSettings, Secret
from hmb.ops import migrate
from hmb.ops.stack import DEFAULT_DIR, Stack, free_port
from hmb.security import Tokens

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
HMB = [PY, "-c", "import sys; from hmb.ops.cli import main; sys.argv[0] = 'hmb'; main()"]
SECRET = secrets.token_urlsafe(48)

# (name, server, what it is compared with in the ratios)
ROUND = ["hello", "health", "trending", "job", "profile", "feed", "redis-bare", "job-l2", "uncached", "pg-bare"]
RATIOS = [
    ("health / bare hello", "health", "hello", 0.75),
    ("trending (L1) / health", "trending", "health", 0.90),
    ("job detail (L1) / health", "job", "health", 0.90),
    ("profile (L1) / health", "profile", "health", 0.90),
    ("feed p1 (auth, cached) / health", "feed", "health", 0.75),
    ("job detail from Redis (L1 off) / bare aiohttp+redis GET", "job-l2", "redis-bare", 0.80),
    ("uncached row via router / bare aiohttp+asyncpg", "uncached", "pg-bare", 0.80),
]
PRIMED = {"trending", "job", "profile", "feed", "job-l2"}  # the cached reads: bench.prime loads them first
PACED = ["health", "trending", "job", "profile", "feed", "uncached"]
WARM_WINDOWS = 10  # at most, in a warm-up until the rate stops rising
ROUND_WARM_S = 2  # an unrecorded window before each round's measured one
PACED_MIX_SHARE = 0.5  # of the closed-loop mix's req/s, for the paced mix
PACER_MAX_RATE = 2000  # bench.paced (aiohttp client) falls behind its schedule above ~3,000 req/s here


def lua_literal(value) -> str:
    if value is None:
        return "nil"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def write_requests(path: Path, groups: list[tuple[float, list[tuple]]]) -> Path:
    lines = ["return {"]
    for weight, reqs in groups:
        items = ", ".join("{" + ", ".join(lua_literal(v) for v in r) + "}" for r in reqs)
        lines.append(f"  {{weight = {weight}, reqs = {{{items}}}}},")
    lines.append("}")
    path.write_text("\n".join(lines))
    return path


async def prepare(primary_url: str, tokens: Tokens, seed: int) -> dict:
    """Who and what the scenarios touch: signed-in readers/writers, hot ids, random cold ids."""
    conn = await asyncpg.connect(primary_url)
    try:
        await conn.execute("SELECT setseed($1)", (seed % 1000) / 1000)
        users = await conn.fetchval("SELECT count(*) FROM users")
        # Readers and writers are different people: 500 people each posting every few seconds would
        # also invalidate their own feeds that often, and the "cached reads" would be ~35 % misses.
        people = await conn.fetch(
            "SELECT id, role FROM users WHERE following_count BETWEEN 20 AND 200 ORDER BY random() LIMIT 1000")
        sessions = await conn.fetch(
            "INSERT INTO auth_sessions (user_id) SELECT unnest($1::bigint[]) RETURNING id, user_id",
            [r["id"] for r in people])
        role = {r["id"]: r["role"] for r in people}
        signed_in = [(s["user_id"], f"Bearer {tokens.issue_access(s['user_id'], s['id'], role[s['user_id']])}")
                     for s in sessions]
        auth, writers = signed_in[:500], signed_in[500:]
        max_user = await conn.fetchval("SELECT max(id) FROM users")
        jobs = [r[0] for r in await conn.fetch("SELECT id FROM jobs ORDER BY random() LIMIT 100")]
        authors = [r[0] for r in await conn.fetch(
            "SELECT id FROM users TABLESAMPLE SYSTEM (5) WHERE posts_count > 0 LIMIT 5000")]
        heavy = await conn.fetchrow("SELECT id, following_count FROM users ORDER BY following_count DESC LIMIT 1")
        counts = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in ("follows", "posts", "likes", "jobs",
                                                                                 "applications", "messages")}
        top = await conn.fetchval("SELECT max(followers_count) FROM users")
    finally:
        await conn.close()
    rng = random.Random(seed)
    return {"users": users, "auth": auth, "writers": writers or auth, "jobs": jobs, "authors": authors or [1], "heavy": heavy,
            "hot_profiles": [rng.randint(1, max_user) for _ in range(100)],
            "cold_profiles": [rng.randint(1, max_user) for _ in range(20000)], "counts": counts, "top": top,
            "max_user": max_user}


def scenarios(d: dict) -> dict[str, tuple[str, list]]:
    json_h = {"Content-Type": "application/json"}
    auth = d["auth"]
    reqs = {
        "hello": [("GET", "/hello", None, None)],
        "health": [("GET", "/health", None, None)],
        "trending": [("GET", "/api/posts/trending", None, None)],
        "job": [("GET", f"/api/jobs/{j}", None, None) for j in d["jobs"]] or [("GET", "/api/posts/trending", None, None)],
        "profile": [("GET", f"/api/users/{u}", None, None) for u in d["hot_profiles"]],
        "feed": [("GET", "/api/posts/feed", {"Authorization": a}, None) for _, a in auth],
        # The same keys and values a Redis-only hit of job detail reads.
        "redis-bare": [("GET", f"/redis/hmb:v1:job:{j}", None, None) for j in d["jobs"]],
        "job-l2": [("GET", f"/api/jobs/{j}", None, None) for j in d["jobs"]],
        "uncached": [("GET", f"/api/posts?author_id={a}&limit=1", None, None) for a in d["authors"]],
        "pg-bare": [("GET", f"/pg/posts?author_id={a}", None, None) for a in d["authors"]],
        "cold-profile": [("GET", f"/api/users/{u}", None, None) for u in d["cold_profiles"]],
        "post": [("POST", "/api/posts", {"Authorization": a, **json_h}, json.dumps({"body": f"bench post {i}"}))
                 for i, (_, a) in enumerate(d["writers"])],
        "message": [("POST", "/api/messages", {"Authorization": a, **json_h},
                     json.dumps({"recipient_id": random.randint(1, d["max_user"]), "body": "bench hello"}))
                    for _, a in d["writers"]],
    }
    cached = [(15, reqs["trending"]), (20, reqs["job"]), (10, reqs["profile"]), (25, reqs["feed"])]
    uncached = [(10, reqs["uncached"]), (10, reqs["cold-profile"])]
    writes = [(7, reqs["post"]), (3, reqs["message"])]
    servers = {"hello": "yard", "redis-bare": "yard", "pg-bare": "yard", "job-l2": "l2"}
    out = {name: (servers.get(name, "app"), [(1, r)]) for name, r in reqs.items()}
    out["write"] = ("app", [(1, reqs["post"])])
    out["mix"] = ("app", cached + uncached + writes)
    return out


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.stack = Stack(args.dir)
        self.logs = Path(args.dir) / "bench"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.results: dict[str, list[dict]] = {}
        self.warm_errors = 0  # in the unrecorded (warm-up) windows
        self.procs: list[subprocess.Popen] = []

    def start(self) -> None:
        info = self.stack.up()
        migrate.apply(info.primary_url)
        self.info = info
        env = {**os.environ, **info.env(), "PYTHONPATH": str(ROOT)}
        if not asyncio.run(_count_users(info.primary_url)):
            print(f"empty database: loading --preset {self.args.preset}", flush=True)
            subprocess.run([*HMB, "seed", "--preset", self.args.preset], env=env, check=True, cwd=ROOT)
        self.app_port = free_port(set())
        self.yard_port = free_port({self.app_port})
        self.l2_port = free_port({self.app_port, self.yard_port})
        app_env = {**served_env(env, self.args.log_level), "REUSE_PORT": "1" if self.args.reuse_port else "0",
                   **dict(kv.split("=", 1) for kv in self.args.env)}
        self.app = self._spawn("hmb", [*HMB, "serve", "--host", "127.0.0.1", "--port", str(self.app_port),
                                       "--workers", str(self.args.workers)], app_env)
        yard_env = {**env, "YARDSTICK_PG_URL": info.replica_url}
        self.yard = self._spawn("yardstick", [str(Path(PY).with_name("gunicorn")), "-k", "aiohttp.GunicornUVLoopWebWorker",
                                              "-w", str(self.args.workers), "-b", f"127.0.0.1:{self.yard_port}",
                                              "--keep-alive", "75", *(["--reuse-port"] if self.args.reuse_port else []),
                                              "bench.yardstick:create_app"], yard_env)
        # The same service with L1 off: every cache hit is a Redis GET (the Redis-only scenario).
        self.l2 = self._spawn("hmb-l2", [*HMB, "serve", "--host", "127.0.0.1", "--port", str(self.l2_port),
                                         "--workers", str(self.args.workers)],
                              {**app_env, "CACHE_L1_MAX_ENTRIES": "0",
                               "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="hmb-bench-prom-")})
        wait_http(f"http://127.0.0.1:{self.app_port}/ready")
        wait_http(f"http://127.0.0.1:{self.l2_port}/ready")
        wait_http(f"http://127.0.0.1:{self.yard_port}/hello")
        pg = [procs.pidfile(self.stack.pgdir / n / "postmaster.pid") for n in ("primary", "replica")]
        redis = procs.pidfile(self.stack.redisdir / "redis.pid")
        self.groups = {"app": procs.Groups(self.app.pid, [p for p in pg if p], redis),
                       "yard": procs.Groups(self.yard.pid, [p for p in pg if p], redis),
                       "l2": procs.Groups(self.l2.pid, [p for p in pg if p], redis)}
        self.data = asyncio.run(prepare(info.primary_url, Tokens(AuthSettings(Secret(SECRET), access_ttl_s=7200)), self.args.seed))
        if not self.data["auth"] or not self.data["jobs"]:
            raise SystemExit(f"the database in {self.args.dir} is not a generated data set "
                             f"({self.data['users']:,} users): hmb seed --preset full --reset")
        self.scenarios = scenarios(self.data)

    def _spawn(self, name: str, argv: list[str], env: dict) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self, *procs: subprocess.Popen) -> None:
        """Stop `procs` (all the servers this bench started, by default)."""
        procs = procs or tuple(self.procs)
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()

    def wrk(self, name: str, seconds: float, record: bool = True) -> dict:
        """One wrk run of `name`: its figures (wrk's own only, when not recorded and printed)."""
        server, groups = self.scenarios[name]
        port = {"app": self.app_port, "yard": self.yard_port, "l2": self.l2_port}[server]
        spec = write_requests(self.logs / f"{name}.lua", groups)
        group = self.groups[server]
        before = group.snapshot()
        started = time.perf_counter()
        out = subprocess.run(
            ["wrk", f"-t{self.args.threads}", f"-c{self.args.connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
             "-s", str(ROOT / "bench" / "mix.lua"), f"http://127.0.0.1:{port}"],
            env={**os.environ, "BENCH_REQUESTS": str(spec)}, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - started
        after = group.snapshot()
        line = next(ln for ln in out.stdout.splitlines() if ln.startswith("BENCH "))
        r = json.loads(line[6:])
        r.update(name=name, rps=r["requests"] / (r["duration_us"] / 1e6),
                 errors=r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"])
        if not record:
            self.warm_errors += r["errors"]  # reported too: an error is an error, measured or not
            return r
        cpu = procs.split(before, after)
        r.update(
            app_us=cpu["app"] / max(1, r["requests"]) * 1e6, app_system_us=cpu["app_system"] / max(1, r["requests"]) * 1e6,
            cpu=cpu, wall=wall, load=os.getloadavg()[0],
        )
        self.results.setdefault(name, []).append(r)
        print(_row(r), flush=True)
        return r

    def warm(self, name: str, window_s: float = 3, most: int = WARM_WINDOWS) -> None:
        """Warm every worker's L1, the pools and L2 for `name`: windows of `window_s` until the rate
        stops rising. A fixed time is not enough on a slow machine: after L2 had expired, 5 s loaded
        only part of the 500 readers' feed pages, and the feed's first round read the rest from
        PostgreSQL (p95 648 ms against 18 ms in the second round). A cached read's pages are
        loaded once first, a few at a time (bench.prime says why)."""
        if name in PRIMED:
            server, groups = self.scenarios[name]
            port = {"app": self.app_port, "l2": self.l2_port}[server]
            self.warm_errors += asyncio.run(prime(f"http://127.0.0.1:{port}", [r for _, rs in groups for r in rs]))
        until_steady(lambda: self.wrk(name, window_s, record=False)["rps"], most)

    def settle_replica(self) -> None:
        """Wait until the replica has replayed every write so far. The write scenario commits
        ~1,700 posts a second, more than one replay process sharing the 2 cores keeps up with:
        a mix started at once found the replica 5 s behind, the router ejected it (as DESIGN §2
        says) and the primary served every read for 9 s (p95 896 ms, 7 timeouts). That measures
        the write run's backlog, not the mix."""
        started = time.perf_counter()
        self.stack.wait_replica_caught_up(timeout=300)
        self.replica_wait_s = time.perf_counter() - started
        print(f"replica caught up with the writes in {self.replica_wait_s:.1f} s", flush=True)

    def run(self) -> None:
        a = self.args
        print(f"data: {self.data['users']:,} users, " + ", ".join(f"{k} {v:,}" for k, v in self.data["counts"].items())
              + f"; most-followed account: {self.data['top']:,} followers", flush=True)
        print(f"machine: {cpu_model()}, {os.cpu_count()} cores; {interpreter()}", flush=True)
        print(f"load average before: {os.getloadavg()}; {a.workers} workers each, wrk -t{a.threads} -c{a.connections}, "
              f"{a.seconds:.0f} s x {a.rounds} rounds, reuse_port={a.reuse_port}, LOG_LEVEL={a.log_level}", flush=True)
        names = [n for n in ROUND if not a.only or n in a.only]
        for name in names:
            self.warm(name)
        print(_header(), flush=True)
        for i in range(a.rounds):
            # Every other round backwards (A B C, C B A, ...): the machine's speed drifts within
            # seconds, and a drift that is steady over two rounds then falls on each side of every
            # ratio alike. In one order only, a later scenario always met the later, drifted seconds.
            for name in names if i % 2 == 0 else names[::-1]:
                # A short unrecorded window first. A stale cached entry is recomputed when it is
                # next read, so the 500 readers' feed pages that went stale while other scenarios
                # ran were all recomputed in the feed's next measured window (PostgreSQL 1.7-1.9
                # CPU-seconds in it, the feed at 47-58 % of /health in that round against 63-90 %
                # in the others). In service, with readers reading throughout, those recomputes
                # are spread over the TTL: ~2 a second for 500 readers.
                self.wrk(name, ROUND_WARM_S, record=False)
                self.wrk(name, a.seconds)
        # The comparison servers (L1 off, the yardsticks) are done with: stopped, so that the
        # write and mix runs have the box to hmb alone. Left running, the idle L1-off pod still
        # takes every write's invalidation: 0.85 s of CPU in a 10 s mix, 4 % of the machine.
        self.stop(self.l2, self.yard)
        for name in ("write", "mix"):
            if not a.only or name in a.only:
                if name == "mix":
                    self.settle_replica()
                # Warmed like the others: the mix's first ~4 s after the single-endpoint runs are
                # a cold start (its 20,000 cold profiles, feeds the writes moved on) at 100-1,200
                # req/s with requests up to 1.7 s, then a steady 5,000-6,200 req/s.
                self.warm(name)
                self.wrk(name, a.seconds * (1.5 if name == "mix" else 1))
        self.rss = {w: procs.rss_mib(w) for w in self.groups["app"].workers()}
        if not a.skip_paced:
            self.paced = {}
            url = f"http://127.0.0.1:{self.app_port}"
            for name in PACED:
                if a.only and name not in a.only:
                    continue
                reqs = [(m, p, h or {}, b) for _, rs in self.scenarios[name][1] for m, p, h, b in rs]
                # Warmed 2 s first, like every closed-loop scenario: these runs follow the mix, whose
                # posts moved the feeds of readers who follow the writers, and an unwarmed feed run
                # measured reloading those pages (p99 61 ms in one run, 2.4-15 ms in others).
                asyncio.run(paced(url, reqs, a.rate, 2))
                self.paced[name] = asyncio.run(paced(url, reqs, a.rate, a.paced_seconds))
            if "mix" in self.results:  # the mix below saturation: half its closed-loop throughput, at
                # most PACER_MAX_RATE (this Python client's own ceiling sharing the 2 cores). The pacer
                # costs several times wrk's CPU a request: at 70 % (1,796 req/s on a machine whose wrk
                # mix ran 2,566) the box was past capacity, sending 1,486-1,592 with p50 0.75-1.1 s.
                groups = self.scenarios["mix"][1]
                rng = random.Random(a.seed)
                picks = rng.choices([rs for _, rs in groups], weights=[w for w, _ in groups], k=20_000)
                reqs = [(m, p, h or {}, b) for m, p, h, b in (rng.choice(rs) for rs in picks)]
                rate = min(PACED_MIX_SHARE * self.results["mix"][-1]["rps"], PACER_MAX_RATE)
                # Twice: first after the minute of single-endpoint runs (L1 entries past their
                # 30 s, the primary's idle connections closed: a cold start), then at once (warm).
                for state in ("cold", "warm"):
                    self.paced[f"mix at {rate:.0f} req/s, {state}"] = asyncio.run(paced(url, reqs, rate, a.paced_seconds))
        self.plan = asyncio.run(_feed_plan(self.info.replica_url, self.data["heavy"]["id"]))
        print(f"load average after: {os.getloadavg()}", flush=True)

    def report(self) -> str:
        out = ["", "| scenario | req/s | p50 ms | p95 ms | p99 ms | errors | app CPU µs/req (of it system) | CPU: load gen / app (per worker) / PostgreSQL / Redis / other | runs |",
               "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
        for name, runs in self.results.items():
            out.append(_md_row(name, runs))
        out += ["", "| ratio (same run, interleaved rounds) | req/s ratio | ± 2 SE | rounds: lowest–highest | app-CPU ratio | target | verdict (req/s ratio) |",
                "|---|---:|---:|---:|---:|---:|---|"]
        for label, a, b, target in RATIOS:
            if a in self.results and b in self.results:
                rounds = _ratios(self.results[a], self.results[b])
                value = statistics.mean(rounds)
                # Two standard errors of that mean (~95 %): a target inside mean ± this is neither met
                # nor missed by this run, only by more rounds (the error falls as 1/sqrt(rounds)).
                margin = 2 * statistics.stdev(rounds) / len(rounds) ** 0.5 if len(rounds) > 1 else float("nan")
                # B's app CPU per request over A's: the throughput ratio the app alone would give on
                # cores of its own, unmoved by neighbours' load (see the "other" CPU share above).
                cpu = statistics.mean(r["app_us"] for r in self.results[b]) / statistics.mean(
                    r["app_us"] for r in self.results[a])
                out.append(f"| {label} | {value:.0%} | {margin:.0%} | {min(rounds):.0%}–{max(rounds):.0%} | {cpu:.0%} "
                           f"{'✓' if cpu >= target else '✗'} | ≥ {target:.0%} | {verdict(value, margin, target)} |")
        if getattr(self, "paced", None):
            out += ["", f"| paced {self.args.rate:.0f} req/s unless named, {self.args.paced_seconds:.0f} s (open loop) | achieved | p50 ms | p95 ms | p99 ms | max ms | errors |",
                    "|---|---:|---:|---:|---:|---:|---:|"]
            for name, p in self.paced.items():
                out.append(f"| {name} | {p['rate']:.0f} | {p['p50']:.2f} | {p['p95']:.2f} | {p['p99']:.2f} | {p['max']:.1f} | {p['errors']} |")
        out += ["", f"Errors in the unrecorded warm-up windows: {self.warm_errors}"]
        if hasattr(self, "replica_wait_s"):
            out += ["", f"Replica replay caught up with the write run's posts {self.replica_wait_s:.1f} s after it ended"]
        out += ["", "RSS per worker after the mix: " + ", ".join(f"{v:.0f} MiB" for v in self.rss.values()),
                "", f"Feed page 1 (user {self.data['heavy']['id']}, following {self.data['heavy']['following_count']}), EXPLAIN (ANALYZE, BUFFERS) on the replica:",
                "```", self.plan, "```"]
        return "\n".join(out)


async def _count_users(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT count(*) FROM users")
    finally:
        await conn.close()


async def _feed_plan(url: str, user_id: int) -> str:
    from hmb.store import posts

    conn = await asyncpg.connect(url)
    try:
        recorder = _Recorder()  # the query text lives in hmb.store.posts.feed: capture it, don't copy it
        await posts.feed(recorder, user_id, None, 21)
        cold = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + recorder.sql, *recorder.args)
        rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + recorder.sql, *recorder.args)
        return "\n".join([f"first run: {cold[-1][0]}", *(r[0] for r in rows)])
    finally:
        await conn.close()


class _Recorder:
    async def fetch(self, sql: str, *args):
        self.sql, self.args = sql, args
        return []


def cpu_model() -> str:
    """The CPU as /proc/cpuinfo names it, with its family and model (a VM's name alone is often
    just the vendor's: "AMD EPYC" has covered machines 1.8x apart in these runs)."""
    info = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        name, _, value = line.partition(":")
        info.setdefault(name.strip(), value.strip())  # the first core's
    return (f"{info.get('model name', '?')} (family {info.get('cpu family', '?')}, model {info.get('model', '?')}, "
            f"{info.get('cpu MHz', '?')} MHz)")


def interpreter() -> str:
    """The Python serving every scenario (the bench's own). Its build moves absolute figures:
    on one machine Debian's 3.11, libpython linked into the executable, used 7-21 % less CPU a
    request than pyenv's, a shared libpython (docs/performance-history.md); ratios held."""
    shared = "libpython" in Path("/proc/self/maps").read_text()
    return (f"Python {platform.python_version()} at {sys.executable} "
            f"(libpython {'a shared library' if shared else 'in the executable'})")


def served_env(env: dict, log_level: str) -> dict:
    """hmb's settings under the bench: production, tokens signed with SECRET, one pod."""
    return {**env, "ENVIRONMENT": "production", "SECRET_KEY": SECRET, "ACCESS_TOKEN_TTL_S": "7200",
            "LOG_LEVEL": log_level, "MAX_PODS": "1",
            # wrk replays a few hundred users at thousands of req/s: lift the per-sender limit.
            "MESSAGES_PER_MIN": "1000000",
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="hmb-bench-prom-")}


def until_steady(window: Callable[[], float], most: int = WARM_WINDOWS) -> None:
    """Run `window` (a warm-up window, giving its rate) until the rate rises by less than 10 %."""
    rate = 0.0
    for _ in range(most):
        previous, rate = rate, window()
        if rate < previous * 1.1:
            return


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer 200 within {timeout}s; see var/bench/*.log")
        time.sleep(0.3)


def _header() -> str:
    return f"{'scenario':<14}{'req/s':>9}{'p50':>8}{'p95':>8}{'p99':>8}{'err':>5}{'µs/req':>8}{'(sys)':>6}  cpu s: wrk / app (workers) / pg / redis / other   load"


def _row(r: dict) -> str:
    c = r["cpu"]
    workers = "+".join(f"{v:.1f}" for v in c["workers"].values())
    return (f"{r['name']:<14}{r['rps']:>9.0f}{r['p50'] / 1e3:>8.2f}{r['p95'] / 1e3:>8.2f}{r['p99'] / 1e3:>8.2f}"
            f"{r['errors']:>5}{r['app_us']:>8.0f}{r['app_system_us']:>6.0f}  {c['load']:.1f} / {c['app']:.1f} ({workers}) / {c['postgres']:.1f}"
            f" / {c['redis']:.1f} / {c['other']:.1f}   {r['load']:.2f}")


def _md_row(name: str, runs: list[dict]) -> str:
    mean = lambda k: statistics.mean(r[k] for r in runs)
    cpu = lambda k: sum(r["cpu"][k] for r in runs)
    total = sum(cpu(k) for k in ("load", "app", "postgres", "redis", "other")) or 1
    shares = {}
    for r in runs:
        for i, v in enumerate(r["cpu"]["workers"].values()):
            shares[i] = shares.get(i, 0) + v
    workers = "/".join(f"{v / (cpu('app') or 1):.0%}" for v in shares.values())
    return (f"| {name} | {mean('rps'):,.0f} | {mean('p50') / 1e3:.2f} | {mean('p95') / 1e3:.2f} | {mean('p99') / 1e3:.2f} "
            f"| {sum(r['errors'] for r in runs)} | {mean('app_us'):.0f} ({mean('app_system_us'):.0f}) | {cpu('load') / total:.0%} / "
            f"{cpu('app') / total:.0%} ({workers}) / {cpu('postgres') / total:.0%} / {cpu('redis') / total:.0%} / "
            f"{cpu('other') / total:.0%} | {len(runs)} |")


def verdict(value: float, margin: float, target: float) -> str:
    """Met or missed only when the whole interval (mean ± 2 SE) is on one side of the target;
    a mean a hair over it, with the target inside the interval, is "on it": more rounds decide."""
    if math.isnan(margin):
        return "one round: no interval"
    if value - margin >= target:
        return "met"
    if value + margin < target:
        return "missed"
    return "on it (over)" if value >= target else "on it (under)"


def _ratios(a: list[dict], b: list[dict]) -> list[float]:
    """Per-round ratios: round i of A against round i of B, the same minutes. The report gives their
    mean and their spread, which on a shared machine is the figure's real precision."""
    return [x["rps"] / y["rps"] for x, y in zip(a, b)]


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", default=str(DEFAULT_DIR), help="the stack's directory (hmb up's by default)")
    p.add_argument("--preset", default="full", help="data set to load when the database is empty (full: 1M users, ~6 min)")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the read scenarios")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=1, help="wrk threads (it shares the 2 cores)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    p.add_argument("--rate", type=float, default=500, help="paced runs: requests per second")
    p.add_argument("--paced-seconds", type=float, default=10)
    p.add_argument("--skip-paced", action="store_true")
    p.add_argument("--log-level", default="INFO", help="hmb's LOG_LEVEL (INFO: one access-log line per request)")
    p.add_argument("--no-reuse-port", dest="reuse_port", action="store_false",
                   help="keep gunicorn's shared listening socket (one worker may accept a whole burst)")
    p.add_argument("--env", action="append", default=[], help="extra NAME=VALUE for hmb serve (A/B of a setting)")
    p.add_argument("--only", nargs="*", help="scenario names to run")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", help="also write every run's figures here")
    args = p.parse_args()
    bench = Bench(args)
    try:
        bench.start()
        bench.run()
        print(bench.report())
        if args.json:
            Path(args.json).write_text(json.dumps({"results": bench.results, "paced": getattr(bench, "paced", None)},
                                                  default=str, indent=1))
    finally:
        bench.stop()


if __name__ == "__main__":
    main()
