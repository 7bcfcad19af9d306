"""Building blocks every resource's schemas use."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class Input(BaseModel):
    """A request body or query: unknown fields are refused, strings trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Output(BaseModel):
    model_config = ConfigDict(extra="ignore")


Limit = Annotated[int, Field(ge=1, le=100, description="page size (default 20, max 100)")]
Cursor = Annotated[str | None, Field(default=None, max_length=200, description="opaque cursor from `next_cursor`")]


class PageQuery(Input):
    limit: Limit = 20
    cursor: Cursor = None


class ErrorBody(Output):
    code: str
    message: str
    request_id: str
    fields: dict[str, str] | None = Field(default=None, description="per-field problems (422 only)")


class ErrorEnvelope(Output):
    error: ErrorBody
