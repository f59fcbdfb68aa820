"""The resources the contract test's pinned run works on (tests/test_api_contract.py), made through the
API before any fuzzing, and the parameters each pinned operation is run with."""

from __future__ import annotations

import time
from pathlib import Path

import requests

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


QAC_EMBEDDING = [[0.1, 1.0], [0.2, 0.9], [3.0, 0.1], [2.9, 0.3], [-1.0, -1.0], [-1.2, -0.8]]


def make_resources(base_url: str, api_token: str, workdir: Path) -> dict[str, str]:
    """Per metric: a collection with SEED_VECTORS, its scratch copy and a doomed one; two genomics
    projects built from the README's six cells; a job (an upload build of the same cells, waited
    for); and a QAC model fitted on six cells. Made before either run, so the random run's
    GET /collections and GET /jobs also list real ones. Returns the job's and the model's ids."""
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {api_token}"
    api = f"{base_url}/api/v1"

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
    job = _upload_build_job(http, api, workdir / "cells.h5ad")
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


# Values the pinned run mixes into what it generates (a dictionary entry replaces a generated value
# with the given probability; in negative cases only entries that break the schema are used, so none).
DICTIONARIES = {
    "vector-ids": {"values": [item["id"] for item in SEED_VECTORS]},
    "genes": {"values": GENES},
    # Edges of what a vector may hold: ±1e15 is the bound, 3.4e38 the float32 limit, tiny ones test cosine.
    "numbers": {"values": [0, 1, -1, 0.5, 1e-30, -1e-300, 1e15, -1e16, 3.4e38, 1e39]},
}


def pinned_operations(target: str, resources: dict[str, str]) -> dict[str, dict]:
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
