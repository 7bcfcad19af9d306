"""/openapi.json built from the route table and its schemas; /docs renders it as HTML."""

from __future__ import annotations

import functools
import re
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from pydantic import BaseModel

from hmb import __version__
from hmb.appkeys import ROUTES, SETTINGS
from hmb.errors import NotFound
from hmb.web.errors import HTTP_CODES
from hmb.web.http import body_response, dumps
from hmb.web.schemas.common import ErrorEnvelope

_PATH_PARAM = re.compile(r"{(\w+)}")
REF = "#/components/schemas/{model}"


async def openapi(request: web.Request) -> web.Response:
    return body_response(_spec_body(tuple(request.app[ROUTES].values())))


@functools.cache
def _spec_body(routes: tuple) -> bytes:
    """Built once per route table (a started app's state must not change)."""
    return dumps(build(routes))


@aiohttp_jinja2.template("docs.html")
async def reference(request: web.Request) -> dict[str, Any]:
    if request.app[SETTINGS].production:
        raise NotFound()
    return {"spec": build(request.app[ROUTES].values()), "version": __version__}


def build(routes) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, schemas)
    _schema(ErrorEnvelope, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "HireMeBahamas API",
            "version": __version__,
            "description": "Jobs, people, posts and messages. Errors use one envelope; lists are cursor-paginated.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def _operation(route, schemas: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": route.name, "summary": route.summary, "tags": [route.tag or "misc"]}
    if route.description:
        op["description"] = route.description
    params = [
        {"name": n, "in": "path", "required": True, "schema": {"type": "integer"}} for n in _PATH_PARAM.findall(route.path)
    ]
    if route.query is not None:
        for name, field in route.query.model_fields.items():
            schema = route.query.model_json_schema()["properties"][name]
            params.append({"name": name, "in": "query", "required": field.is_required(), "schema": schema})
    if route.idempotent:
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "a retry with the same key returns the first response and creates nothing new",
                "schema": {"type": "string", "maxLength": 255},
            }
        )
    if params:
        op["parameters"] = params
    if route.status == 101:
        return _websocket(route, op, schemas)
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": {route.body_type: {"schema": _schema(route.body, schemas)}}}
    if route.auth:
        op["security"] = [{"bearer": []}]
    op["responses"] = _responses(route, schemas)
    return op


def _websocket(route, op: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """A WebSocket route (status 101): the upgrade, with its frames under the `x-websocket` extension.

    The route's `response` model describes the frames, one field per direction.
    """
    op["x-websocket"] = {"encoding": "JSON text frames", "frames": _schema(route.response, schemas)}
    if route.auth:
        op["security"] = [{"bearer": []}]
    responses = _responses(route, schemas)
    responses["101"] = {"description": "switching protocols: the WebSocket is open"}
    op["responses"] = responses
    return op


def _responses(route, schemas) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "success"}
    if route.response is not None:
        ok["content"] = {route.response_type: {"schema": _schema(route.response, schemas)}}
    elif route.response_type != "application/json":
        ok["content"] = {route.response_type: {"schema": {"type": "string"}}}
    elif route.status != 204:
        ok["content"] = {"application/json": {"schema": {"type": "object"}}}
    if route.rate_limited:
        ok["headers"] = {
            name: {"description": text, "schema": {"type": "integer"}}
            for name, text in (
                ("X-RateLimit-Limit", "requests allowed per window"),
                ("X-RateLimit-Remaining", "requests left in this window"),
                ("X-RateLimit-Reset", "seconds until the window resets"),
            )
        }
    responses: dict[str, Any] = {str(route.status): ok}
    error_ref = {"$ref": REF.format(model="ErrorEnvelope")}
    codes = set(route.errors) | ({401} if route.auth else set()) | {500}
    for status in sorted(codes):
        responses[str(status)] = {
            "description": HTTP_CODES.get(status, "error").replace("_", " "),
            "content": {"application/json": {"schema": error_ref}},
        }
    return responses


def _schema(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=REF, mode="serialization")
    for name, definition in schema.pop("$defs", {}).items():
        schemas[name] = definition
    schemas[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}
