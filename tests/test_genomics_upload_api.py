"""Multipart .h5ad builds through the real app and database: same vectors as the JSON path, limits, errors."""

from __future__ import annotations

import dataclasses
import tempfile

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
    assert by_upload.status_code == 200, by_upload.text
    answer = by_upload.json()
    assert answer["normalize"] == by_json.json()["normalize"] == normalize
    assert (answer["layer"], answer["cell_type_key"], answer["vector_count"]) == ("X", "cell_type", 90)
    a, b = await stored(pool, institution.id, json_pid), await stored(pool, institution.id, upload_pid)
    assert a.keys() == b.keys()
    for barcode, (vector, metadata) in a.items():
        np.testing.assert_allclose(b[barcode][0], vector, atol=1e-4)
        assert b[barcode][1]["cell_type"] == metadata["cell_type"] and b[barcode][1]["sample"] == metadata["sample"]
    assert list(upload_dir.iterdir()) == []


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
    assert response.status_code == 200, response.text
    assert response.json()["normalize"] == "counts" and response.json()["stats"]["normalize_requested"] == "auto"
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
    assert response.status_code == 200, response.text
    assert response.json()["normalize"] == "none" and response.json()["clusters"] == 3


@pytest.mark.parametrize(
    ("fields", "content", "pointer"),
    [
        ({"layer": "spliced"}, None, "/layer"),
        ({"cell_type_key": "celltype"}, None, "/cell_type_key"),
        ({"metadata_keys": '["batch"]'}, None, "/metadata_keys"),
        ({}, b"not an hdf5 file at all", "/file"),
        ({"target_dimensions": "five"}, None, "/target_dimensions"),
        ({"normalize": "counts"}, "negative", "/normalize"),
    ],
)
async def test_bad_uploads_are_422_naming_the_field_and_leave_nothing(
    client, pool, institution, tmp_path, upload_dir, fields, content, pointer
):
    genes, rows, cells = dataset()
    x = np.asarray(rows, dtype=np.float32)
    if content == "negative":
        content = h5ad_of(tmp_path, -x, genes, cells)
    pid = new_project()
    form = {"project_id": pid, "mode": "cell", "target_dimensions": 3, **fields}
    response = await upload(client, institution, content or h5ad_of(tmp_path, x, genes, cells), **form)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["pointer"] == pointer
    assert await stored(pool, institution.id, pid) == {}
    assert list(upload_dir.iterdir()) == []


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
    assert ok.status_code == 200, ok.text
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
    assert list(upload_dir.iterdir()) == []
    json_body = await small_limits.post(BUILD, headers=institution.headers, content=b"[" + b"0," * 3000 + b"0]")
    assert json_body.status_code == 413
