"""/api/files and avatars: streamed uploads checked from their bytes, private résumés, both storage backends."""

from __future__ import annotations

import asyncio
import os

import aiohttp
import psutil

from hmb.appkeys import STORAGE
from tests.factories import register
from tests.s3 import list_keys

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64
GIF = b"GIF89a" + b"\x01\x00" * 20
PDF = b"%PDF-1.7\n" + b"resume " * 50
ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 64
MZ = b"MZ\x90\x00" + b"\x00" * 64


def _form(data: bytes, purpose: str | None = "post_image", filename: str = "photo.png", content_type: str = "image/png"):
    form = aiohttp.FormData()
    if purpose is not None:
        form.add_field("purpose", purpose)
    form.add_field("file", data, filename=filename, content_type=content_type)
    return form


async def _app(make_client, settings, storage_settings):
    return await make_client(settings.with_(storage=storage_settings))


async def _error(response, status: int, code: str) -> None:
    assert response.status == status, await response.text()
    assert (await response.json())["error"]["code"] == code


async def _fetch(client, url: str, headers=None) -> tuple[int, bytes, str]:
    """Follow our redirect (S3) by hand: the presigned URL is on another host."""
    response = await client.get(url, headers=headers or {}, allow_redirects=False)
    if response.status != 302:
        return response.status, await response.read(), response.headers.get("Content-Type", "")
    location = response.headers["Location"]
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=120" in location
    async with aiohttp.ClientSession() as http, http.get(location) as presigned:
        return presigned.status, await presigned.read(), presigned.headers.get("Content-Type", "")


async def test_upload_and_read_back(make_client, settings, storage_settings, primary):
    client = await _app(make_client, settings, storage_settings)
    user = await register(client)
    response = await client.post("/api/files", data=_form(PNG, filename="holiday.pdf"), headers=user["headers"])
    assert response.status == 201, await response.text()
    body = await response.json()
    assert body["url"] == f"/api/files/{body['id']}" and body["content_type"] == "image/png"
    assert body["size_bytes"] == len(PNG) and body["purpose"] == "post_image"
    status, data, content_type = await _fetch(client, body["url"])  # public: no token needed
    assert (status, data, content_type) == (200, PNG, "image/png")
    keys = await list_keys(storage_settings)
    assert len(keys) == 1 and keys[0].startswith("post_image/") and keys[0].endswith(".png")
    assert "holiday" not in keys[0]  # the stored name is ours, never the client's
    assert await primary.fetchval("SELECT storage_key FROM files") == keys[0]


async def test_refused_uploads_leave_nothing_behind(make_client, settings, storage_settings, primary):
    client = await _app(make_client, settings, storage_settings)
    user = await register(client)
    h = user["headers"]
    # A PNG renamed to .pdf, sent as a résumé with a PDF content type: the bytes decide.
    renamed = _form(PNG, "resume", "cv.pdf", "application/pdf")
    await _error(await client.post("/api/files", data=renamed, headers=h), 415, "unsupported_media_type")
    # Executables as an avatar, through both upload routes.
    for exe in (ELF, MZ):
        await _error(await client.post("/api/files", data=_form(exe, "avatar", "me.png"), headers=h), 415, "unsupported_media_type")
        await _error(await client.put("/api/users/me/avatar", data=_form(exe, None, "me.png"), headers=h), 415, "unsupported_media_type")
    # Over the avatar limit (2 MiB), by one byte.
    big = PNG + b"\x00" * (settings.storage.max_avatar_bytes - len(PNG) + 1)
    await _error(await client.post("/api/files", data=_form(big, "avatar"), headers=h), 413, "payload_too_large")
    await _error(await client.put("/api/users/me/avatar", data=_form(big, None), headers=h), 413, "payload_too_large")
    # Malformed forms.
    await _error(await client.post("/api/files", data=_form(PNG, None), headers=h), 422, "validation_failed")
    await _error(await client.post("/api/files", data=_form(PNG, "tattoo"), headers=h), 422, "validation_failed")
    await _error(await client.post("/api/files", data=_form(b"", "avatar"), headers=h), 422, "validation_failed")
    await _error(await client.post("/api/files", json={"purpose": "avatar"}, headers=h), 415, "unsupported_media_type")
    await _error(await client.post("/api/files", data=_form(PNG)), 401, "unauthorized")

    assert await primary.fetchval("SELECT count(*) FROM files") == 0
    assert await list_keys(storage_settings) == []
    assert os.listdir(client.app[STORAGE].staging_dir()) == []


async def test_a_100_mb_body_is_refused_while_streaming_without_sitting_in_memory(client, primary):
    user = await register(client)
    boundary = "hmbboundary"
    chunk = b"\x00" * (256 * 1024)
    sent = 0

    async def body():
        nonlocal sent
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nresume\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="cv.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n%PDF-1.7\n"
        ).encode()
        for _ in range(400):  # 100 MiB
            sent += len(chunk)
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    process = psutil.Process()
    baseline = peak = process.memory_info().rss
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    headers = {**user["headers"], "Content-Type": f"multipart/form-data; boundary={boundary}"}
    try:
        response = await client.post("/api/files", data=body(), headers=headers)
        sent_at_answer = sent
        await _error(response, 413, "payload_too_large")
    finally:
        done.set()
        await sampler
    print(f"\n100 MiB upload: 413 after {sent_at_answer / 2**20:.0f} MiB sent; peak RSS +{(peak - baseline) / 2**20:.0f} MiB")
    assert sent_at_answer < 40 * 2**20  # answered near the 10 MiB limit, not after the whole body
    assert peak - baseline < 50 * 2**20
    assert await primary.fetchval("SELECT count(*) FROM files") == 0
    assert os.listdir(client.app[STORAGE].staging_dir()) == []

    # A declared Content-Length over the limit is refused before a byte is read.
    declared = {**headers, "Content-Length": str(100 * 2**20)}
    async with aiohttp.ClientSession() as http:
        async with http.post(client.make_url("/api/files"), data=b"x" * 1024, headers=declared, skip_auto_headers=()) as r:
            assert r.status == 413


async def test_resumes_are_private_to_the_owner_and_employers_applied_to(
    make_client, settings, storage_settings, primary, launcher
):
    client = await _app(make_client, settings, storage_settings)
    seeker, stranger = await register(client), await register(client)
    employer, other_employer = await register(client, role="employer"), await register(client, role="employer")
    response = await client.post("/api/files", data=_form(PDF, "resume", "cv.pdf", "application/pdf"), headers=seeker["headers"])
    assert response.status == 201, await response.text()
    url = (await response.json())["url"]

    status, data, content_type = await _fetch(client, url, seeker["headers"])
    assert (status, data, content_type) == (200, PDF, "application/pdf")
    for who in (stranger, employer, other_employer):
        await _error(await client.get(url, headers=who["headers"], allow_redirects=False), 404, "not_found")
    await _error(await client.get(url, allow_redirects=False), 404, "not_found")

    # Applying to the employer's job lets that employer (and only that one) read it.
    job_id = await primary.fetchval(
        """INSERT INTO jobs (employer_id, title, company, description, employment_type)
           VALUES ($1, 'Dev', 'Co', 'Build things', 'full_time') RETURNING id""",
        employer["user"]["id"],
    )
    await primary.execute(
        "INSERT INTO applications (job_id, applicant_id) VALUES ($1, $2)", job_id, seeker["user"]["id"]
    )
    await asyncio.to_thread(launcher.wait_replica_caught_up, 10)  # written behind the API's back
    status, data, _ = await _fetch(client, url, employer["headers"])
    assert (status, data) == (200, PDF)
    await _error(await client.get(url, headers=other_employer["headers"], allow_redirects=False), 404, "not_found")
    await _error(await client.get("/api/files/999999"), 404, "not_found")


async def test_avatar_upload_replaces_the_previous_one(make_client, settings, storage_settings, primary):
    client = await _app(make_client, settings, storage_settings)
    user = await register(client)
    first = await client.put("/api/users/me/avatar", data=_form(PNG, None), headers=user["headers"])
    assert first.status == 200, await first.text()
    profile = await (await client.get(f"/api/users/{user['user']['id']}")).json()
    assert profile["avatar_url"] == (await first.json())["url"]
    second = await client.put("/api/users/me/avatar", data=_form(GIF, None, "a.gif", "image/gif"), headers=user["headers"])
    assert second.status == 200
    profile = await (await client.get(f"/api/users/{user['user']['id']}")).json()
    assert profile["avatar_url"] == (await second.json())["url"]
    assert await primary.fetchval("SELECT count(*) FROM files") == 1
    keys = await list_keys(storage_settings)
    assert len(keys) == 1 and keys[0].endswith(".gif")
    status, data, _ = await _fetch(client, profile["avatar_url"])
    assert (status, data) == (200, GIF)
    pdf = await client.put("/api/users/me/avatar", data=_form(PDF, None, "a.png"), headers=user["headers"])
    await _error(pdf, 415, "unsupported_media_type")


async def test_a_post_carries_only_its_authors_post_image(client, primary):
    owner, other = await register(client), await register(client)
    image = await (await client.post("/api/files", data=_form(PNG), headers=owner["headers"])).json()
    resume = await client.post("/api/files", data=_form(PDF, "resume", "cv.pdf"), headers=owner["headers"])
    resume_id = (await resume.json())["id"]
    for who, file_id in ((other, image["id"]), (owner, resume_id), (owner, 999999)):
        response = await client.post("/api/posts", json={"body": "look", "image_file_id": file_id}, headers=who["headers"])
        await _error(response, 422, "validation_failed")
    assert await primary.fetchval("SELECT count(*) FROM posts") == 0
    assert await primary.fetchval("SELECT sum(posts_count) FROM users") == 0
    response = await client.post("/api/posts", json={"body": "look", "image_file_id": image["id"]}, headers=owner["headers"])
    assert response.status == 201
    assert (await response.json())["image_url"] == image["url"]


async def test_upload_with_the_same_idempotency_key_stores_one_file(make_client, settings, storage_settings, primary):
    client = await _app(make_client, settings, storage_settings)
    user = await register(client)
    headers = {**user["headers"], "Idempotency-Key": "upload-1"}
    ids = []
    for _ in range(2):
        response = await client.post("/api/files", data=_form(PNG), headers=headers)
        assert response.status == 201
        ids.append((await response.json())["id"])
    assert ids[0] == ids[1]
    assert await primary.fetchval("SELECT count(*) FROM files") == 1
    assert len(await list_keys(storage_settings)) == 1


SOCIAL_ROUTES = [
    ("get", "/api/users/{id}"), ("put", "/api/users/me/avatar"), ("post", "/api/users/{id}/follow"),
    ("delete", "/api/users/{id}/follow"), ("get", "/api/users/{id}/followers"), ("get", "/api/users/{id}/following"),
    ("get", "/api/posts"), ("post", "/api/posts"), ("get", "/api/posts/feed"), ("get", "/api/posts/trending"),
    ("get", "/api/posts/{id}"), ("patch", "/api/posts/{id}"), ("delete", "/api/posts/{id}"),
    ("post", "/api/posts/{id}/like"), ("delete", "/api/posts/{id}/like"), ("post", "/api/files"), ("get", "/api/files/{id}"),
]


async def test_openapi_and_docs_cover_every_social_route(client):
    spec = await (await client.get("/openapi.json")).json()
    page = await (await client.get("/docs")).text()
    for method, path in SOCIAL_ROUTES:
        op = spec["paths"][path][method]
        assert op["summary"] and op["responses"], (method, path)
        if method in ("post", "put", "patch") and "follow" not in path and "like" not in path:
            assert "requestBody" in op, (method, path)
        success = next(s for s in op["responses"] if s.startswith("2"))
        if success != "204" and path != "/api/files/{id}":
            assert "$ref" in str(op["responses"][success]["content"]), (method, path)
        assert path in page or op["operationId"] in page, (method, path)
    upload = spec["paths"]["/api/files"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
    assert {"413", "415", "422"} <= set(spec["paths"]["/api/files"]["post"]["responses"])
