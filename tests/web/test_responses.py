"""JSON responses made without Response.__init__ (EncodedResponse) send what web.Response would."""

from __future__ import annotations

import gzip

from aiohttp import hdrs, web

from hmb.web.http import _CACHED_HEADERS, _JSON_HEADERS, body_response, cached_response

BODY = b'{"id":7,"name":"Ana","bio":"' + "ü".encode() * 600 + b'"}'


def _app() -> web.Application:
    async def plain(request: web.Request) -> web.Response:
        return web.Response(body=BODY, status=201, headers=_JSON_HEADERS)

    async def encoded(request: web.Request) -> web.Response:
        return body_response(BODY, 201)

    async def plain_cached(request: web.Request) -> web.Response:
        return web.Response(body=BODY, headers=_CACHED_HEADERS["l2"])

    async def cached(request: web.Request) -> web.Response:
        return cached_response(BODY, "l2")

    async def compressed(request: web.Request) -> web.Response:
        # aiohttp's own compression reads what Response.__init__ would have set.
        response = cached_response(BODY, "l1")
        response.enable_compression()
        return response

    app = web.Application()
    for path, handler in (("/plain", plain), ("/encoded", encoded), ("/plain-cached", plain_cached),
                          ("/cached", cached), ("/compressed", compressed)):
        app.router.add_get(path, handler)
    return app


async def _sent(client, path: str) -> tuple[int, list[tuple[str, str]], bytes]:
    response = await client.get(path, headers={hdrs.ACCEPT_ENCODING: "identity"})
    headers = [(k, v) for k, v in response.headers.items() if k != hdrs.DATE]
    return response.status, headers, await response.read()


async def test_an_encoded_response_sends_the_status_headers_and_bytes_a_plain_one_would(aiohttp_client):
    client = await aiohttp_client(_app())
    assert await _sent(client, "/encoded") == await _sent(client, "/plain")
    assert await _sent(client, "/cached") == await _sent(client, "/plain-cached")
    status, headers, body = await _sent(client, "/encoded")
    assert (status, body) == (201, BODY)
    assert (hdrs.CONTENT_TYPE, "application/json") in headers
    assert (hdrs.CONTENT_LENGTH, str(len(BODY))) in headers


async def test_an_encoded_response_can_still_be_compressed_by_aiohttp(aiohttp_client):
    client = await aiohttp_client(_app())
    response = await client.get("/compressed", headers={hdrs.ACCEPT_ENCODING: "gzip"}, auto_decompress=False)
    assert response.status == 200
    assert response.headers[hdrs.CONTENT_ENCODING] == "gzip"
    assert gzip.decompress(await response.read()) == BODY
