"""S3 for tests: moto's server on a free loopback port, and storage settings for either backend."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiobotocore.session import get_session

from hmb.config import Secret, StorageSettings
from hmb.ops.stack import free_port

_buckets = itertools.count(1)
S3_KEYS = {"s3_access_key_id": "testing", "s3_region": "us-east-1"}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3 API over HTTP (moto's ThreadedMotoServer), for the whole session."""
    from moto.server import ThreadedMotoServer

    port = free_port(set())
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


async def make_bucket(endpoint: str) -> str:
    name = f"hmb-test-{next(_buckets)}"
    async with get_session().create_client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    ) as client:
        await client.create_bucket(Bucket=name)
    return name


async def list_keys(storage: StorageSettings) -> list[str]:
    """Every object key in the bucket (S3) or file under the directory (local), staging excluded."""
    if storage.backend == "local":
        root = Path(storage.local_dir)
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".incoming" not in p.parts)
    async with get_session().create_client(
        "s3", endpoint_url=storage.s3_endpoint_url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    ) as client:
        listed = await client.list_objects_v2(Bucket=storage.s3_bucket)
    return sorted(o["Key"] for o in listed.get("Contents", []))


@pytest.fixture(params=["local", "s3"])
async def storage_settings(request, tmp_path) -> AsyncIterator[StorageSettings]:
    """Storage settings for one backend: a fresh directory, or a fresh bucket on moto."""
    if request.param == "local":
        yield StorageSettings(backend="local", local_dir=str(tmp_path / "files"))
        return
    endpoint = request.getfixturevalue("moto_endpoint")
    yield StorageSettings(
        backend="s3",
        s3_endpoint_url=endpoint,
        s3_bucket=await make_bucket(endpoint),
        s3_secret_access_key=Secret("testing"),
        **S3_KEYS,
    )
