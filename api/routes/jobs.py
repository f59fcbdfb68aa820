"""/api/v1/jobs: the caller's background jobs: list them, follow one, cancel one.

Scoped by institution like everything else: another institution's job, or an id that is not a
UUID, is simply not found (404).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from api.audited_write import audited_write
from api.body import validated_query
from api.caller import caller_of
from api.endpoint import Endpoint, answer
from api.problems import Problem
from api.routes.collections import borrow
from api.schemas.common import path_uuid
from api.schemas.jobs import JobInfo, JobPage, JobsQuery, decode_cursor, encode_cursor
from db import jobs


def _not_found(raw: str) -> Problem:
    return Problem(404, f"no job with id {raw[:100]!r}")


async def list_jobs(request: Request) -> Response:
    caller = caller_of(request)
    query = validated_query(JobsQuery, request.query_params)
    cursor = decode_cursor(query.cursor) if query.cursor is not None else None
    async with borrow(request) as conn:
        rows = await jobs.page(conn, caller.institution_id, cursor, query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    last = rows[-1] if more else None
    return answer(
        JobPage,
        {
            "items": [dict(r) for r in rows],
            "next_cursor": encode_cursor(last["created_at"], last["id"]) if last else None,
        },
    )


async def get_job(request: Request) -> Response:
    caller = caller_of(request)
    raw = request.path_params["id"]
    job_id = path_uuid(raw)
    if job_id is None:
        raise _not_found(raw)
    async with borrow(request) as conn:
        job = await jobs.get(conn, caller.institution_id, job_id)
    if job is None:
        raise _not_found(raw)
    return answer(JobInfo, dict(job))


async def cancel_job(request: Request) -> Response:
    caller = caller_of(request)
    raw = request.path_params["id"]
    job_id = path_uuid(raw)
    if job_id is None:
        raise _not_found(raw)
    async with borrow(request) as conn:
        async with audited_write(request, conn) as audit:
            job = await jobs.request_cancel(conn, caller.institution_id, job_id)
            if job is None:
                existing = await jobs.get(conn, caller.institution_id, job_id)
                if existing is None:
                    raise _not_found(raw)
                raise Problem(409, f"the job has already ended ({existing['status']}); there is nothing to cancel")
            response = answer(JobInfo, dict(job))
            audit.answer_with(response)
    return response


endpoints = [
    Endpoint(
        "GET", "/api/v1/jobs", list_jobs, "Your institution's jobs, newest first", "jobs", JobPage, query=JobsQuery
    ),
    Endpoint(
        "GET", "/api/v1/jobs/{id}", get_job, "One of your jobs: status, progress, result or error", "jobs", JobInfo
    ),
    Endpoint(
        "DELETE",
        "/api/v1/jobs/{id}",
        cancel_job,
        "Cancel a job: a queued one at once, a running one as soon as its worker sees it",
        "jobs",
        JobInfo,
        errors=(409,),
    ),
]
