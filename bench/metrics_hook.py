"""What the metrics hook costs a request: `python bench/metrics_hook.py` (single-process and multiprocess mode).

Prints nanoseconds per request for the tally (finished(), given the access log's batches of 64
records: plain-Python tallies), and for the sync into Prometheus that a heartbeat or a scrape
does (per 1,000 requests tallied).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

CODE = """
from hmb.ops.metrics import Metrics
m = Metrics()
routes = [("users.get", 200), ("posts.feed", 200), ("auth.login", 401), ("jobs.search", 200)]
batch = [(0.0, "id", "GET", "/p", *routes[i & 3], 0.0123, None, "127.0.0.1") for i in range(64)]
def one():
    m.finished(batch)
def sync():
    for _ in range(1000 // 64):
        one()
    m.sample(None, None, None)
n = 5_000
import timeit
best = min(timeit.repeat(one, number=n, repeat=5)) / n / 64
synced = min(timeit.repeat(sync, number=50, repeat=3)) / 50 / (1000 // 64 * 64)
print(f"{'multiprocess' if m.directory else 'single-process'}: finished() {best * 1e9:.0f} ns per request; "
      f"with the sync every 1,000 requests {synced * 1e9:.0f} ns")
"""

if __name__ == "__main__":
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    subprocess.run([sys.executable, "-c", CODE], env=env, check=True)
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.executable, "-c", CODE], env={**env, "PROMETHEUS_MULTIPROC_DIR": d}, check=True)
