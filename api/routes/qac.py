"""/api/v1/quantum/qac: fit a graph-smoothing model on an embedding, apply it, read the model, and
follow the jobs that fit or apply without sync.

Parsing and the maths run in a worker thread (a body can hold 50,000 × 32 numbers); the event
loop only does IO. The fit's model row, or a job with its input, is committed with its audit row.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from api import qac_job_types as job_kinds
from api.audited_write import audited_write
from api.body import check_json_request, parse_json
from api.caller import caller_of
from api.endpoint import Endpoint, answer
from api.problems import InvalidInput, Problem
from api.routes.collections import borrow
from api.schemas.common import path_uuid
from api.schemas.qac import (
    ApplyAnswer,
    ApplyRequest,
    FitAnswer,
    FitRequest,
    QacJob,
    QacModel,
    job_answer,
    parse_apply,
    parse_fit,
)
from db import jobs, qac_jobs, qac_models
from genomics import qac
from genomics.qac_runs import apply_json, apply_model, fit_model


def no_model(model_id: str) -> Problem:
    return Problem(404, f"no QAC model {model_id!r}; fit one with POST /api/v1/quantum/qac/fit")


def _check_sync_size(request: Request, n_cells: int) -> None:
    limit = request.state.settings.qac_max_sync_cells
    if n_cells > limit:
        raise InvalidInput(
            "/sync",
            f"sync: true computes in the request and allows at most {limit} cells; "
            f"this embedding has {n_cells}: send sync: false to run it as a job",
        )


async def _body(request: Request) -> bytes:
    caller_of(request)
    check_json_request(request.headers)
    return await request.body()


async def qac_fit(request: Request) -> Response:
    caller = caller_of(request)
    parsed = await asyncio.to_thread(lambda body: parse_fit(parse_json(body)), await _body(request))
    model_id = uuid.uuid4()
    if not parsed.sync:
        params = job_kinds.fit_params_json(model_id, parsed.params, parsed.seed)
        return await _submit(
            request, job_kinds.FIT, params, lambda path: job_kinds.write_fit_input(path, parsed.embedding)
        )
    _check_sync_size(request, parsed.embedding.shape[0])
    model, result = await asyncio.to_thread(_fit, model_id, parsed.embedding, parsed.params)
    async with borrow(request) as conn, audited_write(request, conn) as audit:
        await qac_models.insert(conn, caller.institution_id, model)
        response = answer(FitAnswer, result)
        audit.answer_with(response)
    return response


def _fit(model_id, embedding, params):
    try:
        return fit_model(model_id, embedding, params)
    except qac.EmbeddingError as exc:
        raise InvalidInput("/embedding", str(exc)) from None


def _answer_apply(model, embedding) -> Response:
    try:
        result = apply_model(model, embedding)
    except qac.RowCountMismatch as exc:
        raise InvalidInput("/embedding", str(exc)) from None
    # The shape is checked without its (up to 1.6 million) numbers, which are floats by construction:
    # validating and dumping them in pydantic is one long GIL hold (see apply_json).
    ApplyAnswer.model_validate({**result, "embedding_qac": []})
    return Response(apply_json(result), media_type="application/json")


def _check_row_count(model, embedding) -> None:
    if embedding.shape[0] != model.n_cells:
        raise InvalidInput(
            "/embedding", f"the model was fitted on {model.n_cells} cells; this embedding has {embedding.shape[0]}"
        )


async def _submit(request: Request, job_type: str, params: dict, write_input: Callable[[Path], None]) -> Response:
    """Queue a job with its input file, committed with the request's audit row; answers the job."""
    caller, state = caller_of(request), request.state
    handle, name = tempfile.mkstemp(prefix="qac-input-")
    os.close(handle)
    path = Path(name)
    try:
        await asyncio.to_thread(write_input, path)
        async with borrow(request) as conn, audited_write(request, conn) as audit:
            job = await jobs.submit(
                conn,
                caller.institution_id,
                job_type,
                params,
                trace_id=request.scope["trace_id"],
                max_attempts=state.settings.job_max_attempts,
                input_file=path,
            )
            row = await qac_jobs.get(conn, caller.institution_id, job["id"])
            response = Response(job_answer(row), media_type="application/json")
            audit.answer_with(response)
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    runner = getattr(state, "job_runner", None)
    if runner is not None:
        runner.wake()
    return response


async def qac_apply(request: Request) -> Response:
    caller = caller_of(request)
    parsed = await asyncio.to_thread(lambda body: parse_apply(parse_json(body)), await _body(request))
    if parsed.sync:
        _check_sync_size(request, parsed.embedding.shape[0])
    async with borrow(request) as conn:
        model = await qac_models.get_with_graph(conn, caller.institution_id, parsed.model_id)
    if model is None:
        raise no_model(str(parsed.model_id))
    _check_row_count(model, parsed.embedding)
    if not parsed.sync:
        params = job_kinds.apply_params_json(model, parsed.seed)
        return await _submit(
            request, job_kinds.APPLY, params, lambda path: job_kinds.write_apply_input(path, parsed.embedding, model)
        )
    return await asyncio.to_thread(_answer_apply, model, parsed.embedding)


async def get_qac_model(request: Request) -> Response:
    caller = caller_of(request)
    text = request.path_params["model_id"]
    model_id = path_uuid(text)
    if model_id is None:
        raise no_model(text)
    async with borrow(request) as conn:
        row = await qac_models.get(conn, caller.institution_id, model_id)
    if row is None:
        raise no_model(text)
    fields = {key: row[key] for key in QacModel.model_fields if key != "model_id"}
    return answer(QacModel, {**fields, "model_id": str(row["id"])})


def no_job(job_id: str) -> Problem:
    return Problem(404, f"no QAC job {job_id[:100]!r}")


async def get_qac_job(request: Request) -> Response:
    caller = caller_of(request)
    text = request.path_params["job_id"]
    job_id = path_uuid(text)
    if job_id is None:
        raise no_job(text)
    smoothed = None
    async with borrow(request) as conn:
        row = await qac_jobs.get(conn, caller.institution_id, job_id)
        if row is not None and row["type"] == job_kinds.APPLY and row["status"] == "succeeded":
            smoothed = await qac_jobs.output(conn, job_id)
    if row is None:
        raise no_job(text)
    return Response(await asyncio.to_thread(job_answer, row, smoothed), media_type="application/json")


endpoints = [
    Endpoint(
        "POST",
        "/api/v1/quantum/qac/fit",
        qac_fit,
        "Fit a QAC model: the kNN graph of an embedding (sync: false answers a job)",
        "qac",
        FitAnswer,
        body=FitRequest,
    ),
    Endpoint(
        "POST",
        "/api/v1/quantum/qac/apply",
        qac_apply,
        "Apply a QAC model: smooth an embedding over the fitted graph (sync: false answers a job)",
        "qac",
        ApplyAnswer,
        body=ApplyRequest,
        errors=(404,),
    ),
    Endpoint(
        "GET", "/api/v1/quantum/qac/models/{model_id}", get_qac_model, "A QAC model", "qac", QacModel, errors=(404,)
    ),
    Endpoint(
        "GET",
        "/api/v1/quantum/qac/jobs/{job_id}",
        get_qac_job,
        "A QAC fit or apply job: status, progress, then result or error",
        "qac",
        QacJob,
        errors=(404,),
    ),
]
