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
    status: Literal["ok", "unavailable"] = Field(description="Whether the database answered in time")
    latency_ms: float | None = Field(None, description="Round trip of the probe")
    server_version: str | None = Field(None, description="PostgreSQL's version")
    pgvector_version: str | None = Field(None, description="The vector extension's version")
    schema_version: str | None = Field(None, description="The last migration applied")
    reason: str | None = Field(None, description="Why the database is unavailable")


class Health(Answer):
    status: Literal["healthy", "unhealthy"] = Field(description="healthy when the database answered in time")
    version: str = Field(description="The service's version")
    timestamp: datetime = Field(description="When this answer was made (UTC)")
    pool: PoolFigures = Field(description="This process's connection pool")
    audit: AuditFigures = Field(description="This process's audit writer")
    database: DatabaseHealth = Field(description="What the database probe found")


class Live(Answer):
    status: Literal["alive"] = Field(description="Always alive: the process serves")
    version: str = Field(description="The service's version")
    timestamp: datetime = Field(description="When this answer was made (UTC)")


class Usage(Answer):
    institution: str = Field(description="Your institution's slug")
    tier: str = Field(description="academic, nonprofit, commercial or internal")
    window: Literal["hourly"] = Field(description="The quota's window: a UTC hour")
    limit: int = Field(description="Requests per UTC hour")
    used: int = Field(description="Requests counted this hour, this one included")
    remaining: int = Field(description="Requests left this hour")
    reset_at: datetime = Field(description="When the quota resets (the top of the next UTC hour)")
    # The original service's names, kept so its clients work unchanged (README: Clients of the original service).
    requests_made: int = Field(description="The same number as `used`, under the original service's name")
    reset_time: datetime = Field(
        description="The same time as `reset_at` (ISO 8601), under the original service's name"
    )
