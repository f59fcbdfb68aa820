"""/api/v1/quantum/qac: fit a graph-smoothing model on an embedding, apply it, read the model.

Parsing and the maths run in a worker thread (a body can hold 50,000 × 32 numbers); the event
loop only does IO. The fit's model row is committed with its audit row.
"""

from __future__ import annotations

import asyncio
import uuid

from starlette.requests import Request
from starlette.responses import Response

from api.audited_write import audited_write
from api.body import check_json_request, parse_json
from api.caller import caller_of
from api.endpoint import Endpoint, answer
from api.problems import InvalidInput, Problem
from api.routes.collections import borrow
from api.schemas.qac import (
    ApplyRequest,
    ApplyResult,
    FitRequest,
    FitResult,
    QacModel,
    model_uuid,
    parse_apply,
    parse_fit,
)
from db import qac_models
from genomics import qac
from genomics.qac_runs import apply_model, fit_model


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


async def fit(request: Request) -> Response:
    caller = caller_of(request)
    parsed = await asyncio.to_thread(lambda body: parse_fit(parse_json(body)), await _body(request))
    _check_sync_size(request, parsed.embedding.shape[0])
    model, result = await asyncio.to_thread(_fit, uuid.uuid4(), parsed.embedding, parsed.params)
    async with borrow(request) as conn, audited_write(request, conn) as audit:
        await qac_models.insert(conn, caller.institution_id, model)
        response = answer(FitResult, result)
        audit.answer_with(response)
    return response


def _fit(model_id, embedding, params):
    try:
        return fit_model(model_id, embedding, params)
    except qac.EmbeddingError as exc:
        raise InvalidInput("/embedding", str(exc)) from None


def _answer_apply(model, embedding) -> Response:
    try:
        return answer(ApplyResult, apply_model(model, embedding))
    except qac.RowCountMismatch as exc:
        raise InvalidInput("/embedding", str(exc)) from None


async def apply(request: Request) -> Response:
    caller = caller_of(request)
    parsed = await asyncio.to_thread(lambda body: parse_apply(parse_json(body)), await _body(request))
    _check_sync_size(request, parsed.embedding.shape[0])
    async with borrow(request) as conn:
        model = await qac_models.get_with_graph(conn, caller.institution_id, parsed.model_id)
    if model is None:
        raise no_model(str(parsed.model_id))
    return await asyncio.to_thread(_answer_apply, model, parsed.embedding)


async def get_model(request: Request) -> Response:
    caller = caller_of(request)
    text = request.path_params["model_id"]
    model_id = model_uuid(text)
    if model_id is None:
        raise no_model(text)
    async with borrow(request) as conn:
        row = await qac_models.get(conn, caller.institution_id, model_id)
    if row is None:
        raise no_model(text)
    fields = {key: row[key] for key in QacModel.model_fields if key != "model_id"}
    return answer(QacModel, {**fields, "model_id": str(row["id"])})


endpoints = [
    Endpoint(
        "POST",
        "/api/v1/quantum/qac/fit",
        fit,
        "Fit a QAC model: the kNN graph of an embedding",
        "qac",
        FitResult,
        body=FitRequest,
    ),
    Endpoint(
        "POST",
        "/api/v1/quantum/qac/apply",
        apply,
        "Apply a QAC model: smooth an embedding over the fitted graph",
        "qac",
        ApplyResult,
        body=ApplyRequest,
        errors=(404,),
    ),
    Endpoint("GET", "/api/v1/quantum/qac/models/{model_id}", get_model, "A QAC model", "qac", QacModel, errors=(404,)),
]
