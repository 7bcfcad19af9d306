"""/metrics (Prometheus text), the mergeable latency histogram, and the query-timing hook."""

from __future__ import annotations

import bisect
import random

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from hmb.appkeys import METRICS
from hmb.ops.metrics import HTTP_BUCKETS, LogHistogram, observe_many
from hmb.ops.serve import default_metrics_dir
from tests.factories import register


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(series: dict, name: str, **labels: str) -> float | None:
    return series.get((name, tuple(sorted(labels.items()))))


async def test_metrics_counts_requests_by_route_method_and_status(client):
    for _ in range(3):
        assert (await client.get("/health")).status == 200
    assert (await client.get("/api/users/999")).status == 404
    assert (await client.get("/wp-login.php")).status == 404  # unrouted: one shared label
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    series = samples(await resp.text())
    assert value(series, "hmb_http_requests_total", route="probes.health", method="GET", status="200") == 3
    assert value(series, "hmb_http_requests_total", route="users.get", method="GET", status="404") == 1
    assert value(series, "hmb_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert value(series, "hmb_http_request_duration_seconds_count", route="probes.health") == 3
    assert value(series, "hmb_http_request_duration_seconds_bucket", route="probes.health", le="+Inf") == 3
    assert value(series, "hmb_http_in_flight") == 1  # the scrape itself


def test_observe_many_is_observe_per_value():
    """The bulk path writes prometheus_client's internal per-bucket values: same exposition as observe()."""
    values = [random.choice([0.0001, 0.004, 0.005, 0.0051, 0.3, 2.0, 11.0]) for _ in range(200)]
    one_by_one, bulk = (Histogram("h", "h", ["route"], buckets=HTTP_BUCKETS, registry=CollectorRegistry())
                        for _ in range(2))
    for v in values:
        one_by_one.labels("r").observe(v)
    buckets = [0] * (len(HTTP_BUCKETS) + 1)
    for v in values:
        buckets[bisect.bisect_left(HTTP_BUCKETS, v)] += 1
    observe_many(bulk.labels("r"), buckets, sum(values))
    def shown(histogram) -> list:
        return [(s.name, s.labels, s.value) for s in histogram.collect()[0].samples if not s.name.endswith("_created")]

    assert shown(one_by_one) == shown(bulk)


async def test_metrics_show_pools_replicas_cache_and_breaker(client):
    assert (await client.get("/api/users/1")).status == 404  # a cache miss, then a replica read
    series = samples(await (await client.get("/metrics")).text())
    for node in ("primary", "replica-1"):
        assert value(series, "hmb_db_pool_max_connections", node=node) == 8
        assert value(series, "hmb_db_pool_connections", node=node, state="in_use") == 0
        assert value(series, "hmb_db_pool_waiting", node=node) == 0
    assert value(series, "hmb_replica_in_use", replica="replica-1") == 1
    assert value(series, "hmb_replica_lag_seconds", replica="replica-1") is not None
    assert value(series, "hmb_replica_lag_bytes", replica="replica-1") is not None
    assert value(series, "hmb_cache_requests_total", namespace="user", level="l1", outcome="miss") == 1
    assert value(series, "hmb_cache_requests_total", namespace="user", level="l2", outcome="miss") == 1
    assert value(series, "hmb_redis_breaker_open") == 0
    assert value(series, "hmb_db_queries_total", query="get_public") == 1
    assert value(series, "hmb_db_query_seconds_total", query="get_public") > 0


async def test_query_timer_names_reads_by_function_and_writes_by_caller(client):
    user = await register(client)
    resp = await client.patch("/api/users/me", json={"headline": "Diver"}, headers=user["headers"])
    assert resp.status == 200
    assert (await client.get(f"/api/users/{user['user']['id']}")).status == 200
    queries = client.app[METRICS].stats.queries
    assert queries["write:patch_me"].total == 1
    assert queries["get_public"].total == 1
    assert queries["get_public"].max_ms > 0


def test_log_histogram_percentiles_are_close_and_merge_exactly():
    rng = random.Random(5)
    values = [rng.lognormvariate(3, 1) for _ in range(20_000)]  # ms, median ~20
    a, b, whole = LogHistogram(), LogHistogram(), LogHistogram()
    for i, ms in enumerate(values):
        (a if i % 2 else b).add(ms)
        whole.add(ms)
    exact = sorted(values)
    for q in (0.5, 0.95, 0.99):
        true = exact[int(q * len(exact)) - 1]
        assert abs(whole.percentile(q) - true) / true < 0.06, (q, whole.percentile(q), true)
    merged = LogHistogram.from_json(a.to_json())
    merged.merge(LogHistogram.from_json(b.to_json()))
    assert merged.counts == whole.counts and merged.total == whole.total
    assert merged.percentile(0.99) == whole.percentile(0.99)
    window = whole.minus(a)
    assert window.counts == b.counts
    assert LogHistogram().percentile(0.5) is None


def test_serve_puts_the_multiprocess_dir_under_var_per_pod(tmp_path):
    first = default_metrics_dir(tmp_path, "pod-a", 8001)
    assert first == tmp_path / "prometheus" / "pod-a-8001"
    assert default_metrics_dir(tmp_path, "pod/../x", 8001).parent == tmp_path / "prometheus"
