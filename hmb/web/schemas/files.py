"""Schemas of /api/files (the upload itself is multipart, described in the route's summary)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from hmb.web.schemas.common import Input, Output

Purpose = Literal["avatar", "resume", "post_image"]


class UploadForm(Input):
    """multipart/form-data: `purpose` (a field, before the file) and `file` (the bytes)."""

    purpose: Purpose
    file: bytes = Field(description="the file; its type is decided from its bytes", json_schema_extra={"format": "binary"})


class AvatarForm(Input):
    """multipart/form-data: `file`, a PNG, JPEG, GIF or WebP image."""

    file: bytes = Field(description="the image; its type is decided from its bytes", json_schema_extra={"format": "binary"})


class FileOut(Output):
    id: int
    url: str = Field(description="GET it to read the file (bytes, or a redirect to a short-lived URL)")
    purpose: Purpose
    content_type: str
    size_bytes: int
    created_at: datetime
