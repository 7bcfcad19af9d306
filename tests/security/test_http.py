"""HTTP hardening: CORS, security headers, no tokens in URLs or logs, X-Forwarded-For, upload sniffing."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import aiohttp

from hmb.appkeys import ACCESS_LOG
from hmb.config import WebSettings
from hmb.web.docs import build
from hmb.web.http import client_ip
from hmb.web.routes import ROUTE_TABLE
from tests.factories import register

GOOD, EVIL = "https://app.hiremebahamas.com", "https://evil.example"


async def test_cors_answers_only_listed_origins(make_client, settings):
    client = await make_client(settings.with_(web=WebSettings(cors_origins=(GOOD,))))
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "Authorization"}
    refused = await client.options("/api/posts", headers={"Origin": EVIL, **preflight})
    assert refused.status == 403 and (await refused.json())["error"]["code"] == "forbidden"
    assert "Access-Control-Allow-Origin" not in refused.headers
    allowed = await client.options("/api/posts", headers={"Origin": GOOD, **preflight})
    assert allowed.status == 204 and allowed.headers["Access-Control-Allow-Origin"] == GOOD
    simple = await client.get("/api/posts", headers={"Origin": EVIL})
    assert simple.status == 200 and "Access-Control-Allow-Origin" not in simple.headers
    assert "*" not in (allowed.headers.get("Access-Control-Allow-Origin"), simple.headers.get("Access-Control-Allow-Origin"))


async def test_security_headers_everywhere_and_no_store_on_authenticated_answers(make_client, settings):
    client = await make_client()
    user = await register(client)
    for method, path, headers in [
        ("GET", "/health", {}),
        ("GET", "/api/posts", {}),
        ("GET", "/api/nowhere", {}),
        ("GET", "/api/auth/me", user["headers"]),
        ("GET", "/api/auth/me", {"Authorization": "Bearer bad"}),
        ("GET", "/api/posts/trending", {}),  # a cached body (X-Cache)
        ("GET", "/docs", {}),  # HTML
        ("POST", "/api/auth/logout", (await register(client))["headers"]),  # 204, no body
    ]:
        response = await client.request(method, path, headers=headers)
        assert response.status < 500, path
        # Each exactly once, whether the response was made with them (JSON) or given them by the core.
        assert response.headers.getall("X-Content-Type-Options") == ["nosniff"], path
        assert response.headers.getall("X-Frame-Options") == ["DENY"], path
        assert response.headers.getall("Referrer-Policy") == ["no-referrer"], path
        assert response.headers.getall("Content-Security-Policy") == ["frame-ancestors 'none'"], path
        assert "Strict-Transport-Security" not in response.headers  # plain HTTP outside production
        assert response.headers.getall("Server") == ["hmb"], path  # no Python or aiohttp version
        if headers:
            assert response.headers["Cache-Control"] == "no-store", path
    # Answers that carry tokens are never stored either, though the request had no Authorization.
    for path, body in [
        ("/api/auth/login", {"email": user["email"], "password": "correct horse battery staple"}),
        ("/api/auth/refresh", {"refresh_token": user["refresh_token"]}),
    ]:
        response = await client.post(path, json=body)
        assert response.status == 200 and response.headers["Cache-Control"] == "no-store", path
    production = await make_client(settings.with_(environment="production"))
    # TLS ends at the platform's proxy, which says so; HSTS goes only to callers on HTTPS (RFC 6797 §7.2).
    response = await production.get("/health", headers={"X-Forwarded-Proto": "https"})
    hsts = response.headers["Strict-Transport-Security"]
    assert int(re.search(r"max-age=(\d+)", hsts).group(1)) >= 31536000 and "includeSubDomains" in hsts
    assert "X-DB-Route" not in response.headers  # no topology hints in production
    plain = await production.get("/health")
    assert "Strict-Transport-Security" not in plain.headers and plain.headers["X-Content-Type-Options"] == "nosniff"


def test_no_route_takes_a_token_in_its_url():
    tokenish = re.compile(r"token|jwt|^auth$|authori[sz]ation|bearer|password|secret|api_?key", re.I)
    for route in ROUTE_TABLE:
        assert not any(tokenish.search(part) for part in route.path.split("/")[3:]), route.path
        for field in (route.query.model_fields if route.query else {}):
            assert not tokenish.search(field), f"{route.path}?{field}"
    spec = build(ROUTE_TABLE)
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                assert parameter["in"] != "query" or not tokenish.search(parameter["name"]), (path, parameter)


async def test_authorization_never_reaches_the_logs(client, caplog):
    user = await register(client)
    token = user["access_token"]
    access = client.app[ACCESS_LOG]
    written: list[bytes] = []
    access.flush()  # what came before (signing up) is not this test's
    access.enabled, access.out = True, written.append
    with caplog.at_level(logging.DEBUG):
        await client.get("/api/auth/me", headers=user["headers"])
        await client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}x"})  # refused: logged as a 401
        await client.get("/api/nowhere", headers=user["headers"])
    access.flush()
    assert len(b"".join(written).splitlines()) == 3  # the access log saw every request
    secret = token.split(".")[2]
    assert secret.encode() not in b"".join(written)
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret not in repr(record.__dict__)


def test_x_forwarded_for_is_believed_only_from_trusted_proxies():
    class Peer:
        def __init__(self, remote: str, xff: str | None):
            self.remote = remote
            self.headers = {"X-Forwarded-For": xff} if xff else {}

    proxies = ("10.0.0.2",)
    assert client_ip(Peer("203.0.113.9", "1.2.3.4"), proxies) == "203.0.113.9"  # spoofed, ignored
    assert client_ip(Peer("10.0.0.2", "1.2.3.4"), proxies) == "1.2.3.4"
    # The client prepends a fake hop: the nearest untrusted address is still the real one.
    assert client_ip(Peer("10.0.0.2", "6.6.6.6, 1.2.3.4"), proxies) == "1.2.3.4"
    assert client_ip(Peer("10.0.0.2", "1.2.3.4, 10.0.0.2"), proxies) == "1.2.3.4"


async def test_a_spoofed_x_forwarded_for_does_not_dodge_the_per_ip_throttle(make_client, settings, one_rate_window):
    """The test client connects from 127.0.0.1; with only 10.0.0.2 trusted, its X-Forwarded-For is noise."""
    client = await make_client(settings.with_(web=WebSettings(trusted_proxies=("10.0.0.2",))))
    limit = settings.auth.login_per_ip_per_min
    statuses = []
    for n in range(limit + 1):
        response = await client.post("/api/auth/login", json={"email": f"x{n}@example.com", "password": "whatever-it-is"},
                                     headers={"X-Forwarded-For": f"198.51.100.{n}"})
        statuses.append(response.status)
    assert statuses[:limit] == [401] * limit and statuses[limit] == 429


async def test_a_trusted_proxys_x_forwarded_for_separates_clients(make_client, settings):
    client = await make_client(settings.with_(web=WebSettings(trusted_proxies=("127.0.0.1",))))
    limit = settings.auth.login_per_ip_per_min
    for n in range(limit + 1):
        response = await client.post("/api/auth/login", json={"email": f"y{n}@example.com", "password": "whatever-it-is"},
                                     headers={"X-Forwarded-For": f"198.51.100.{n}"})
        assert response.status == 401  # each a different client behind the balancer


async def _raw(client, request: bytes) -> tuple[int, dict | None]:
    """Send bytes no HTTP client library sends (a header that is not UTF-8) and read the answer:
    its status and its JSON body (None for any other body)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(request)
    answer = await reader.read()  # the request says Connection: close
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    is_json = b"\r\ncontent-type: application/json" in head.lower()
    return int(head.split(b" ", 2)[1]), json.loads(body) if is_json else None


async def test_header_bytes_that_are_not_utf8_get_a_4xx_and_a_log_line_not_a_500(make_client, settings):
    """aiohttp decodes a header's non-UTF-8 bytes to lone surrogates, which no encoder accepts: a
    token, a trusted proxy's X-Forwarded-For (a throttle key, a log field) must not reach one as is."""
    client = await make_client(settings.with_(web=WebSettings(trusted_proxies=("127.0.0.1",))))
    access = client.app[ACCESS_LOG]
    written: list[bytes] = []
    access.flush()
    access.enabled, access.out = True, written.append
    status, body = await _raw(client, b"GET /api/auth/me HTTP/1.1\r\nHost: hmb\r\nAuthorization: Bearer a\xffb\r\n"
                                      b"Connection: close\r\n\r\n")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    login = b'{"email":"nobody@example.com","password":"whatever-it-is"}'
    status, body = await _raw(client, b"POST /api/auth/login HTTP/1.1\r\nHost: hmb\r\nX-Forwarded-For: 10.9.\xff\r\n"
                                      b"Content-Type: application/json\r\nContent-Length: %d\r\n"
                                      b"Connection: close\r\n\r\n%s" % (len(login), login))
    assert status == 401 and body["error"]["code"] == "unauthorized"
    access.flush()
    lines = [json.loads(line) for line in b"".join(written).splitlines()]
    assert [line["status"] for line in lines] == [401, 401]
    assert lines[1]["remote"].startswith("10.9.") and lines[1]["remote"].isascii()
    assert (await client.get("/health")).status == 200


# Every header hmb reads, each sent with bytes that are not UTF-8 (what follows the name is a prefix).
HEADERS_READ = [b"Authorization: Bearer ", b"X-Forwarded-For: ", b"Origin: ", b"Cookie: hmb_rp=", b"X-Read-Position: ",
                b"X-Request-ID: ", b"Idempotency-Key: ", b"Accept-Encoding: ", b"X-Forwarded-Proto: ",
                b"Content-Type: application/json; charset="]


async def test_no_route_answers_a_header_that_is_not_utf8_with_a_500(make_client, settings):
    """Every route, signed in, with each header hmb reads holding bytes that are not UTF-8."""
    client = await make_client(settings.with_(web=WebSettings(trusted_proxies=("127.0.0.1",))))
    user = await register(client)
    signed_in = b"Authorization: " + user["headers"]["Authorization"].encode()
    for route in ROUTE_TABLE:
        path = re.sub(r"\{[^}]+\}", "1", route.path).encode()
        for header in HEADERS_READ:
            lines = [b"%s %s HTTP/1.1" % (route.method.encode(), path), b"Host: hmb", header + b"\xff\xfe", b"Connection: close"]
            if not header.startswith(b"Authorization"):
                lines.append(signed_in)
            if not header.startswith(b"Content-Type"):
                lines.append(b"Content-Type: application/json")
            status, body = await _raw(client, b"\r\n".join(lines) + b"\r\nContent-Length: 2\r\n\r\n{}")
            assert status < 500, (route.method, route.path, header, body)
            assert status < 400 or (body and "error" in body), (route.method, route.path, header, body)


def _upload(data: bytes, filename: str, content_type: str, purpose: str = "avatar") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("purpose", purpose)
    form.add_field("file", data, filename=filename, content_type=content_type)
    return form


async def test_upload_type_spoofing_is_refused(client, primary):
    user = await register(client)
    spoofs = [
        (b"<html><script>alert(1)</script></html>", "avatar.png", "image/png", "avatar"),
        (b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "a.svg", "image/svg+xml", "avatar"),
        (b"%PDF-1.4\n%fake\n" + b"0" * 200, "photo.jpg", "image/jpeg", "avatar"),  # a real PDF, but not an image
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "cv.pdf", "application/pdf", "resume"),  # an image posing as a résumé
        (b"MZ\x90\x00" + b"\x00" * 200, "cv.pdf", "application/pdf", "resume"),  # a Windows executable
    ]
    for data, filename, content_type, purpose in spoofs:
        response = await client.post("/api/files", data=_upload(data, filename, content_type, purpose), headers=user["headers"])
        body = await response.json()
        assert response.status == 415, (filename, response.status, body)
        assert body["error"]["code"] == "unsupported_media_type"
    assert await primary.fetchval("SELECT count(*) FROM files") == 0
