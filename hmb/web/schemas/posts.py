"""Schemas of /api/posts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, model_validator

from hmb.web.schemas.common import MAX_ID, Cursor, Input, Limit, Output, Query
from hmb.web.schemas.users import file_url

Body = Annotated[str, Field(min_length=1, max_length=5000)]


class PostIn(Input):
    body: Body
    image_file_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="a post_image file you uploaded")


class PostPatch(Input):
    body: Body


class Author(Output):
    id: int
    name: str
    headline: str
    avatar_url: str | None


class Post(Output):
    id: int
    author: Author
    body: str
    image_url: str | None
    like_count: int
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, data: Any) -> Any:
        if isinstance(data, dict) and "author_id" in data:
            data = {
                **data,
                "author": {
                    "id": data["author_id"],
                    "name": data["author_name"],
                    "headline": data["author_headline"],
                    "avatar_url": file_url(data["author_avatar_file_id"]),
                },
                "image_url": file_url(data["image_file_id"]),
            }
        return data


class PostDetail(Post):
    """One post; `liked_by_me` is the caller's own view (false when signed out)."""

    liked_by_me: bool = False


class PostPage(Output):
    items: list[Post]
    next_cursor: str | None


class PostsQuery(Query):
    author_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="only this author's posts")
    limit: Limit = 20
    cursor: Cursor = None


class TrendingQuery(Query):
    limit: Annotated[int, Field(ge=1, le=50, description="how many posts (default 10, max 50)")] = 10


class TrendingPage(Output):
    window_hours: int = Field(description="posts created this recently are eligible")
    items: list[Post]
