"""/api/v1/jobs: a job as the API shows it, a page of them, and the opaque cursor between pages."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from api.problems import InvalidInput
from api.schemas.audit import CURSOR_PATTERN
from api.schemas.common import Answer, Body

MAX_LIMIT = 200
_CURSOR = re.compile(CURSOR_PATTERN)
_CURSOR_TEXT = re.compile(r"(\d{4}-\d\d-\d\dT[0-9:.+]{8,32})\|([0-9a-f]{32})")

JobType = Literal["build", "qac_fit", "qac_apply"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobsQuery(Body):
    """Query parameters of the list: the query string gives them as text."""

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)
    limit: int = Field(50, ge=1, le=MAX_LIMIT, description="Jobs per page (1-200)")
    cursor: str | None = Field(None, pattern=CURSOR_PATTERN, description="next_cursor of the previous page")

    @field_validator("limit", mode="before")
    @classmethod
    def _digits(cls, value: Any) -> Any:
        if isinstance(value, str) and not (value.isascii() and value.isdigit() and len(value) <= 9):
            raise ValueError("must be a whole number")
        return value


def encode_cursor(created_at: datetime, job_id: uuid.UUID) -> str:
    raw = f"{created_at.astimezone(UTC).isoformat()}|{job_id.hex}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(raw: str) -> tuple[datetime, uuid.UUID]:
    """A cursor this API returned; anything else is a 422."""
    problem = InvalidInput.query("cursor", "is not a cursor this API returned")
    if not _CURSOR.fullmatch(raw):
        raise problem
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
        match = _CURSOR_TEXT.fullmatch(text)
        if match is None:
            raise problem
        created_at, job_id = datetime.fromisoformat(match.group(1)), uuid.UUID(hex=match.group(2))
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise problem from None
    if created_at.tzinfo is None:
        raise problem
    return created_at.astimezone(UTC), job_id


class JobInfo(Answer):
    id: uuid.UUID = Field(description="The job's id; GET /api/v1/jobs/{id} follows it")
    type: JobType = Field(description="What the job does: build (a genomics build from an upload), qac_fit, qac_apply")
    status: JobStatus = Field(description="queued → running → succeeded | failed | cancelled")
    progress: float = Field(ge=0, le=1, description="0 to 1, as the job reports it")
    project_id: str | None = Field(description="The genomics project the job is about, if any")
    cancel_requested: bool = Field(description="DELETE was called while it ran; its worker stops it shortly")
    created_at: datetime = Field(description="When it was submitted (UTC)")
    started_at: datetime | None = Field(description="When its current or last attempt started")
    finished_at: datetime | None = Field(description="When it ended, whatever the outcome")
    result: dict[str, Any] | None = Field(description="What it produced, once succeeded")
    error: str | None = Field(description="Why it failed, in plain words, once failed")


class JobPage(Answer):
    items: list[JobInfo] = Field(description="Newest first")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last")
