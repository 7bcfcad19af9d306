"""/api/files: streamed multipart uploads checked from their bytes, and reads for those allowed to see them.

An upload is spooled to a staging file chunk by chunk: the running size is checked
against the purpose's limit (413 the moment it is passed) and the type is decided
from the first bytes (415 at once if it is not allowed), so a 100 MB body never sits
in memory and a refused upload leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from aiohttp import BodyPartReader, web

from hmb.appkeys import DB, SETTINGS, STORAGE
from hmb.config import StorageSettings
from hmb.errors import Invalid, NotFound, PayloadTooLarge, UnsupportedMediaType
from hmb.security import Principal
from hmb.store import cache_keys, files, users
from hmb.store.storage import new_key
from hmb.web.http import json_response, path_id
from hmb.web.identity import caller, optional_caller
from hmb.web.idempotency import create_once
from hmb.web.schemas.files import FileOut

log = logging.getLogger("hmb.files")

IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
ALLOWED = {"avatar": IMAGES, "post_image": IMAGES, "resume": frozenset({"application/pdf"})}
PUBLIC = frozenset({"avatar", "post_image"})
EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp", "application/pdf": ".pdf"}
SNIFF_BYTES = 12  # enough for every signature below (WebP's is the longest)
READ_CHUNK = 64 * 1024
FLUSH_BYTES = 1024 * 1024  # disk writes go to a thread in blocks of this size
FORM_SLACK = 16 * 1024  # multipart boundaries, headers and the purpose field


def sniff(head: bytes) -> str | None:
    """The content type the bytes say they are (magic numbers), or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def limit_for(settings: StorageSettings, purpose: str) -> int:
    return {
        "avatar": settings.max_avatar_bytes,
        "post_image": settings.max_post_image_bytes,
        "resume": settings.max_resume_bytes,
    }[purpose]


@dataclass
class Upload:
    purpose: str
    content_type: str
    size: int
    sha256: bytes
    path: Path  # the staging file; moved into storage, or deleted on failure


async def receive(request: web.Request, purpose: str | None = None) -> Upload:
    """Stream a multipart upload (`purpose`, then `file`) to a staging file, checking as it comes."""
    settings = request.app[SETTINGS].storage
    ceiling = limit_for(settings, purpose) if purpose else max(limit_for(settings, p) for p in ALLOWED)
    if request.content_length is not None and request.content_length > ceiling + FORM_SLACK:
        raise PayloadTooLarge(f"files for this purpose may be at most {ceiling} bytes")
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType("send the file as multipart/form-data")
    fixed = purpose is not None
    upload: Upload | None = None
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise Invalid(fields={"body": "nested multipart is not accepted"})
            if part.name == "purpose" and not fixed:
                purpose = await _small_field(part)
                if purpose not in ALLOWED:
                    raise Invalid(fields={"purpose": f"one of {', '.join(ALLOWED)}"})
            elif part.name == "file" and upload is None:
                limit = limit_for(settings, purpose) if purpose else ceiling
                upload = await _spool(part, request.app[STORAGE].staging_dir(), limit, ALLOWED.get(purpose or ""))
            else:
                raise Invalid(fields={part.name or "body": "unexpected form field"})
        if upload is None:
            raise Invalid(fields={"file": "required"})
        if purpose is None:
            raise Invalid(fields={"purpose": "required"})
        # The purpose came after the file: check what could not be checked while streaming.
        if upload.content_type not in ALLOWED[purpose]:
            raise UnsupportedMediaType(f"a {purpose} must be {_kinds(purpose)}")
        if upload.size > limit_for(settings, purpose):
            raise PayloadTooLarge(f"a {purpose} may be at most {limit_for(settings, purpose)} bytes")
        upload.purpose = purpose
        return upload
    except BaseException:
        if upload is not None:
            upload.path.unlink(missing_ok=True)
        raise


async def _small_field(part: BodyPartReader, limit: int = 64) -> str:
    data = b""
    while chunk := await part.read_chunk(limit + 1):
        data += chunk
        if len(data) > limit:
            raise Invalid(fields={part.name or "field": "too long"})
    return data.decode("utf-8", "replace").strip()


async def _spool(part: BodyPartReader, staging: Path, limit: int, allowed: frozenset[str] | None) -> Upload:
    fd, name = tempfile.mkstemp(dir=staging, suffix=".part")
    path = Path(name)
    digest = hashlib.sha256()
    size, head, content_type = 0, b"", None
    pending = bytearray()
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := await part.read_chunk(READ_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"the file is larger than the limit of {limit} bytes")
                if content_type is None:
                    head += chunk[: SNIFF_BYTES - len(head)]
                    if len(head) >= SNIFF_BYTES:
                        content_type = _check_type(head, allowed)
                digest.update(chunk)
                pending += chunk
                if len(pending) >= FLUSH_BYTES:
                    await asyncio.to_thread(out.write, bytes(pending))
                    pending.clear()
            if size == 0:
                raise Invalid(fields={"file": "the file is empty"})
            if content_type is None:
                content_type = _check_type(head, allowed)
            await asyncio.to_thread(out.write, bytes(pending))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Upload("", content_type, size, digest.digest(), path)


def _check_type(head: bytes, allowed: frozenset[str] | None) -> str:
    content_type = sniff(head)
    if content_type is None:
        raise UnsupportedMediaType("the file is not a PNG, JPEG, GIF, WebP image or a PDF")
    if allowed is not None and content_type not in allowed:
        raise UnsupportedMediaType(f"expected {' or '.join(sorted(allowed))}, the file is {content_type}")
    return content_type


def _kinds(purpose: str) -> str:
    return "a PDF" if purpose == "resume" else "a PNG, JPEG, GIF or WebP image"


async def _store(request: web.Request, upload: Upload) -> str:
    """Move the staging file into storage under a generated key; returns the key."""
    key = new_key(upload.purpose, EXTENSIONS[upload.content_type])
    try:
        await request.app[STORAGE].save(key, upload.path, upload.content_type)
    finally:
        upload.path.unlink(missing_ok=True)
    return key


async def _discard(request: web.Request, key: str) -> None:
    try:
        await request.app[STORAGE].delete(key)
    except Exception:  # noqa: BLE001 - the request's own error matters more; the object is an orphan
        log.exception("could not delete an orphaned upload", extra={"storage_key": key})


def _out(row) -> dict:
    return FileOut.model_validate({**dict(row), "url": f"/api/files/{row['id']}"}).model_dump()


async def upload(request: web.Request) -> web.Response:
    principal = caller(request)
    received = await receive(request)
    # Identifies the request for Idempotency-Key (the body was streamed, not kept).
    fingerprint = hashlib.sha256(b"files.create\n" + received.purpose.encode() + b"\n" + received.sha256).digest()
    key = await _store(request, received)
    created = False

    async def create(w) -> dict:
        nonlocal created
        created = True
        row = await files.insert_file(
            w.conn, principal.user_id, received.purpose, received.content_type, received.size, key, received.sha256
        )
        return _out(row)

    try:
        response = await create_once(request, principal, create, fingerprint=fingerprint)
    except BaseException:
        await _discard(request, key)
        raise
    if not created:  # a replayed Idempotency-Key: the first upload is the one kept
        await _discard(request, key)
    return response


async def store_avatar(request: web.Request, principal: Principal, received: Upload) -> web.Response:
    key = await _store(request, received)
    old_key: str | None = None
    try:
        async with request.app[DB].write() as w:
            row = await files.insert_file(
                w.conn, principal.user_id, "avatar", received.content_type, received.size, key, received.sha256
            )
            previous = await users.set_avatar(w.conn, principal.user_id, row["id"])
            if previous is not None:
                old_key = await files.delete_file(w.conn, previous)
            w.invalidate(cache_keys.user(principal.user_id))
            w.bump(cache_keys.users_gen())  # directory cards show the avatar
    except BaseException:
        await _discard(request, key)
        raise
    if old_key:
        await _discard(request, old_key)
    return json_response(_out(row))


async def read(request: web.Request) -> web.StreamResponse:
    """The bytes (local disk) or a redirect to a short-lived presigned URL (S3).

    A résumé is private: only its owner and employers the owner applied to may read
    it; anyone else gets 404, as if it did not exist.
    """
    file_id = path_id(request)
    db = request.app[DB]
    row = await db.read(files.get_file, file_id)
    if row is None:
        raise NotFound("no such file")
    public = row["purpose"] in PUBLIC
    if not public:
        principal = optional_caller(request)
        if principal is None or (
            principal.user_id != row["owner_id"]
            and not await db.read(files.employer_can_read, row["owner_id"], principal.user_id)
        ):
            raise NotFound("no such file")
    storage = request.app[STORAGE]
    key, content_type = row["storage_key"], row["content_type"]
    ttl = request.app[SETTINGS].storage.presign_ttl_s
    url = await storage.presigned_url(key, content_type, ttl)
    if url is not None:
        # The URL expires; neither it nor the redirect may be cached past that.
        return web.Response(status=302, headers={"Location": url, "Cache-Control": "private, no-store"})
    path = storage.local_path(key)
    if path is None or not path.is_file():
        raise NotFound("no such file")
    disposition = "inline" if public else f'attachment; filename="resume-{file_id}{EXTENSIONS[content_type]}"'
    headers = {
        "Content-Type": content_type,
        "Content-Disposition": disposition,
        # Content under an id never changes (a new upload gets a new id).
        "Cache-Control": "public, max-age=86400, immutable" if public else "private, no-store",
    }
    return web.FileResponse(path, headers=headers)

