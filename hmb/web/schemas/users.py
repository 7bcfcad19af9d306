"""Schemas of /api/users."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from hmb.web.schemas.common import Cursor, Input, Limit, Output


class Profile(Output):
    id: int
    name: str
    role: str
    headline: str
    bio: str
    location: str
    created_at: datetime


class ProfilePage(Output):
    items: list[Profile]
    next_cursor: str | None


class UsersQuery(Input):
    q: Annotated[str | None, Field(default=None, max_length=100, description="part of a name")] = None
    limit: Limit = 20
    cursor: Cursor = None


class ProfilePatch(Input):
    name: Annotated[str | None, Field(default=None, min_length=1, max_length=100)] = None
    headline: Annotated[str | None, Field(default=None, max_length=200)] = None
    bio: Annotated[str | None, Field(default=None, max_length=2000)] = None
    location: Annotated[str | None, Field(default=None, max_length=100)] = None
