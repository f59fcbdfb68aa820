"""Property-based contract test: schemathesis against the real service, a real PostgreSQL and a real token.

The service runs as a subprocess (`python app.py serve` on 127.0.0.1, a free port) because the
suite's async fixtures live on pytest-asyncio's session loop while schemathesis drives its own
synchronous HTTP client; a real socket keeps the two apart and also tests uvicorn's handling.
Every operation in `/openapi.json` gets API_FUZZ_EXAMPLES generated cases (default 200; raise
it for a deeper local run, e.g. `API_FUZZ_EXAMPLES=2000`), positive and negative, each sent
with `Authorization: Bearer <token>`. A case fails on any 5xx, on a status, content type,
header or body the document does not declare, on any error that is not problem+json, and on an
error whose detail shows Python internals (class names, tracebacks).

Random path parameters and project ids name nothing, so almost every such case would stop at a 404
before any body validation or database write. So the fuzzing runs twice: once with everything
random (`test_every_operation_honours_the_document`), and once on resources made through the API
beforehand (`fuzz_resources`: a collection per metric with a few vectors, a genomics project, a
finished upload-build job), with path parameters and `project_id` pinned to them
(`test_operations_on_existing_resources_honour_the_document`, once per metric, once for genomics
and once for jobs; API_FUZZ_PINNED_EXAMPLES cases per operation, default API_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import os
import time

import pytest
import requests
import schemathesis
from hypothesis import strategies as st

from tests import pg
from tests.contract_checks import CHECKS
from tests.live_service import serving

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "200"))
PINNED_EXAMPLES = int(os.environ.get("API_FUZZ_PINNED_EXAMPLES", str(EXAMPLES)))
HOURLY_LIMIT = 1_000_000_000  # the column is an integer; no run comes near it


def _make_token(database_url: str) -> str:
    """A fresh institution with a huge hourly quota and one live token, written straight to the database."""
    return pg.issue_token(database_url, HOURLY_LIMIT, "fuzz")


@pytest.fixture(scope="module")
def live_service(database_url):
    """The real service on 127.0.0.1:<free port>, on the suite's migrated database; stopped afterwards."""
    with serving(database_url, LOG_LEVEL="WARNING", DB_POOL_MIN="1", DB_POOL_MAX="4") as service:
        yield service.base_url


@pytest.fixture(scope="module")
def api_token(database_url) -> str:
    return _make_token(database_url)


# The resources the pinned run works on, made through the API before any fuzzing (`fuzz_resources`).
COLLECTIONS = {"cosine": "fuzz-cosine", "l2": "fuzz-l2", "inner_product": "fuzz-ip"}
PROJECT = "fuzz-project"
REBUILT_PROJECT = "fuzz-rebuilt"  # the pinned run's builds replace this one, never PROJECT
SEED_VECTORS = [
    {"id": "a", "vector": [1, 0, 0], "metadata": {"kind": "x"}},
    {"id": "b/c", "vector": [0.5, -0.25, 2], "metadata": {"kind": "y", "n": 1, "deep": {"list": [1, "two", None]}}},
    {"id": "é d%20", "vector": [0, 1e-3, 1e3]},
]
GENES = ["CD3E", "CD8A", "MS4A1", "CD79A", "NKG7"]
BUILD = {
    "mode": "cell",
    "target_dimensions": 2,
    "gene_names": GENES,
    "expression_matrix": [
        [12, 9, 0, 1, 0],
        [10, 11, 1, 0, 1],
        [0, 1, 14, 10, 0],
        [1, 0, 11, 13, 1],
        [0, 1, 0, 0, 15],
        [1, 0, 1, 0, 12],
    ],
    "cell_metadata": [
        {"barcode": "AAAC-1", "cell_type": "T"},
        {"barcode": "AAAG-1", "cell_type": "T"},
        {"barcode": "AACT-1", "cell_type": "B"},
        {"barcode": "AAGC-1", "cell_type": "B"},
        {"barcode": "ACGT-1", "cell_type": "NK"},
        {"barcode": "AGGT-1", "cell_type": "NK"},
    ],
}


def scratch(name: str) -> str:
    """The throwaway copy of collection `name` that the pinned DELETE of one vector works on."""
    return f"{name}-scratch"


def doomed(name: str) -> str:
    """The throwaway collection that the pinned DELETE of a whole collection works on."""
    return f"{name}-drop"


def _config(api_token: str, examples: int, **extra) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            # Sent on every case; schemathesis treats it as the operation's credentials, which ignored_auth strips.
            "headers": {"Authorization": f"Bearer {api_token}"},
            "generation": {"max-examples": examples, "mode": "all", "database": "none"},
            # Stateful (link-following) testing is off: these are independent per-operation properties.
            "phases": {"stateful": {"enabled": False}},
            **extra,
        }
    )


QAC_EMBEDDING = [[0.1, 1.0], [0.2, 0.9], [3.0, 0.1], [2.9, 0.3], [-1.0, -1.0], [-1.2, -0.8]]


@pytest.fixture(scope="module")
def fuzz_resources(live_service, api_token, tmp_path_factory) -> dict[str, str]:
    """Per metric: a collection with SEED_VECTORS, its scratch copy and a doomed one; two genomics
    projects built from the README's six cells; a job (an upload build of the same cells, waited
    for); and a QAC model fitted on six cells. Made before either run, so the random run's
    GET /collections and GET /jobs also list real ones. Returns the job's and the model's ids."""
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {api_token}"
    api = f"{live_service}/api/v1"

    def post(path: str, body: dict, status: int) -> dict:
        response = http.post(api + path, json=body, timeout=30)
        assert response.status_code == status, f"POST {path}: {response.status_code} {response.text}"
        return response.json()

    for metric, name in COLLECTIONS.items():
        for collection in (name, scratch(name), doomed(name)):
            post("/collections", {"name": collection, "dimensions": 3, "metric": metric}, 201)
            post(f"/collections/{collection}/vectors", {"items": SEED_VECTORS}, 200)
    for project in (PROJECT, REBUILT_PROJECT):
        post("/genomics/vectors/build", {**BUILD, "project_id": project}, 200)
    fitted = post("/quantum/qac/fit", {"embedding": QAC_EMBEDDING, "params": {"k_nn": 2}, "sync": True}, 200)
    job = _upload_build_job(http, api, tmp_path_factory.mktemp("fuzz-upload") / "cells.h5ad")
    return {"job": job, "qac_model": fitted["model_id"]}


def _upload_build_job(http: requests.Session, api: str, path) -> str:
    """An upload build of BUILD's cells as a job, once it has succeeded; returns its id."""
    import anndata
    import numpy as np
    import pandas as pd

    obs = pd.DataFrame({"cell_type": [c["cell_type"] for c in BUILD["cell_metadata"]]})
    obs.index = [c["barcode"] for c in BUILD["cell_metadata"]]
    matrix = np.asarray(BUILD["expression_matrix"], dtype=np.float32)
    anndata.AnnData(matrix, obs=obs, var=pd.DataFrame(index=GENES)).write_h5ad(path)
    form = {"project_id": "fuzz-upload", "mode": "cell", "target_dimensions": "2"}
    with open(path, "rb") as file:
        response = http.post(f"{api}/genomics/vectors/build", data=form, files={"file": file}, timeout=30)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    for _ in range(600):  # 60 s: the bound only catches a hang
        job = http.get(f"{api}/jobs/{job_id}", timeout=10).json()
        if job["status"] not in ("queued", "running"):
            break
        time.sleep(0.1)
    assert job["status"] == "succeeded", job
    return job_id


@pytest.fixture(scope="module")
def api_schema(live_service, api_token, fuzz_resources):
    """Everything random: path parameters and bodies as the document allows (or, negative, does not)."""
    return schemathesis.openapi.from_url(
        f"{live_service}/openapi.json", config=_config(api_token, EXAMPLES), timeout=10
    )


# Values the pinned run mixes into what it generates (a dictionary entry replaces a generated value
# with the given probability; in negative cases only entries that break the schema are used, so none).
DICTIONARIES = {
    "vector-ids": {"values": [item["id"] for item in SEED_VECTORS]},
    "genes": {"values": GENES},
    # Edges of what a vector may hold: ±1e15 is the bound, 3.4e38 the float32 limit, tiny ones test cosine.
    "numbers": {"values": [0, 1, -1, 0.5, 1e-30, -1e-300, 1e15, -1e16, 3.4e38, 1e39]},
}


def _pinned_operations(target: str, resources: dict[str, str]) -> dict[str, dict]:
    """Operation label -> the `parameters` it runs with in the pinned run for `target` (a metric or "genomics").

    Fixed values ("path.name": ...) are sent as given and never negated; a `{"dictionary": ...}` entry
    replaces a generated value now and then. DELETEs would remove the resources the other operations
    need mid-run, so each DELETE is pinned to its own throwaway: DELETE /collections/{name} to
    `doomed(name)` (its first 2xx removes it, later cases are 404s), DELETE of a vector to
    `scratch(name)`; nothing else uses either. Likewise POST /genomics/vectors/build replaces a
    project, so it is pinned to REBUILT_PROJECT, never to PROJECT.
    """
    if target == "jobs":
        # The job has ended, so its DELETE is a 409 every time: the pinned run checks that answer's shape.
        return {
            "GET /api/v1/jobs/{id}": {"path.id": resources["job"]},
            "DELETE /api/v1/jobs/{id}": {"path.id": resources["job"]},
        }
    if target == "qac":
        model = resources["qac_model"]
        return {
            "GET /api/v1/quantum/qac/models/{model_id}": {"path.model_id": model},
            "POST /api/v1/quantum/qac/apply": {"body.model_id": model},
        }
    if target == "genomics":
        project = {"body.project_id": PROJECT, "body.gene_names[*]": {"dictionary": "genes", "probability": 0.7}}
        return {
            "GET /api/v1/genomics/projects/{project_id}": {"path.project_id": PROJECT},
            "POST /api/v1/genomics/query/encode": project,
            "POST /api/v1/genomics/vectors/search": {
                **project,
                "body.query_vector[*]": {"dictionary": "numbers", "probability": 0.1},
            },
            "POST /api/v1/genomics/vectors/build": {"body.project_id": REBUILT_PROJECT},
        }
    name = COLLECTIONS[target]
    vector_id = {"dictionary": "vector-ids", "probability": 0.5}
    return {
        "GET /api/v1/collections/{name}": {"path.name": name},
        "DELETE /api/v1/collections/{name}": {"path.name": doomed(name)},
        "POST /api/v1/collections/{name}/vectors": {
            "path.name": name,
            "body.items[*].id": {"dictionary": "vector-ids", "probability": 0.15},
            "body.items[*].vector[*]": {"dictionary": "numbers", "probability": 0.1},
        },
        "POST /api/v1/collections/{name}/search": {
            "path.name": name,
            "body.vector[*]": {"dictionary": "numbers", "probability": 0.1},
        },
        "GET /api/v1/collections/{name}/vectors/{vector_id}": {"path.name": name, "path.vector_id": vector_id},
        "DELETE /api/v1/collections/{name}/vectors/{vector_id}": {
            "path.name": scratch(name),
            "path.vector_id": vector_id,
        },
    }


PINNED_TARGETS = [*COLLECTIONS, "genomics", "jobs", "qac"]


@pytest.fixture(scope="module", params=PINNED_TARGETS)
def pinned_schema(request, live_service, api_token, fuzz_resources):
    """Only the operations `_pinned_operations` names, each with its parameters; the rest are turned off
    (the random run covers them)."""
    operations = _pinned_operations(request.param, fuzz_resources)
    config = _config(
        api_token,
        PINNED_EXAMPLES,
        dictionaries=DICTIONARIES,
        operations=[
            *({"include-name": label, "parameters": parameters} for label, parameters in operations.items()),
            {"exclude-name": list(operations), "enabled": False},
        ],
    )
    return schemathesis.openapi.from_url(f"{live_service}/openapi.json", config=config, timeout=10)


schema = schemathesis.pytest.from_fixture("api_schema")
pinned = schemathesis.pytest.from_fixture("pinned_schema")


@pytest.fixture(autouse=True)
def _nodeid_for_schemathesis(request):
    # schemathesis 4.32.5's lazy schema reads and rewrites `request.node._nodeid`, which pytest 9
    # no longer has (node ids are `NodeId` objects in `_id`); give it the attribute it expects.
    # Harmless: pytest reports from `nodeid`, so the per-operation labels come from subtests instead.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@schema.parametrize()
def test_every_operation_honours_the_document(case):
    case.call_and_validate(checks=CHECKS, timeout=30)


@pinned.parametrize()
@pinned.given(fit=st.booleans())
def test_operations_on_existing_resources_honour_the_document(case, fit):
    if fit:
        _fit_vectors(case)
    case.call_and_validate(checks=CHECKS, timeout=30)


# Where the pinned operations take vectors, and the length their resource wants.
VECTOR_FIELDS = {
    "POST /api/v1/collections/{name}/vectors": ("items", "vector", 3),
    "POST /api/v1/collections/{name}/search": (None, "vector", 3),
    "POST /api/v1/genomics/vectors/search": (None, "query_vector", BUILD["target_dimensions"]),
}


def _fit_vectors(case) -> None:
    if case.operation.label == "POST /api/v1/quantum/qac/apply":
        _fit_qac_embedding(case)
        return
    """Give a positive case's vectors the length its collection or project wants (cut, or padded with
    non-zero numbers), and a project search exactly one of query_vector and gene_names. The document
    cannot say either rule, so a generated body seldom keeps them and the request stops at a 422
    before the search or the write. The case stays schema-valid; `fit` (drawn by Hypothesis, so it
    shrinks and replays) does this for about half the positive cases, the rest go as generated."""
    if case.operation.label not in VECTOR_FIELDS or not isinstance(case.body, dict):
        return
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    items, field, dimensions = VECTOR_FIELDS[case.operation.label]

    def fitted(holder):
        vector = holder.get(field) if isinstance(holder, dict) else None
        if not isinstance(vector, list):
            return holder
        return {**holder, field: (vector + [1.0, 0.5, 0.25])[:dimensions]}

    body = case.body
    if case.operation.label == "POST /api/v1/genomics/vectors/search":
        # It takes exactly one of query_vector and gene_names, which the document cannot say either.
        if body.get("query_vector") is not None and body.get("gene_names") is not None:
            body = {key: value for key, value in body.items() if key != "gene_names"}
        elif body.get("query_vector") is None and body.get("gene_names") is None:
            body = {**body, "query_vector": []}
    if items is None:
        body = fitted(body)
    elif isinstance(body.get(items), list):
        body = {**body, items: [fitted(item) for item in body[items]]}
    case.body = body


def _fit_qac_embedding(case) -> None:
    """Give a positive apply the fitted model's number of cells (each row cut or padded to the first
    row's length), so that it reaches the smoothing rather than the row-count 422."""
    body = case.body
    if not isinstance(body, dict) or case.meta is None or not case.meta.generation.mode.is_positive:
        return
    rows = body.get("embedding")
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], list) or not rows[0]:
        return
    width = len(rows[0])
    cells = [(list(rows[i % len(rows)]) + [0.5] * width)[:width] for i in range(len(QAC_EMBEDDING))]
    case.body = {**body, "embedding": cells}
