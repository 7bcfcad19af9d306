"""Schemas of /api/users."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, model_validator

from hmb.web.schemas.common import Cursor, Input, Limit, Output, Query


def file_url(file_id: int | None) -> str | None:
    return None if file_id is None else f"/api/files/{file_id}"


class Profile(Output):
    """A public profile card (directory, followers and following lists)."""

    id: int
    name: str
    role: str
    headline: str
    bio: str
    location: str
    avatar_url: str | None = Field(description="the avatar image, or null")
    created_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _avatar(cls, data: Any) -> Any:
        if isinstance(data, dict) and "avatar_file_id" in data:
            data = {**data, "avatar_url": file_url(data["avatar_file_id"])}
        return data


class ProfileDetail(Profile):
    """The full public profile. `is_following` is the caller's own view (false when signed out)."""

    followers_count: int
    following_count: int
    posts_count: int
    is_following: bool = False


class ProfilePage(Output):
    items: list[Profile]
    next_cursor: str | None


class UsersQuery(Query):
    q: Annotated[str | None, Field(default=None, max_length=100, description="part of a name")] = None
    limit: Limit = 20
    cursor: Cursor = None


class ProfilePatch(Input):
    name: Annotated[str | None, Field(default=None, min_length=1, max_length=100)] = None
    headline: Annotated[str | None, Field(default=None, max_length=200)] = None
    bio: Annotated[str | None, Field(default=None, max_length=2000)] = None
    location: Annotated[str | None, Field(default=None, max_length=100)] = None
