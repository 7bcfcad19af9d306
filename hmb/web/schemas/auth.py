"""Schemas of /api/auth."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from hmb.security import is_breached
from hmb.web.schemas.common import Input, Output


def _normalise_email(value: str) -> str:
    local, sep, domain = value.strip().rpartition("@")
    if not sep or not local or "." not in domain or any(c.isspace() for c in value.strip()):
        raise ValueError("not a valid email address")
    return f"{local}@{domain}".lower()


Email = Annotated[str, Field(min_length=3, max_length=254), AfterValidator(_normalise_email)]
def _not_breached(value: str) -> str:
    if is_breached(value):
        raise ValueError("this password is among the most common breached passwords; choose another")
    return value


# No truncation: argon2 hashes the whole password; the cap only bounds hashing work.
Password = Annotated[str, Field(min_length=10, max_length=1024)]
NewPassword = Annotated[Password, AfterValidator(_not_breached)]
Name = Annotated[str, Field(min_length=1, max_length=100)]


class RegisterIn(Input):
    email: Email
    password: NewPassword
    name: Name
    role: Literal["seeker", "employer"]


class LoginIn(Input):
    email: Email
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class RefreshIn(Input):
    refresh_token: Annotated[str, Field(min_length=1, max_length=200)]


class LogoutIn(Input):
    refresh_token: Annotated[str | None, Field(default=None, max_length=200)] = None


class Me(Output):
    id: int
    email: str
    name: str
    role: str
    headline: str
    bio: str
    location: str
    created_at: datetime
    updated_at: datetime


class TokenPair(Output):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="seconds until the access token expires")


class Session(TokenPair):
    user: Me
