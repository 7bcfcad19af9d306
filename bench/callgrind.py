"""`python -m bench.callgrind [scenario ...]`: instructions per request under callgrind, by hand.

Wall-clock figures drift 10-30 % between runs on a shared 2-core machine; most windows'
instruction counts repeat to ~1 %. This serves hmb (or, for `hello`, the bare aiohttp yardstick)
in one process under `valgrind --tool=callgrind`, drives each scenario with wrk (8 connections:
valgrind serves a few hundred requests a second), and prints the instructions per request of a
measured window minus those of an idle window as long (the workers' background tasks: ~1.6M a
second, several thousand a request at these rates). Now and then a window holds background
work that the idle one did not, up to +6 %: each count is the least of --repeat windows, and
the idle one the least of as many. Uses (or starts) the stack in --dir and its data set, as
`python -m bench` does; run that first to load one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.__main__ import ROOT, SECRET, prepare, scenarios, served_env, until_steady, wait_http, write_requests
from hmb.config import AuthSettings, Secret
from hmb.ops import migrate
from hmb.ops.stack import DEFAULT_DIR, Stack, free_port
from hmb.security import Tokens

# What `hello` (the bare aiohttp yardstick) is compared with; every other scenario is hmb's.
YARDSTICK = {"hello"}
DEFAULT = ["hello", "health", "trending", "job", "profile", "feed"]
# Under valgrind a few hundred requests a second: with the bench's 500 readers every feed read
# would refresh its generation from Redis (each worker trusts its copy 1 s), against ~5 % of
# reads in the bench. Ten readers keep that share.
READERS = {"feed": 10}


def serve(app: str, port: int) -> None:
    """The app in this one process, as gunicorn's aiohttp worker runs it (uvloop, no access logger of aiohttp's)."""
    import importlib

    import uvloop
    from aiohttp import web

    from hmb.logs import setup_logging

    setup_logging(os.environ.get("LOG_LEVEL", "INFO"))
    uvloop.install()
    module, _, factory = app.partition(":")
    web.run_app(getattr(importlib.import_module(module), factory)(), host="127.0.0.1", port=port,
                access_log=None, print=None)


class Callgrind:
    """One app under callgrind; `count` returns the instructions it ran in a window."""

    def __init__(self, app: str, env: dict, out: Path):
        self.port = free_port(set())
        self.out = out
        self.proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg.%p", "--dump-instr=no", "--collect-jumps=no",
             sys.executable, "-m", "bench.callgrind", "--serve", app, str(self.port)],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        # Start-up under valgrind takes tens of seconds.
        wait_http(f"http://127.0.0.1:{self.port}/{'health' if app.startswith('hmb') else 'hello'}", timeout=300)

    def count(self, during) -> int:
        """Instructions run while `during()` runs."""
        subprocess.run(["callgrind_control", "-z", str(self.proc.pid)], check=True, capture_output=True)
        during()
        subprocess.run(["callgrind_control", "-d", str(self.proc.pid)], check=True, capture_output=True)
        dump = max(self.out.glob("cg.*"), key=lambda p: p.stat().st_mtime)  # each dump is a new file
        for line in dump.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
        raise SystemExit(f"no totals in {dump}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def wrk(port: int, spec: Path, seconds: float) -> int:
    """Requests completed by wrk in `seconds` (the bench's weighted-mix script)."""
    out = subprocess.run(["wrk", "-t1", "-c8", f"-d{max(1, round(seconds))}s", "-s", str(ROOT / "bench" / "mix.lua"),
                          f"http://127.0.0.1:{port}"],
                         env={**os.environ, "BENCH_REQUESTS": str(spec)}, capture_output=True, text=True, check=True)
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("BENCH "))
    return int(line.split('"requests": ')[1].split(",")[0])


def one_process(directory: str, tool: str) -> tuple[dict, dict, Path]:
    """What a one-process tool (this one, bench.perf) starts from: the bench's scenarios over the
    data set of the stack in `directory` (brought up), the served app's environment and a scratch
    directory."""
    info = Stack(directory).up()
    migrate.apply(info.primary_url)
    data = asyncio.run(prepare(info.primary_url, Tokens(AuthSettings(Secret(SECRET), access_ttl_s=7200)), 1))
    if not data["auth"]:
        raise SystemExit(f"no generated data set in {directory}: run python -m bench --dir {directory} first (it loads one)")
    env = {**served_env({**os.environ, **info.env(), "PYTHONPATH": str(ROOT)}, "INFO"), "YARDSTICK_PG_URL": info.replica_url}
    return scenarios(data), env, Path(tempfile.mkdtemp(prefix=f"hmb-{tool}-"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenarios", nargs="*", default=DEFAULT)
    p.add_argument("--dir", default=str(DEFAULT_DIR), help="the stack's directory (python -m bench's)")
    p.add_argument("--seconds", type=float, default=6, help="each measured window (and each idle one)")
    p.add_argument("--repeat", type=int, default=3, help="measured windows a scenario (and idle windows): the least is kept")
    p.add_argument("--serve", nargs=2, metavar=("APP", "PORT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        return serve(args.serve[0], int(args.serve[1]))

    table, env, out = one_process(args.dir, "callgrind")
    # Valgrind runs the loop ~50x slower: a reply queued behind a few requests would pass
    # the guard's 0.25 s, open the breaker and turn cached reads into database reads.
    env["REDIS_TIMEOUT_S"] = "5"
    # Every L1 entry is re-read from Redis 30 s after it was loaded: the hundred job details loaded
    # together would all be re-read in one measured window or none, moving job's count by thousands
    # of instructions between runs. Under valgrind's few hundred requests a second that is not the
    # hit path being counted; the wall-clock bench keeps the 30 s.
    env["CACHE_L1_TTL_S"] = "3600"
    print(f"{'scenario':<12}{'requests':>10}{'instructions/request':>24}{'windows: least-most':>24}"
          f"  (net of the least of {args.repeat} idle {args.seconds:.0f} s windows)")
    for app, names in (("bench.yardstick:create_app", [n for n in args.scenarios if n in YARDSTICK]),
                       ("hmb.app:create_app", [n for n in args.scenarios if n not in YARDSTICK])):
        if not names:
            continue
        server = Callgrind(app, env, out)
        try:
            # Background work (the replica monitor, the heartbeat, a pool's reconnection, a garbage
            # collection) only ever adds instructions to a window, and in one window of several it
            # added 13k a request (job detail at 236.6k where its other windows gave 223.3-224.1k):
            # the least of a few windows is the request path's count.
            idle = min(server.count(lambda: time.sleep(args.seconds)) for _ in range(args.repeat))
            for name in names:
                groups = [(w, reqs[: READERS.get(name, len(reqs))]) for w, reqs in table[name][1]]
                spec = write_requests(out / f"{name}.lua", groups)
                # Load L1, the pools and the generations' copies (under valgrind the first reads
                # of a hundred jobs from the database take several 3 s windows).
                until_steady(lambda: wrk(server.port, spec, 3))  # noqa: B023 - called at once
                windows = []  # (instructions a request, requests)
                for _ in range(args.repeat):
                    done: list[int] = []
                    total = server.count(lambda: done.append(wrk(server.port, spec, args.seconds)))  # noqa: B023
                    windows.append(((total - idle) // max(1, done[0]), done[0]))
                least, requests = min(windows)
                spread = f"{least:,}-{max(windows)[0]:,}"
                print(f"{name:<12}{requests:>10,}{least:>24,}{spread:>24}", flush=True)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
