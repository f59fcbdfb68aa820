"""The audit row of a job's end: action `job:<type>`, trace id `job-<uuid>`, its outcome and duration."""

from __future__ import annotations

from datetime import UTC, datetime

from db.audit import AuditRow


def job_row(
    *,
    job_id,
    job_type: str,
    institution: str,
    outcome: str,
    attempt: int,
    submitted_trace_id: str,
    worker: str | None,
    duration_ms: int | None,
    error: str | None = None,
    peak_rss_bytes: int | None = None,
) -> AuditRow:
    metadata = {
        "job_id": str(job_id),
        "type": job_type,
        "outcome": outcome,
        "attempt": attempt,
        "duration_ms": duration_ms,
        "submitted_trace_id": submitted_trace_id,
        "worker": worker,
    }
    if error is not None:
        metadata["error"] = error
    if peak_rss_bytes is not None:
        metadata["peak_rss_mib"] = round(peak_rss_bytes / 2**20, 1)
    return AuditRow(
        occurred_at=datetime.now(UTC),
        institution=institution,
        action=f"job:{job_type}",
        trace_id=f"job-{job_id}",
        resource_type="job",
        resource_id=str(job_id),
        ip_address=None,
        user_agent=None,
        metadata=metadata,
    )
