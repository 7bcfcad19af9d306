"""/openapi.json covers every route in the table; /docs renders it, and is off in production."""

from __future__ import annotations

from dataclasses import replace

from hmb.web.routes import ROUTE_TABLE


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
