"""/openapi.json covers every route in the table; /docs renders it, and is off in production; each route resolves to itself."""

from __future__ import annotations

import re
from dataclasses import replace

from aiohttp.test_utils import make_mocked_request

from hmb.appkeys import CORE
from hmb.web.routes import ROUTE_TABLE
from tests.web.test_jobs import assert_error


async def test_openapi_describes_every_route_with_its_schemas(client):
    response = await client.get("/openapi.json")
    assert response.status == 200
    spec = await response.json()
    assert spec["openapi"].startswith("3.1")
    for route in ROUTE_TABLE:
        operation = spec["paths"][route.path][route.method.lower()]
        assert operation["operationId"] == route.name
        assert str(route.status) in operation["responses"]
        for status in route.errors:
            assert operation["responses"][str(status)]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorEnvelope"
            }
        if route.body is not None:
            ref = operation["requestBody"]["content"][route.body_type]["schema"]["$ref"]
            assert ref.split("/")[-1] in spec["components"]["schemas"]
        if route.auth:
            assert operation["security"] == [{"bearer": []}]
    register = spec["components"]["schemas"]["RegisterIn"]
    assert register["additionalProperties"] is False
    assert set(register["required"]) == {"email", "password", "name", "role"}


async def test_docs_page_lists_the_routes(client):
    response = await client.get("/docs")
    assert response.status == 200 and response.content_type == "text/html"
    page = await response.text()
    for route in ROUTE_TABLE:
        assert route.path in page


async def test_docs_are_off_in_production(make_client, settings):
    client = await make_client(replace(settings, environment="production"))
    response = await client.get("/docs", headers={"X-Forwarded-Proto": "https"})
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"
    assert "X-DB-Route" not in response.headers
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


async def test_every_route_resolves_to_itself_whatever_the_order_resources_were_added_in(client):
    """Variable paths are added first (a detail read then skips a failed try of the list beside it);
    a fixed path like /api/posts/feed must still win over /api/posts/{id}, and each route be its own."""
    app = client.server.app
    core = app[CORE]
    for route in ROUTE_TABLE:
        path = re.sub(r"\{[^}]+\}", "7", route.path)
        match = await app.router.resolve(make_mocked_request(route.method, path, app=app))
        assert core.names.get(match.route) == route.name, (route.method, path)


async def test_detail_paths_match_only_their_one_last_segment(client):
    """/api/jobs/{id} and the like are matched by a split at the last slash (LastSegmentResource):
    the same answers as aiohttp's regex, a 404 envelope for anything that is not one segment."""
    app = client.server.app
    match = await app.router.resolve(make_mocked_request("GET", "/api/jobs/42", app=app))
    assert dict(match) == {"id": "42"} and app[CORE].names[match.route] == "jobs.get"
    for path in ("/api/jobs/42/", "/api/jobs/4/2", "/api/jobs/%2F", "/api/jobs/x", "/api/jobsx/42", "/api/users/7/nope"):
        await assert_error(await client.get(path), 404, "not_found")
    # A path with more after its variable keeps aiohttp's own matching.
    match = await app.router.resolve(make_mocked_request("GET", "/api/users/7/followers", app=app))
    assert dict(match) == {"id": "7"} and app[CORE].names[match.route] == "users.followers"
