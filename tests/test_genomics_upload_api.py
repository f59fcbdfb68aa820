"""Multipart .h5ad builds through the real app and database: each is a background job (202, then
GET /api/v1/jobs/{id}) run by the app's own runner; same vectors as the JSON path, limits, errors."""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
import time

import anndata as ad
import httpx
import numpy as np
import pandas as pd
import pytest
import pytest_asyncio
import scipy.sparse as sp
from asgi_lifespan import LifespanManager

from tests.conftest import TEST_CLIENT, audit_rows
from tests.test_genomics_api import dataset, markers, new_project

BUILD = "/api/v1/genomics/vectors/build"


@pytest.fixture
def upload_dir(tmp_path, monkeypatch):
    """Where the service's temporary upload files go, so a test can see that none is left."""
    directory = tmp_path / "uploads"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


def h5ad_of(tmp_path, x, genes, cells, **obs_columns) -> bytes:
    frame = pd.DataFrame(
        {"cell_type": pd.Categorical([c["cell_type"] for c in cells]), "sample": [c["sample"] for c in cells]},
        index=[c["barcode"] for c in cells],
    )
    for name, values in obs_columns.items():
        frame[name] = values
    path = tmp_path / "upload.h5ad"
    ad.AnnData(x, obs=frame, var=pd.DataFrame(index=genes)).write_h5ad(path)
    return path.read_bytes()


def upload(client, who, content: bytes, trace_id: str | None = None, **fields):
    headers = dict(who.headers)
    if trace_id:
        headers["X-Request-ID"] = trace_id
    data = {key: str(value) for key, value in fields.items()}
    return client.post(BUILD, headers=headers, data=data, files={"file": ("cells.h5ad", content, "application/x-hdf5")})


async def finished(client, who, response, timeout: float = 120.0) -> dict:
    """The job an upload answered 202 with, once it has ended (the bound only catches a hang)."""
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    assert location == f"/api/v1/jobs/{response.json()['id']}" and response.json()["type"] == "build"
    deadline = time.monotonic() + timeout
    while True:
        job = (await client.get(location, headers=who.headers)).json()
        if job["status"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']} after {timeout:g}s"
        await asyncio.sleep(0.1)


async def built(client, who, response) -> dict:
    """The build's answer: the result of the upload's job, which must have succeeded."""
    job = await finished(client, who, response)
    assert job["status"] == "succeeded", job["error"]
    return job["result"]


async def left_in(directory, wait: float = 10.0) -> list:
    """What is still in `directory` once the runner has tidied up: it deletes a job's directory just
    after committing the job's end, so a client can see the end a moment before the directory goes."""
    deadline = time.monotonic() + wait
    while (left := list(directory.iterdir())) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return left


async def stored(pool, institution_id: int, pid: str) -> dict[str, tuple[np.ndarray, dict]]:
    rows = await pool.fetch(
        "SELECT v.id, v.embedding, v.metadata FROM vectors v JOIN collections c ON c.id = v.collection_id "
        "WHERE c.institution_id = $1 AND c.name = $2",
        institution_id,
        f"genomics.{pid}",
    )
    return {r["id"]: (np.asarray(r["embedding"].to_list()), r["metadata"]) for r in rows}


@pytest.mark.parametrize("make", [sp.csr_matrix, np.asarray], ids=["sparse", "dense"])
@pytest.mark.parametrize("normalize", ["counts", "log1p"])
async def test_upload_and_json_builds_store_the_same_vectors(
    client, pool, institution, tmp_path, upload_dir, make, normalize
):
    genes, rows, cells = dataset()
    x = np.asarray(rows, dtype=np.float32)
    json_pid, upload_pid = new_project(), new_project()
    body = {
        "project_id": json_pid,
        "gene_names": genes,
        "expression_matrix": rows,
        "cell_metadata": cells,
        "target_dimensions": 5,
        "mode": "cell",
        "normalize": normalize,
    }
    by_json = await client.post(BUILD, headers=institution.headers, json=body)
    assert by_json.status_code == 200, by_json.text
    by_upload = await upload(
        client,
        institution,
        h5ad_of(tmp_path, make(x), genes, cells),
        project_id=upload_pid,
        mode="cell",
        target_dimensions=5,
        normalize=normalize,
    )
    answer = await built(client, institution, by_upload)
    assert answer["normalize"] == by_json.json()["normalize"] == normalize
    assert (answer["layer"], answer["cell_type_key"], answer["vector_count"]) == ("X", "cell_type", 90)
    a, b = await stored(pool, institution.id, json_pid), await stored(pool, institution.id, upload_pid)
    assert a.keys() == b.keys()
    for barcode, (vector, metadata) in a.items():
        np.testing.assert_allclose(b[barcode][0], vector, atol=1e-4)
        assert b[barcode][1]["cell_type"] == metadata["cell_type"] and b[barcode][1]["sample"] == metadata["sample"]
    assert await left_in(upload_dir) == []


async def test_upload_auto_normalises_counts_and_marker_search_finds_the_type(
    client, institution, tmp_path, upload_dir
):
    genes, rows, cells = dataset()
    pid = new_project()
    response = await upload(
        client,
        institution,
        h5ad_of(tmp_path, sp.csr_matrix(np.asarray(rows, dtype=np.float32)), genes, cells),
        project_id=pid,
        mode="cell",
        target_dimensions=4,
        metadata_keys="sample",
    )
    answer = await built(client, institution, response)
    assert answer["normalize"] == "counts" and answer["stats"]["normalize_requested"] == "auto"
    search = await client.post(
        "/api/v1/genomics/vectors/search",
        headers=institution.headers,
        json={"project_id": pid, "gene_names": markers(1), "top_k": 10},
    )
    hits = search.json()["hits"]
    assert search.status_code == 200 and {h["metadata"]["cell_type"] for h in hits} == {"B cell"}
    assert set(hits[0]["metadata"]) == {"sample", "barcode", "cell_type", "cell_index"}


async def test_scaled_upload_is_only_centred(client, institution, tmp_path, upload_dir):
    genes, rows, cells = dataset()
    x = np.log1p(np.asarray(rows, dtype=float))
    scaled = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-9)
    response = await upload(
        client,
        institution,
        h5ad_of(tmp_path, scaled, genes, cells),
        project_id=new_project(),
        mode="cluster",
        target_dimensions=3,
        n_clusters=3,
    )
    answer = await built(client, institution, response)
    assert answer["normalize"] == "none" and answer["clusters"] == 3


@pytest.mark.parametrize(
    ("fields", "content", "pointer"),
    [
        ({}, b"not an hdf5 file at all", "/file"),
        ({}, b"\x89HDF\r\n\x1a\n" + b"\0" * 600, "/file"),  # an HDF5 signature, then nothing usable
        ({"target_dimensions": "five"}, None, "/target_dimensions"),
        ({"mode": "cells"}, None, "/mode"),
    ],
)
async def test_bad_uploads_are_422_naming_the_field_and_leave_nothing(
    client, pool, institution, tmp_path, upload_dir, fields, content, pointer
):
    genes, rows, cells = dataset()
    x = np.asarray(rows, dtype=np.float32)
    pid = new_project()
    form = {"project_id": pid, "mode": "cell", "target_dimensions": 3, **fields}
    response = await upload(client, institution, content or h5ad_of(tmp_path, x, genes, cells), **form)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["pointer"] == pointer
    assert await stored(pool, institution.id, pid) == {}
    assert await pool.fetchval("SELECT count(*) FROM jobs WHERE project_id = $1", pid) == 0
    assert await left_in(upload_dir) == []


@pytest.mark.parametrize(
    ("fields", "content", "field"),
    [
        ({"layer": "spliced"}, None, "layer"),
        ({"cell_type_key": "celltype"}, None, "cell_type_key"),
        ({"metadata_keys": '["batch"]'}, None, "metadata_keys"),
        ({"normalize": "counts"}, "negative", "normalize"),
        ({}, "nan", "file"),
    ],
)
async def test_what_only_reading_the_file_finds_fails_the_job_naming_the_field(
    client, pool, institution, tmp_path, upload_dir, fields, content, field
):
    genes, rows, cells = dataset()
    x = np.asarray(rows, dtype=np.float32)
    if content == "negative":
        x = -x
    elif content == "nan":
        x[3, 2] = np.nan
    pid = new_project()
    form = {"project_id": pid, "mode": "cell", "target_dimensions": 3, **fields}
    job = await finished(
        client, institution, await upload(client, institution, h5ad_of(tmp_path, x, genes, cells), **form)
    )
    assert job["status"] == "failed" and job["result"] is None
    assert job["error"].startswith(f"{field}: "), job["error"]
    assert "Traceback" not in job["error"]
    assert await stored(pool, institution.id, pid) == {}
    assert await pool.fetchval("SELECT count(*) FROM job_inputs WHERE job_id = $1::uuid", job["id"]) == 0
    assert await left_in(upload_dir) == []


@pytest_asyncio.fixture(scope="module")
async def small_limits(settings):
    """The app with MAX_BODY_BYTES 4 KiB and MAX_UPLOAD_BYTES 200 kB."""
    from app import create_app

    application = create_app(dataclasses.replace(settings, max_body_bytes=4096, max_upload_bytes=200_000))
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=TEST_CLIENT)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_uploads_are_capped_by_max_upload_bytes_not_max_body_bytes(
    small_limits, pool, institution, tmp_path, upload_dir, trace_id
):
    genes, rows, cells = dataset()
    content = h5ad_of(tmp_path, sp.csr_matrix(np.asarray(rows, dtype=np.float32)), genes, cells)
    assert 4096 < len(content) < 200_000
    pid = new_project()
    ok = await upload(small_limits, institution, content, project_id=pid, mode="cell", target_dimensions=3)
    await built(small_limits, institution, ok)
    big = await upload(
        small_limits,
        institution,
        content + b"\0" * 200_000,
        trace_id,
        project_id=new_project(),
        mode="cell",
        target_dimensions=3,
    )
    assert big.status_code == 413 and "200000" in big.json()["detail"]
    rows_ = await audit_rows(pool, trace_id, wait=2.0)
    assert [r["metadata"]["status_code"] for r in rows_] == [413]
    assert await left_in(upload_dir) == []
    json_body = await small_limits.post(BUILD, headers=institution.headers, content=b"[" + b"0," * 3000 + b"0]")
    assert json_body.status_code == 413
    assert "multipart/form-data .h5ad upload" in json_body.json()["detail"]  # where a larger matrix goes
    assert "upload" not in big.json()["detail"]  # an upload over its own limit is not told to upload


def test_the_document_offers_json_or_a_multipart_upload_with_a_binary_file():
    from api.openapi import document
    from api.routes import genomics

    doc = document(genomics.endpoints, "test")
    content = doc["paths"][BUILD]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data"}
    form = doc["components"]["schemas"][content["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert (form["properties"]["file"]["type"], form["properties"]["file"]["format"]) == ("string", "binary")
    assert {"project_id", "mode", "target_dimensions", "file"} <= set(form["required"])
    assert {"layer", "cell_type_key", "metadata_keys", "normalize", "params", "seed", "n_clusters"} <= set(
        form["properties"]
    )
