"""schemathesis over every operation of /openapi.json, authenticated: no 5xx, every answer as documented.

One test per operation (listed from the route table's OpenAPI at collection); each fuzzes the
operation as the running server publishes it at /openapi.json. schemathesis's own pytest plugin
does not run under pytest 9, so hypothesis drives each operation's strategy here.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hmb.web.docs import build
from hmb.web.routes import ROUTE_TABLE

# Bounded for CI: examples per operation (FUZZ_EXAMPLES=200 for a long hunt by hand).
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
OPERATIONS = [(m.upper(), p) for p, ops in build(ROUTE_TABLE)["paths"].items() for m in ops if m != "parameters"]


@pytest.fixture(scope="module")
def api_schema(base_url):
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json")


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation(api_schema, base_url, auth_headers, method, path):
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,  # the same examples on every CI run; raise FUZZ_EXAMPLES to look further
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case):
        case.call_and_validate(base_url=base_url, headers=auth_headers, checks=CHECKS)

    fuzz()


def test_every_route_is_fuzzed():
    assert len(OPERATIONS) == len(ROUTE_TABLE)
