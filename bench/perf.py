"""`python -m bench.perf [scenario ...]`: where one worker's time goes, by C function, in µs a request.

`bench.callgrind` counts instructions; this measures time. It serves the app in one process
(as bench.callgrind does: uvloop, access log on), drives each scenario with wrk at the bench's
64 connections, and samples the process with `perf record -e cpu-clock`: a software clock, so
it needs none of the hardware counters these VMs lack, and it sees kernel and C frames (not
Python functions: the interpreter's loop is one symbol). It prints each scenario's CPU a request
split into the kernel, libpython and the rest, its costliest functions, and each function's
difference from the first scenario named. Uses the stack and data set of `python -m bench`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.__main__ import ROOT, until_steady, wait_http, write_requests
from bench.callgrind import YARDSTICK, one_process
from hmb.ops.stack import DEFAULT_DIR, free_port

HZ = 4999  # samples a second: ~40,000 in an 8 s window, a 0.1 µs function still shows
TOP = 12


def start_wrk(port: int, spec: Path, seconds: float) -> subprocess.Popen:
    """wrk at the bench's 64 connections, running the bench's weighted-mix script over `spec`."""
    argv = ["wrk", "-t1", "-c64", f"-d{max(1, round(seconds))}s", "-s", str(ROOT / "bench" / "mix.lua"),
            f"http://127.0.0.1:{port}"]
    return subprocess.Popen(argv, env={**os.environ, "BENCH_REQUESTS": str(spec)}, stdout=subprocess.PIPE, text=True)


def figures(proc: subprocess.Popen) -> dict:
    """A finished wrk's BENCH line, with its rate."""
    out = proc.communicate()[0]
    if proc.returncode:
        raise SystemExit(f"wrk failed ({proc.returncode})")
    r = json.loads(next(ln for ln in out.splitlines() if ln.startswith("BENCH "))[6:])
    return {**r, "rps": r["requests"] / (r["duration_us"] / 1e6)}


def record(pid: int, port: int, spec: Path, seconds: float, out: Path) -> tuple[float, dict[str, int]]:
    """req/s and samples by "dso symbol" over `seconds` of wrk load (wrk runs 1 s either side)."""
    load = start_wrk(port, spec, seconds + 2)
    try:
        time.sleep(1)
        subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", str(HZ), "-p", str(pid), "-o", str(out),
                        "--", "sleep", str(seconds)], check=True, capture_output=True)
    except BaseException:
        load.kill()  # no wrk left loading the next scenario's server
        load.wait()
        raise
    rps = figures(load)["rps"]
    report = subprocess.run(["perf", "report", "-i", str(out), "-n", "-q", "--stdio", "--sort", "dso,sym"],
                            check=True, capture_output=True, text=True).stdout
    samples: dict[str, int] = {}
    for line in report.splitlines():
        fields = line.split(None, 2)  # "58.95%", "23456", "libpython3.11.so.1.0  [.] _PyEval_EvalFrameDefault"
        if len(fields) == 3 and fields[0].endswith("%") and fields[1].isdigit():
            samples[" ".join(fields[2].split())] = int(fields[1])
    return rps, samples


def per_request(samples: dict[str, int], rps: float, seconds: float) -> dict[str, float]:
    """µs of the worker's CPU a request, by function."""
    scale = 1e6 / HZ / (rps * seconds)
    return {name: n * scale for name, n in samples.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenarios", nargs="*", default=["health", "job"])
    p.add_argument("--dir", default=str(DEFAULT_DIR), help="the stack's directory (python -m bench's)")
    p.add_argument("--seconds", type=float, default=8, help="each sampled window")
    args = p.parse_args()
    if not shutil.which("perf"):
        raise SystemExit("perf is not installed: ./scripts/system-deps.sh bench (Debian's linux-perf)")
    table, env, out = one_process(args.dir, "perf")
    costs: dict[str, dict[str, float]] = {}
    for name in args.scenarios:
        app = "bench.yardstick:create_app" if name in YARDSTICK else "hmb.app:create_app"
        port = free_port(set())
        server = subprocess.Popen([sys.executable, "-m", "bench.callgrind", "--serve", app, str(port)], env=env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_http(f"http://127.0.0.1:{port}/{'hello' if name in YARDSTICK else 'health'}")
            spec = write_requests(out / f"{name}.lua", table[name][1])
            until_steady(lambda: figures(start_wrk(port, spec, 3))["rps"])  # noqa: B023 - called at once
            rps, samples = record(server.pid, port, spec, args.seconds, out / f"{name}.data")
        finally:
            server.terminate()
            server.wait(timeout=60)
        cost = costs[name] = per_request(samples, rps, args.seconds)
        kernel = sum(v for k, v in cost.items() if k.startswith("[kernel"))
        python = sum(v for k, v in cost.items() if k.startswith("libpython"))
        busy = sum(samples.values()) / HZ / args.seconds
        print(f"\n{name}: {rps:,.0f} req/s, {sum(cost.values()):.1f} µs of CPU a request (kernel {kernel:.1f}, "
              f"libpython {python:.1f}, other {sum(cost.values()) - kernel - python:.1f}); the worker busy {busy:.0%}")
        for symbol, us in sorted(cost.items(), key=lambda kv: -kv[1])[:TOP]:
            print(f"  {us:6.2f}  {symbol}")
    first = args.scenarios[0]
    for name in args.scenarios[1:]:
        a, b = costs[first], costs[name]
        print(f"\n{name} minus {first}: {sum(b.values()) - sum(a.values()):+.1f} µs a request; the largest differences:")
        diffs = {k: b.get(k, 0.0) - a.get(k, 0.0) for k in a.keys() | b.keys()}
        for symbol, us in sorted(diffs.items(), key=lambda kv: -abs(kv[1]))[:TOP]:
            print(f"  {us:+6.2f}  {symbol}")


if __name__ == "__main__":
    main()
