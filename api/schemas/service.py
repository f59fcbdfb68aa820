"""Health, liveness and usage answers."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from api.schemas.common import Answer


class PoolFigures(Answer):
    size: int = Field(description="Connections open")
    idle: int = Field(description="Connections idle")
    max: int = Field(description="Most connections the pool opens")


class AuditFigures(Answer):
    write_failures: int = Field(description="Audit rows that could not be written since start-up")


class DatabaseHealth(Answer):
    status: Literal["ok", "unavailable"]
    latency_ms: float | None = Field(None, description="Round trip of the probe")
    server_version: str | None = None
    pgvector_version: str | None = None
    schema_version: str | None = Field(None, description="The last migration applied")
    reason: str | None = Field(None, description="Why the database is unavailable")


class Health(Answer):
    status: Literal["healthy", "unhealthy"]
    version: str
    timestamp: datetime
    pool: PoolFigures
    audit: AuditFigures
    database: DatabaseHealth


class Live(Answer):
    status: Literal["alive"]
    version: str
    timestamp: datetime


class Usage(Answer):
    institution: str = Field(description="Your institution's slug")
    tier: str
    window: Literal["hourly"]
    limit: int = Field(description="Requests per UTC hour")
    used: int = Field(description="Requests counted this hour, this one included")
    remaining: int
    reset_at: datetime = Field(description="When the quota resets (the top of the next UTC hour)")
