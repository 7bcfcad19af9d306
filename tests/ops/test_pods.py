"""Two real pods (`hmb serve`, gunicorn, 2 workers each): heartbeats, one-scrape /metrics, a killed pod."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hmb.ops.stack import free_port
from hmb.ops.status import collect
from tests.conftest import TEST_ENV, wait_for

INTERVAL_S, TTL_S = 0.25, 1.5
FAST = {"HEARTBEAT_INTERVAL_S": str(INTERVAL_S), "HEARTBEAT_TTL_S": str(TTL_S)}


def start_pod(stack, pod_id: str, port: int, metrics_dir) -> subprocess.Popen:
    env = {
        **os.environ, **TEST_ENV, **stack.env(), **FAST,
        "POD_ID": pod_id, "PORT": str(port), "WEB_CONCURRENCY": "2", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    # Its own process group: SIGKILL to the group is a pod dying, master and workers at once.
    return subprocess.Popen(
        [sys.executable, "-m", "hmb", "serve", "--port", str(port)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


async def hmb_status(stack) -> tuple[int, dict]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hmb", "status", "--json",
        env={**os.environ, **TEST_ENV, **stack.env(), **FAST}, stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    return proc.returncode, json.loads(out)


async def drive(session: aiohttp.ClientSession, port: int, n: int) -> int:
    """n GETs of /health on fresh connections, 8 at a time, so both workers accept some."""
    sem = asyncio.Semaphore(8)

    async def one() -> None:
        async with sem, session.get(f"http://127.0.0.1:{port}/health") as resp:
            assert resp.status == 200

    await asyncio.gather(*(one() for _ in range(n)))
    return n


async def _equals(value, expected) -> bool:
    return await value == expected


def health_requests(text: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "hmb_http_requests_total" and s.labels["route"] == "probes.health":
                total += s.value
    return total


@pytest.mark.faults
async def test_two_pods_status_metrics_and_a_killed_pod(stack, settings, tmp_path):
    ports = {"pod-a": free_port(set()), "pod-b": 0}
    ports["pod-b"] = free_port({ports["pod-a"]})
    pods = {pod: start_pod(stack, pod, port, tmp_path / pod) for pod, port in ports.items()}
    view = settings.with_(ops=settings.ops.__class__(INTERVAL_S, TTL_S, 60.0))
    try:
        async def workers_up():
            snap = await collect(view)
            return sorted((p.id, p.live_workers) for p in snap.pods) == [("pod-a", 2), ("pod-b", 2)]

        await wait_for(workers_up, timeout=20, interval=0.1)

        sent = {"pod-a": 0, "pod-b": 0}
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def every_worker_served():
                for pod, port in ports.items():
                    sent[pod] += await drive(session, port, 40)
                snap = await collect(view)
                return all(w["requests"] > 0 for p in snap.pods for w in p.workers)

            await wait_for(every_worker_served, timeout=10, interval=0.1)

            async def scrape() -> float:
                async with session.get(f"http://127.0.0.1:{ports['pod-a']}/metrics") as resp:
                    return health_requests(await resp.text())

            # One scrape, one worker answering it, yet it counts every request both workers served:
            # the other worker's as of its last beat (requests are tallied in plain ints between beats).
            scraped = await scrape()
            assert scraped <= sent["pod-a"]
            await wait_for(lambda: _equals(scrape(), sent["pod-a"]), timeout=3 * INTERVAL_S + 2, interval=0.05)
            scraped = await scrape()
        assert scraped == sent["pod-a"]

        code, report = await hmb_status(stack)
        assert code == 0, report["problems"]
        assert [p["id"] for p in report["pods"]] == ["pod-a", "pod-b"]
        workers = [w for p in report["pods"] for w in p["workers"]]
        assert len(workers) == 4 and all(w["state"] == "ready" and w["requests"] > 0 for w in workers)
        by_pod = {p["id"]: p for p in report["pods"]}  # counts as of each worker's last beat
        print(f"\npod-a: {sent['pod-a']} requests sent, /metrics counted {scraped:.0f}; "
              f"per worker {[w['requests'] for w in by_pod['pod-a']['workers']]}")

        killed_at = time.monotonic()
        stop(pods["pod-b"], signal.SIGKILL)

        async def pod_b_stale():
            code, report = await hmb_status(stack)
            states = {p["id"]: p["state"] for p in report["pods"]}
            return code == 2 and states == {"pod-a": "healthy", "pod-b": "stale"} and report

        await wait_for(pod_b_stale, timeout=TTL_S + 5, interval=0.05)
        elapsed = time.monotonic() - killed_at
        report = await pod_b_stale()
        assert any(p.startswith("pod pod-b: stale") for p in report["problems"])
        print(f"pod-b killed: status said stale and exited 2 after {elapsed:.2f}s (TTL {TTL_S}s)")
        # Detection needs the TTL to pass, plus one status run (~0.3 s) of polling granularity.
        assert elapsed < TTL_S + 1.5
    finally:
        for proc in pods.values():
            stop(proc)
