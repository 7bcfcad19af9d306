"""Schemas of /api/jobs and /api/applications."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, model_validator

from hmb.web.schemas.common import MAX_ID, Cursor, Input, Limit, Output, Query

EmploymentType = Literal["full_time", "part_time", "contract", "internship", "temporary"]
JobStatus = Literal["open", "closed"]
ApplicationStatus = Literal["submitted", "reviewing", "interview", "offered", "rejected", "withdrawn"]

Title = Annotated[str, Field(min_length=1, max_length=200)]
Company = Annotated[str, Field(min_length=1, max_length=200)]
Description = Annotated[str, Field(min_length=1, max_length=20_000)]
Location = Annotated[str, Field(max_length=200)]
Salary = Annotated[int, Field(ge=0, le=100_000_000, description="yearly, in `currency`")]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]


class JobIn(Input):
    title: Title
    company: Company
    description: Description
    location: Location = ""
    employment_type: EmploymentType
    remote: bool = False
    salary_min: Salary | None = None
    salary_max: Salary | None = None
    currency: Currency = "BSD"

    @model_validator(mode="after")
    def _range(self) -> JobIn:
        if self.salary_min is not None and self.salary_max is not None and self.salary_min > self.salary_max:
            raise ValueError("salary_min must not be above salary_max")
        return self


class JobPatch(Input):
    """Only the fields sent change; salaries may be cleared with null. `status` reopens or closes."""

    title: Title | None = None
    company: Company | None = None
    description: Description | None = None
    location: Location | None = None
    employment_type: EmploymentType | None = None
    remote: bool | None = None
    salary_min: Salary | None = None
    salary_max: Salary | None = None
    currency: Currency | None = None
    status: JobStatus | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> JobPatch:
        for name in self.model_fields_set - {"salary_min", "salary_max"}:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class Job(Output):
    id: int
    employer_id: int
    title: str
    company: str
    description: str
    location: str
    employment_type: EmploymentType
    remote: bool
    salary_min: int | None
    salary_max: int | None
    currency: str
    status: JobStatus
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


class JobSummary(Output):
    """A search result: the listing without its full description."""

    id: int
    employer_id: int
    title: str
    company: str
    summary: str = Field(description="the description's first 280 characters")
    location: str
    employment_type: EmploymentType
    remote: bool
    salary_min: int | None
    salary_max: int | None
    currency: str
    status: JobStatus
    created_at: datetime


class JobPage(Output):
    items: list[JobSummary]
    next_cursor: str | None


class JobsQuery(Query):
    q: Annotated[
        str | None, Field(default=None, max_length=200, description='words to find; websearch syntax: "quoted phrase", or, -not')
    ] = None
    location: Annotated[str | None, Field(default=None, max_length=100, description="part of the location, any case")] = None
    type: EmploymentType | None = None
    remote: bool | None = None
    salary_min: Annotated[int | None, Field(default=None, ge=0, le=100_000_000, description="jobs paying at least this (yearly)")] = None
    employer_id: Annotated[int | None, Field(default=None, ge=1, le=MAX_ID)] = None
    status: JobStatus = "open"
    limit: Limit = 20
    cursor: Cursor = None


class ApplyIn(Input):
    cover_letter: Annotated[str, Field(max_length=10_000)] = ""
    resume_file_id: Annotated[int, Field(ge=1, le=MAX_ID, description="a file you uploaded with purpose=resume")]


class ApplicationPatch(Input):
    status: ApplicationStatus


class JobRef(Output):
    id: int
    title: str
    company: str
    status: JobStatus


class ApplicantRef(Output):
    id: int
    name: str
    headline: str


class Application(Output):
    id: int
    job: JobRef
    applicant: ApplicantRef
    resume_file_id: int | None
    cover_letter: str
    status: ApplicationStatus
    created_at: datetime
    updated_at: datetime


class ApplicationPage(Output):
    items: list[Application]
    next_cursor: str | None


class ApplicationsQuery(Query):
    status: ApplicationStatus | None = None
    limit: Limit = 20
    cursor: Cursor = None
