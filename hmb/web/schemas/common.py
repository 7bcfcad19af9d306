"""Building blocks every resource's schemas use."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Input(BaseModel):
    """A request body or query: unknown fields are refused, strings trimmed, NUL refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold U+0000: refused here (422), not by the database (a 500).
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL (U+0000) characters")
        return value


class Query(Input):
    """A query string. Frozen: the all-defaults one is validated once and shared (hmb.web.http.parse_query)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class Output(BaseModel):
    model_config = ConfigDict(extra="ignore")


# Ids are bigint: a larger number would reach the database as an error (a 500), not a miss.
MAX_ID = 2**63 - 1
Limit = Annotated[int, Field(ge=1, le=100, description="page size (default 20, max 100)")]
Cursor = Annotated[str | None, Field(default=None, max_length=200, description="opaque cursor from `next_cursor`")]


class PageQuery(Query):
    limit: Limit = 20
    cursor: Cursor = None


class ErrorBody(Output):
    code: str
    message: str
    request_id: str
    fields: dict[str, str] | None = Field(default=None, description="per-field problems (422 only)")


class ErrorEnvelope(Output):
    error: ErrorBody
