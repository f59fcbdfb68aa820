"""An upload build becomes a `build` job: the file goes into job_inputs and the job row is queued, in
one transaction with the request's audit row; the answer is 202 with Location: /api/v1/jobs/{id}.

A second build of a project while one is queued or running is 409 (the jobs table's partial unique
index decides, so two concurrent uploads cannot both get in). The temporary file is deleted before
the answer leaves, whatever happens.
"""

from __future__ import annotations

import asyncio

import asyncpg
import h5py
from starlette.requests import Request
from starlette.responses import Response

from api import build_job_type as build_job
from api.audited_write import audited_write
from api.caller import caller_of
from api.endpoint import answer
from api.problems import InvalidInput, Problem
from api.schemas.genomics_upload import BuildUploadFields, parse_upload_fields
from api.schemas.jobs import JobInfo
from api.upload import Upload, receive_upload
from db import jobs
from db.pool import lend

ACTIVE_BUILD_INDEX = "jobs_one_active_per_project"


def _check_container(path) -> None:
    """The cheap checks that need no matrix read, answered as 422 at once rather than as a failed job
    later; everything else about the file (layers, keys, values) is the job's to find."""
    if not h5py.is_hdf5(path):
        raise InvalidInput("/file", "is not an HDF5 file (an .h5ad file is HDF5)")
    try:
        with h5py.File(path, "r") as f:
            if "obs" not in f or "var" not in f:
                raise InvalidInput("/file", "is HDF5 but not AnnData: it has no obs and var groups")
    except OSError:
        raise InvalidInput("/file", "cannot be read as HDF5 (truncated or corrupt)") from None


async def submit_upload_build(request: Request, upload: Upload, options: BuildUploadFields) -> Response:
    """Queue the build of an uploaded file; the caller has received it (and owns nothing after this)."""
    caller = caller_of(request)
    settings = request.state.settings
    try:
        await asyncio.to_thread(_check_container, upload.path)
        async with lend(request.state.pool, settings.acquire_timeout) as conn, audited_write(request, conn) as audit:
            try:
                job = await jobs.submit(
                    conn,
                    caller.institution_id,
                    build_job.NAME,
                    build_job.params_of(options),
                    trace_id=request.scope["trace_id"],
                    max_attempts=settings.job_max_attempts,
                    project_id=options.project_id,
                    input_file=upload.path,
                    copy_timeout=settings.long_request_timeout,
                )
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name != ACTIVE_BUILD_INDEX:
                    raise
                raise Problem(
                    409,
                    f"project {options.project_id!r} already has a build queued or running; "
                    "wait for it (GET /api/v1/jobs) or cancel it (DELETE /api/v1/jobs/{id})",
                ) from None
            response = answer(JobInfo, dict(job), status=202, headers={"Location": f"/api/v1/jobs/{job['id']}"})
            audit.answer_with(response)
    finally:
        upload.discard()
    runner = request.state.job_runner
    if runner is not None:
        runner.wake()
    return response


async def receive_and_submit(request: Request) -> Response:
    """Receive the multipart upload (413/400 as it streams), check its fields (422), then submit it."""
    upload = await receive_upload(request, request.state.settings.max_upload_bytes)
    try:
        options = parse_upload_fields(upload.fields)
    except BaseException:
        upload.discard()
        raise
    return await submit_upload_build(request, upload, options)
