"""The job types the service runs, by name: each feature that adds a job type registers it here."""

from __future__ import annotations

from api import build_job_type as build_job
from api import qac_job_types as qac_jobs
from workers.job_types import JobType


def product_job_types() -> dict[str, JobType]:
    return {
        build_job.NAME: JobType(build_job.NAME, "api.build_job_type:run", build_job.finish),
        **qac_jobs.job_types(),
    }
