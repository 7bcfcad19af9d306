"""Object storage: the same suite against local disk and S3 (moto's server, through aiobotocore)."""

from __future__ import annotations

import aiohttp

from hmb.store import storage as storage_mod
from hmb.store.storage import new_key, open_storage
from tests.s3 import list_keys


def _staged(store, data: bytes):
    path = store.staging_dir() / "upload.part"
    path.write_bytes(data)
    return path


async def test_save_read_delete_round_trip(storage_settings):
    async with open_storage(storage_settings) as store:
        key = new_key("post_image", ".png")
        source = _staged(store, b"\x89PNG\r\n\x1a\n" + b"x" * 1000)
        await store.save(key, source, "image/png")
        assert not source.exists()
        assert await store.exists(key)
        assert await store.read(key) == b"\x89PNG\r\n\x1a\n" + b"x" * 1000
        assert await list_keys(storage_settings) == [key]
        await store.delete(key)
        assert not await store.exists(key)
        await store.delete(key)  # deleting twice is fine
        assert await list_keys(storage_settings) == []


async def test_generated_keys_are_unique_and_keep_only_purpose_and_extension():
    keys = {new_key("resume", ".pdf") for _ in range(1000)}
    assert len(keys) == 1000
    assert all(k.startswith("resume/") and k.endswith(".pdf") and len(k) == len("resume/") + 32 + 4 for k in keys)


async def test_large_object_goes_up_in_parts(storage_settings, monkeypatch):
    monkeypatch.setattr(storage_mod, "PART_BYTES", 5 * 1024 * 1024)  # S3's minimum part
    data = bytes(range(256)) * (6 * 4096)  # 6 MiB: two parts on S3
    async with open_storage(storage_settings) as store:
        key = new_key("resume", ".pdf")
        await store.save(key, _staged(store, data), "application/pdf")
        assert await store.read(key) == data


async def test_reads_are_served_by_path_locally_and_by_short_lived_url_on_s3(storage_settings):
    async with open_storage(storage_settings) as store:
        key = new_key("avatar", ".gif")
        await store.save(key, _staged(store, b"GIF89a-bytes"), "image/gif")
        url = await store.presigned_url(key, "image/gif", 60)
        if storage_settings.backend == "local":
            assert url is None and store.local_path(key).read_bytes() == b"GIF89a-bytes"
            return
        assert store.local_path(key) is None
        assert "X-Amz-Expires=60" in url and "X-Amz-Signature=" in url
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "image/gif"
            assert await response.read() == b"GIF89a-bytes"
