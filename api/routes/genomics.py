"""/api/v1/genomics: compress expression matrices, build a project's vectors, encode marker-gene
queries in the project's space, and search the project's cells or clusters.

Parsing, validation and the maths run in a worker thread (a request can carry tens of megabytes
of numbers); the event loop only does IO.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from api.audited_write import audited_write
from api.body import check_json_request, parse_json
from api.caller import caller_of
from api.endpoint import Endpoint, answer, json_body
from api.genomics_build import json_build, upload_build
from api.problems import InvalidInput, Problem
from api.routes.collections import borrow, index_maintainer
from api.routes.vectors import run_search
from api.schemas.common import PROJECT_ID_PATTERN
from api.schemas.genomics import (
    BuildRequest,
    CompressRequest,
    EncodeRequest,
    ProjectSearchRequest,
    parse_compress,
    parse_encode,
    parse_project_search,
    project_query_vector,
)
from api.schemas.genomics_results import BuildResult, CompressResult, EncodeResult, Project, ProjectSearchResult
from api.schemas.genomics_upload import BuildUploadFields, BuildUploadForm, parse_upload_fields
from api.upload import Upload, is_multipart, receive_upload
from core.vector_bounds import first_incomparable
from db import collections as db_collections
from db import genomics_projects
from db.genomics_projects import Build
from genomics.pca import Basis, MarkerError, MatrixError, compress, encode_markers

_PROJECT_ID = re.compile(PROJECT_ID_PATTERN)


def _dumps(content: Any) -> bytes:
    return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def no_project(pid: str) -> Problem:
    return Problem(404, f"no genomics project {pid!r}; build it first with POST /api/v1/genomics/vectors/build")


def _compressed(matrix, target: int, params, seed: int):
    """The PCA of a request's matrix; what the maths cannot use is a 422 on the matrix."""
    try:
        return compress(matrix, target, params, seed)
    except MatrixError as exc:
        raise InvalidInput("/expression_matrix", str(exc)) from None


def _compress(body: bytes) -> bytes:
    request = parse_compress(parse_json(body))
    started = time.perf_counter()
    result = _compressed(request.matrix, request.target, request.params, request.seed)
    stats = {**result.stats(), "cells": int(request.matrix.shape[0]), "runtime_ms": _ms(started)}
    return _dumps({"compressed_matrix": result.vectors.tolist(), "stats": stats})


async def compress_matrix(request: Request) -> Response:
    caller_of(request)
    check_json_request(request.headers)
    body = await request.body()
    return Response(await asyncio.to_thread(_compress, body), media_type="application/json")


async def receive_build_upload(request: Request) -> tuple[Upload, BuildUploadFields]:
    """A multipart build's file (streamed to a temporary file) and its checked options; the caller
    owns the file (Upload.discard()); on any error here it is already gone."""
    upload = await receive_upload(request, request.state.settings.max_upload_bytes)
    try:
        return upload, parse_upload_fields(upload.fields)
    except BaseException:
        upload.discard()
        raise


async def _prepare_upload(request: Request) -> tuple[Build, dict[str, Any]]:
    # Interim: the upload is built inside the request; the jobs branch turns this into a 202 and a job.
    upload, options = await receive_build_upload(request)
    try:
        return await asyncio.to_thread(upload_build, upload.path, options)
    finally:
        upload.discard()


async def build_vectors(request: Request) -> Response:
    caller = caller_of(request)
    if is_multipart(request.headers):
        build, summary = await _prepare_upload(request)
    else:
        check_json_request(request.headers)
        body = await request.body()
        build, summary = await asyncio.to_thread(json_build, body)
    started = time.perf_counter()
    async with borrow(request) as conn, audited_write(request, conn) as audit:
        replaced = await genomics_projects.replace(conn, caller.institution_id, build)
        response = answer(BuildResult, {**summary, "vector_count": replaced.vector_count, "store_ms": _ms(started)})
        audit.answer_with(response)
    if replaced.previous_collection_id is not None:
        index_maintainer(request).forget(replaced.previous_collection_id)
    return response


def _encode(basis_text: str, gene_names: list[str]) -> tuple[np.ndarray, list[str]]:
    try:
        vector, unknown = encode_markers(Basis.from_json(json.loads(basis_text)), gene_names)
    except MarkerError as exc:
        raise InvalidInput("/gene_names", str(exc)) from None
    vector32 = vector.astype(np.float32)
    # The stored vectors obey core/vector_bounds.py; so must the query, or pgvector's cosine is wrong or NaN.
    if not np.isfinite(vector).all() or first_incomparable(vector32, "cosine") is not None:
        raise InvalidInput("/gene_names", "these marker genes give no usable direction in the project's space")
    return vector32, unknown


async def _basis_text(conn, institution_id: int, pid: str) -> str:
    text = await genomics_projects.basis_json(conn, institution_id, pid)
    if text is None:
        raise no_project(pid)
    return text


async def encode_query(request: Request) -> Response:
    caller = caller_of(request)
    query = parse_encode(await json_body(request))
    async with borrow(request) as conn:
        text = await _basis_text(conn, caller.institution_id, query.project_id)
    vector, unknown = await asyncio.to_thread(_encode, text, query.gene_names)
    return answer(
        EncodeResult,
        {
            "project_id": query.project_id,
            "query_vector": vector.tolist(),
            "dimensions": len(vector),
            "unknown_genes": unknown,
        },
    )


async def search_project(request: Request) -> Response:
    caller = caller_of(request)
    query = parse_project_search(await json_body(request))
    unknown = None
    async with borrow(request) as conn:
        project = await genomics_projects.get(conn, caller.institution_id, query.project_id)
        if project is None:
            raise no_project(query.project_id)
        if query.gene_names is not None:
            text = await _basis_text(conn, caller.institution_id, query.project_id)
            vector, unknown = await asyncio.to_thread(_encode, text, query.gene_names)
        else:
            vector = project_query_vector(query, project["dimensions"])
        collection = await db_collections.get(conn, caller.institution_id, project["collection"])
        if collection is None:  # deleted since the project was read
            raise no_project(query.project_id)
        result = await run_search(
            request,
            conn,
            collection,
            query=vector,
            top_k=query.top_k,
            metadata_filter=query.filter,
            max_distance=query.distance_threshold,
        )
    return answer(
        ProjectSearchResult,
        {
            "project_id": query.project_id,
            "mode": project["mode"],
            "dimensions": project["dimensions"],
            **result,
            **({"unknown_genes": unknown} if unknown is not None else {}),
        },
    )


async def get_project(request: Request) -> Response:
    caller = caller_of(request)
    pid = request.path_params["project_id"]
    if not _PROJECT_ID.fullmatch(pid):
        raise no_project(pid)
    async with borrow(request) as conn:
        project = await genomics_projects.get(conn, caller.institution_id, pid)
    if project is None:
        raise no_project(pid)
    return answer(Project, {key: project[key] for key in Project.model_fields})


endpoints = [
    Endpoint(
        "POST",
        "/api/v1/genomics/compress",
        compress_matrix,
        "Compress an expression matrix (PCA)",
        "genomics",
        CompressResult,
        body=CompressRequest,
    ),
    Endpoint(
        "POST",
        "/api/v1/genomics/vectors/build",
        build_vectors,
        "Build a project's cell or cluster vectors",
        "genomics",
        BuildResult,
        body=BuildRequest,
        form=BuildUploadForm,
        errors=(400, 413),
    ),
    Endpoint(
        "POST",
        "/api/v1/genomics/query/encode",
        encode_query,
        "A marker-gene query vector in a project's space",
        "genomics",
        EncodeResult,
        body=EncodeRequest,
        errors=(404,),
    ),
    Endpoint(
        "POST",
        "/api/v1/genomics/vectors/search",
        search_project,
        "Search a project's cells or clusters",
        "genomics",
        ProjectSearchResult,
        body=ProjectSearchRequest,
        errors=(404,),
    ),
    Endpoint("GET", "/api/v1/genomics/projects/{project_id}", get_project, "A genomics project", "genomics", Project),
]
