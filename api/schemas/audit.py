"""GET /api/v1/audit: its query parameters, its page, and the opaque cursor between pages."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator

from api.problems import InvalidInput
from api.schemas.common import Answer, Body

MAX_LIMIT = 1000
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,200}$"
NO_NUL = r"^[^\x00]+$"
_CURSOR = re.compile(CURSOR_PATTERN)
_CURSOR_TEXT = re.compile(r"(\d{4}-\d\d-\d\dT[0-9:.+]{8,32})\|(\d{1,19})")


ISO_TIME = r"^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d{1,6})?)?)?(Z|[+-]\d\d:\d\d)?$"
_ISO_TIME = re.compile(ISO_TIME)


def _iso_time(value: Any) -> Any:
    """Only ISO 8601 text: pydantic alone would also take "0.5" as seconds since 1970."""
    if not isinstance(value, str) or not _ISO_TIME.fullmatch(value):
        raise ValueError("must be an ISO 8601 date-time such as 2026-11-28T12:00:00Z")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_iso_time), WithJsonSchema({"type": "string", "pattern": ISO_TIME})]


class AuditQuery(Body):
    """Query parameters: all optional; the query string gives them as text."""

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)
    since: Timestamp | None = Field(None, description="Rows at or after this ISO 8601 time (naive means UTC)")
    until: Timestamp | None = Field(None, description="Rows before this ISO 8601 time (naive means UTC)")
    action: str | None = Field(
        None, min_length=1, max_length=1000, pattern=NO_NUL, description="e.g. `GET /api/v1/usage`"
    )
    status: int | None = Field(None, ge=100, le=599, description="HTTP status of the row")
    trace_id: str | None = Field(
        None, min_length=1, max_length=128, pattern=NO_NUL, description="One request's trace id"
    )
    limit: int = Field(100, ge=1, le=MAX_LIMIT, description="Rows per page (1-1000); not with format=jsonl")
    cursor: str | None = Field(
        None, pattern=CURSOR_PATTERN, description="next_cursor of the previous page; not with format=jsonl"
    )
    format: Literal["json", "jsonl"] = Field("json", description="jsonl streams the whole selection as JSON lines")

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        try:
            return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
        except OverflowError:
            raise ValueError("is outside the range of dates") from None

    @field_validator("status", "limit", mode="before")
    @classmethod
    def _digits(cls, value: Any) -> Any:
        # Plain digits only (no "+5", "5.0", " 5" or 10,000-digit numbers).
        if isinstance(value, str) and not (value.isascii() and value.isdigit() and len(value) <= 9):
            raise ValueError("must be a whole number")
        return value

    def checked(self) -> AuditQuery:
        """The rules between parameters, each naming the parameter at fault."""
        if self.since and self.until and self.since >= self.until:
            raise InvalidInput.query("until", "must be later than since")
        if self.format == "jsonl":
            for name in ("limit", "cursor"):
                if name in self.model_fields_set:
                    raise InvalidInput.query(name, "does not apply to format=jsonl, which streams the whole selection")
        return self

    def filters(self) -> dict:
        return {
            name: getattr(self, name)
            for name in ("since", "until", "action", "trace_id", "status")
            if getattr(self, name) is not None
        }


def encode_cursor(occurred_at: datetime, row_id: int) -> str:
    raw = f"{occurred_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(raw: str) -> tuple[datetime, int]:
    """A cursor this API returned; anything else is a 422 (checked by shape before it is decoded)."""
    problem = InvalidInput.query("cursor", "is not a cursor this API returned")
    if not _CURSOR.fullmatch(raw):
        raise problem
    try:
        match = _CURSOR_TEXT.fullmatch(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii"))
        if match is None:
            raise problem
        occurred_at, row_id = datetime.fromisoformat(match.group(1)), int(match.group(2))
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise problem from None
    if occurred_at.tzinfo is None or not 0 < row_id < 2**63:
        raise problem
    return occurred_at.astimezone(UTC), row_id


class AuditItem(Answer):
    id: int = Field(description="The row's id, increasing in insertion order")
    occurred_at: datetime = Field(description="When the request arrived (UTC)")
    institution: str = Field(description="The caller's institution, or `anonymous` before authentication")
    action: str = Field(description="Method and path, e.g. `GET /api/v1/usage`")
    trace_id: str = Field(description="The request's trace id (X-Trace-ID)")
    resource_type: str | None = Field(description="`http_request`")
    resource_id: str | None = Field(description="The request path")
    ip_address: str | None = Field(description="The client's address")
    user_agent: str | None = Field(description="The client's User-Agent, cleaned and cut to 512 characters")
    metadata: dict[str, Any] = Field(
        description="method, endpoint, query, status_code, response_time_ms, "
        "request_bytes, response_bytes, request_sha256, content_type, …"
    )


class AuditPage(Answer):
    items: list[AuditItem] = Field(description="Newest first")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last")
