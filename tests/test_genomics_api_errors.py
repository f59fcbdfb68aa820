"""/api/v1/genomics refusing bad input: compress, build and search are 422 at the field; unknown projects 404."""

from __future__ import annotations

import json

import pytest

from tests.test_genomics_api import assert_422, build, dataset, new_project

GOOD = '"gene_names": ["A", "B", "C"], "compression_target": 2'


@pytest.mark.parametrize(
    "raw, pointer",
    [
        ('{%s, "expression_matrix": [[1, 2, 3], [4, NaN, 6]]}' % GOOD, "/expression_matrix/1/1"),
        ('{%s, "expression_matrix": [[1, 2, 3], [4, 5, Infinity]]}' % GOOD, "/expression_matrix/1/2"),
        ('{%s, "expression_matrix": [[1, 2, 3], [4, 5]]}' % GOOD, "/expression_matrix/1"),
        ('{%s, "expression_matrix": [[1, 2], [4, 5]]}' % GOOD, "/expression_matrix/0"),
        ('{%s, "expression_matrix": []}' % GOOD, "/expression_matrix"),
        ('{%s, "expression_matrix": [[1, -2, 3], [4, 5, 6]]}' % GOOD, "/expression_matrix/0/1"),
        ('{%s, "expression_matrix": [[1, "2", 3], [4, 5, 6]]}' % GOOD, "/expression_matrix/0/1"),
        ('{"gene_names": [], "compression_target": 2, "expression_matrix": [[1]]}', "/gene_names"),
        ('{"gene_names": ["A", "A"], "compression_target": 2, "expression_matrix": [[1, 2]]}', "/gene_names/1"),
        (
            '{"gene_names": ["A", "B"], "compression_target": 0, "expression_matrix": [[1, 2], [3, 4]]}',
            "/compression_target",
        ),
        (
            '{"gene_names": ["A", "B"], "compression_target": 1, "expression_matrix": [[1, 2], [3, 4]], '
            '"params": {"mode": "x"}}',
            "/params/mode",
        ),
        (
            '{"gene_names": ["A", "B"], "compression_target": 1, "expression_matrix": [[1, 2], [3, 4]], "seed": -1}',
            "/seed",
        ),
        (
            '{"gene_names": ["A", "B"], "compression_target": 1, "expression_matrix": [[1, 1], [1, 1]]}',
            "/expression_matrix",
        ),
        ('{%s, "expression_matrix": [[1, 2, 3], [4, 5, 6]], "cell_metadata": [{}]}' % GOOD, "/cell_metadata"),
        ('{%s, "expression_matrix": [[1, 2, 3], [4, 5, 6]], "cell_metadata": [{}, "T"]}' % GOOD, "/cell_metadata/1"),
        (
            '{%s, "expression_matrix": [[1, 2, 3], [4, 5, 6]], "cell_metadata": [{"n": "a\\u0000b"}, {}]}' % GOOD,
            "/cell_metadata/0/n",
        ),
        (
            '{%s, "expression_matrix": [[1, 2, 3], [4, 5, 6]], "cell_metadata": [{}, {"n": "%s"}]}'
            % (GOOD, "x" * 70_000),
            "/cell_metadata/1",
        ),
        (
            '{%s, "expression_matrix": [[1, 2, 3], [4, 5, 6]], "cell_metadata": [{}, {"k": %s1%s}]}'
            % (GOOD, "[" * 40, "]" * 40),
            "/cell_metadata/1/k" + "/0" * 31,
        ),
    ],
)
async def test_bad_compress_input_is_422_at_the_field(client, institution, raw, pointer):
    response = await client.post("/api/v1/genomics/compress", headers=institution.headers, content=raw.encode())
    assert_422(response, pointer)


@pytest.mark.parametrize(
    "change, pointer",
    [
        (lambda b: b.update(cell_metadata=b["cell_metadata"][:-1]), "/cell_metadata"),
        (lambda b: b["cell_metadata"][3].update(barcode=b["cell_metadata"][0]["barcode"]), "/cell_metadata/3/barcode"),
        (lambda b: b["cell_metadata"].__setitem__(2, "T cell"), "/cell_metadata/2"),
        (lambda b: b["cell_metadata"][4].update(cell_type=7), "/cell_metadata/4/cell_type"),
        (lambda b: b["cell_metadata"][4].update(note="a\u0000b"), "/cell_metadata/4/note"),
        (lambda b: b.update(mode="tissue"), "/mode"),
        (lambda b: b.update(target_dimensions=2001), "/target_dimensions"),
        (lambda b: b.update(project_id="has space"), "/project_id"),
        (lambda b: b.update(n_clusters=3), "/n_clusters"),
        (lambda b: b.update(gene_names=b["gene_names"][:-1]), "/expression_matrix/0"),
        (lambda b: b.pop("expression_matrix"), "/expression_matrix"),
    ],
)
async def test_bad_build_input_is_422_and_creates_nothing(client, institution, change, pointer):
    pid = new_project()
    genes, rows, cells = dataset()
    body = {
        "project_id": pid,
        "gene_names": genes,
        "expression_matrix": rows,
        "cell_metadata": cells,
        "target_dimensions": 4,
        "mode": "cell",
    }
    change(body)
    assert_422(await client.post("/api/v1/genomics/vectors/build", headers=institution.headers, json=body), pointer)
    assert (await client.get(f"/api/v1/genomics/projects/{pid}", headers=institution.headers)).status_code == 404
    assert (await client.get("/api/v1/collections", headers=institution.headers)).json() == {"collections": []}


@pytest.mark.parametrize(
    "body, pointer",
    [
        ({"gene_names": ["G1"], "top_k": 5}, "/project_id"),
        ({"top_k": 5}, "/query_vector"),
        ({"gene_names": ["G1"], "query_vector": [1, 2, 3, 4, 5], "top_k": 5}, "/query_vector"),
        ({"query_vector": [1, 2, 3], "top_k": 5}, "/query_vector"),
        ({"query_vector": [1, 2, 3, 4, float("nan")], "top_k": 5}, "/query_vector/4"),
        ({"query_vector": [0, 0, 0, 0, 0], "top_k": 5}, "/query_vector"),
        ({"gene_names": ["G1"], "top_k": 0}, "/top_k"),
        ({"gene_names": ["G1"], "top_k": 1001}, "/top_k"),
        ({"gene_names": ["G1"]}, "/top_k"),
        ({"gene_names": [], "top_k": 5}, "/gene_names"),
        ({"gene_names": ["UNKNOWN"], "top_k": 5}, "/gene_names"),
        ({"gene_names": ["G1"], "top_k": 5, "distance_threshold": "near"}, "/distance_threshold"),
    ],
)
async def test_bad_search_input_is_422(client, institution, body, pointer):
    pid = new_project()
    await build(client, institution, pid)
    body = {"project_id": pid, **body} if pointer != "/project_id" else body
    raw = json.dumps(body).encode()  # json.dumps writes a NaN literal for float("nan")
    response = await client.post("/api/v1/genomics/vectors/search", headers=institution.headers, content=raw)
    assert_422(response, pointer)


async def test_an_unknown_project_is_404(client, institution):
    for path, body in (
        ("/api/v1/genomics/query/encode", {"gene_names": ["G1"]}),
        ("/api/v1/genomics/vectors/search", {"gene_names": ["G1"], "top_k": 3}),
    ):
        response = await client.post(path, headers=institution.headers, json={"project_id": "nothing-here", **body})
        assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/api/v1/genomics/projects/nothing-here", headers=institution.headers)).status_code == 404
