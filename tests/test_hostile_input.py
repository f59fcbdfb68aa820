"""Hostile input through the real app: each case once answered 500, a stored row that could never be
read back, or an error naming a Python class. Each now gets a clear 4xx and leaves nothing behind."""

from __future__ import annotations

import base64
import gzip
import json
import re
import zlib

import pytest

from api.schemas.common import MAX_METADATA_DEPTH
from tests.conftest import audit_rows
from tests.test_collections_api import assert_problem, create, upsert
from tests.test_genomics_api import dataset, new_project

CLASS_NAME = re.compile(r"\b\w*(Error|Exception)\b|Traceback|JSONDecode")


def nested(depth: int, leaf=1):
    value = leaf
    for _ in range(depth):
        value = {"k": value}
    return value


def no_class_names(response) -> dict:
    body = response.json()
    texts = [body["detail"], *(e["detail"] for e in body.get("errors", []))]
    assert not any(CLASS_NAME.search(text) for text in texts), texts
    return body


async def test_a_lone_surrogate_in_a_gene_name_is_422_and_nothing_is_stored(client, institution):
    # Regression: the build answered 500 when PostgreSQL refused the basis JSON holding the surrogate.
    genes, matrix, cells = dataset(per_type=4)
    genes[3] = "CD3\ud800"
    pid = new_project()
    body = json.dumps(
        {"project_id": pid, "gene_names": genes, "expression_matrix": matrix, "mode": "cell", "target_dimensions": 2}
    ).encode("utf-8", "surrogatepass")  # JSON \ud800 escapes, not raw
    body = json.dumps(json.loads(body))  # the wire form: "\\ud800"
    response = await client.post(
        "/api/v1/genomics/vectors/build",
        headers={**institution.headers, "Content-Type": "application/json"},
        content=body,
    )
    assert_problem(response, 422, "/gene_names/3")
    no_class_names(response)
    missing = await client.get(f"/api/v1/genomics/projects/{pid}", headers=institution.headers)
    assert missing.status_code == 404


@pytest.mark.parametrize("depth", [1000, 5000])
async def test_a_deeply_nested_cursor_is_422_not_500(client, institution, depth):
    # Regression: a cursor decoding to ~1,000 nested lists raised RecursionError → 500.
    cursor = base64.urlsafe_b64encode(b"[" * depth + b"]" * depth).decode().rstrip("=")
    response = await client.get("/api/v1/audit", headers=institution.headers, params={"cursor": cursor})
    body = assert_problem(response, 422)
    assert body["errors"][0]["parameter"] == "cursor"
    no_class_names(response)


@pytest.mark.parametrize("depth", [MAX_METADATA_DEPTH + 1, 880, 985])
async def test_metadata_nested_too_deep_is_refused_at_write_time(client, institution, depth):
    # Regression: metadata ~900 levels deep was stored (200) and then every GET and search answered 500.
    name = await create(client, institution, dimensions=2)
    metadata = '{"k":' * depth + "1" + "}" * depth  # written by hand: json.dumps itself recurses too deep
    response = await client.post(
        f"/api/v1/collections/{name}/vectors",
        headers=institution.headers,
        content='{"items": [{"id": "a", "vector": [1, 0], "metadata": %s}]}' % metadata,
    )
    if depth < 950:
        body = assert_problem(response, 422)
        assert body["errors"][0]["pointer"].startswith("/items/0/metadata/k")
        assert "levels deep" in body["detail"]
    else:  # deeper than the JSON parser itself will go: the body cannot be read at all
        assert "nested too deeply" in assert_problem(response, 400)["detail"]
    info = (await client.get(f"/api/v1/collections/{name}", headers=institution.headers)).json()
    assert info["vector_count"] == 0


async def test_metadata_at_the_nesting_limit_is_stored_and_read_back(client, institution):
    name = await create(client, institution, dimensions=2)
    deep = nested(MAX_METADATA_DEPTH - 1)
    assert (
        await upsert(client, institution, name, [{"id": "a", "vector": [1, 0], "metadata": deep}])
    ).status_code == 200
    got = await client.get(f"/api/v1/collections/{name}/vectors/a", headers=institution.headers)
    assert got.status_code == 200 and got.json()["metadata"] == deep
    hits = await client.post(
        f"/api/v1/collections/{name}/search", headers=institution.headers, json={"vector": [1, 0], "top_k": 1}
    )
    assert hits.status_code == 200 and hits.json()["hits"][0]["metadata"] == deep


async def test_cell_metadata_nested_too_deep_is_refused(client, institution):
    genes, matrix, cells = dataset(per_type=4)
    cells[2] = {**cells[2], "extra": nested(900)}
    pid = new_project()
    response = await client.post(
        "/api/v1/genomics/vectors/build",
        headers=institution.headers,
        json={
            "project_id": pid,
            "gene_names": genes,
            "expression_matrix": matrix,
            "cell_metadata": cells,
            "mode": "cell",
            "target_dimensions": 2,
        },
    )
    body = assert_problem(response, 422)
    assert body["errors"][0]["pointer"].startswith("/cell_metadata/2/extra")
    assert (await client.get(f"/api/v1/genomics/projects/{pid}", headers=institution.headers)).status_code == 404


async def test_a_filter_is_one_level_of_scalars(client, institution):
    name = await create(client, institution, dimensions=2)
    response = await client.post(
        f"/api/v1/collections/{name}/search",
        headers=institution.headers,
        json={"vector": [1, 0], "top_k": 1, "filter": {"k": nested(900)}},
    )
    assert_problem(response, 422, "/filter/k")


@pytest.mark.parametrize(
    "template, pointer",
    [
        ('{{"vector": [1, 0], "top_k": {n}}}', "/top_k"),
        ('{{"vector": [{n}, 0], "top_k": 1}}', "/vector/0"),
        ('{{"vector": [1, 0], "top_k": 1, "filter": {{"k": {n}}}}}', "/filter/k"),
    ],
)
async def test_an_integer_with_thousands_of_digits_is_422_naming_the_field(client, institution, template, pointer):
    # Regression: json.loads refused it with "ValueError" and the answer was a 400 naming nothing.
    name = await create(client, institution, dimensions=2)
    body = template.format(n="9" * 5000)
    response = await client.post(f"/api/v1/collections/{name}/search", headers=institution.headers, content=body)
    assert_problem(response, 422, pointer)
    no_class_names(response)


async def test_an_upsert_with_a_huge_integer_in_metadata_stores_nothing(client, institution):
    name = await create(client, institution, dimensions=2)
    body = '{"items": [{"id": "a", "vector": [1, 0], "metadata": {"n": %s}}]}' % ("7" * 5000)
    response = await client.post(f"/api/v1/collections/{name}/vectors", headers=institution.headers, content=body)
    assert_problem(response, 422, "/items/0/metadata/n")
    assert (await client.get(f"/api/v1/collections/{name}/vectors/a", headers=institution.headers)).status_code == 404


@pytest.mark.parametrize("encoding, compress", [("gzip", gzip.compress), ("deflate", zlib.compress), ("br", bytes)])
async def test_a_compressed_body_is_415(client, institution, encoding, compress):
    # Regression: gzip/deflate bodies were answered 400 "not valid JSON".
    raw = json.dumps({"name": "zipped", "dimensions": 2, "metric": "l2"}).encode()
    response = await client.post(
        "/api/v1/collections",
        headers={**institution.headers, "Content-Encoding": encoding, "Content-Type": "application/json"},
        content=compress(raw),
    )
    body = assert_problem(response, 415)
    assert encoding in body["detail"]
    assert (await client.get("/api/v1/collections/zipped", headers=institution.headers)).status_code == 404


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "application/xml"]
)
async def test_a_json_endpoint_given_another_media_type_is_415(client, institution, content_type):
    name = await create(client, institution, dimensions=2)
    for path in (
        "/api/v1/collections",
        f"/api/v1/collections/{name}/vectors",
        f"/api/v1/collections/{name}/search",
        "/api/v1/genomics/compress",
        "/api/v1/genomics/vectors/build",
        "/api/v1/genomics/query/encode",
        "/api/v1/genomics/vectors/search",
    ):
        response = await client.post(
            path, headers={**institution.headers, "Content-Type": content_type}, content=b'{"x": 1}'
        )
        if content_type == "multipart/form-data" and path.endswith("/vectors/build"):
            # The build also takes .h5ad uploads: a multipart body without a boundary is malformed, not JSON.
            assert_problem(response, 400)
            continue
        assert_problem(response, 415)


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/merge-patch+json", None]
)
async def test_json_media_types_and_a_missing_type_are_accepted(client, institution, content_type):
    headers = dict(institution.headers)
    if content_type:
        headers["Content-Type"] = content_type
    body = json.dumps({"name": f"mt-{abs(hash(content_type)) % 10**8}", "dimensions": 2, "metric": "l2"})
    response = await client.post("/api/v1/collections", headers=headers, content=body)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("raw", [b"{", b'{"a": 1,}', b"\xff\xfe", b"[" * 100_000, b'{"a": NaN'])
async def test_unreadable_bodies_are_400_without_class_names(client, institution, raw):
    response = await client.post("/api/v1/collections", headers=institution.headers, content=raw)
    body = assert_problem(response, 400)
    assert body["errors"][0]["pointer"] == ""
    no_class_names(response)


@pytest.mark.parametrize("raw, pointer", [(b"[]", ""), (b"true", ""), (b'{"items": [null]}', "/items/0")])
async def test_a_body_of_the_wrong_json_type_names_no_model_class(client, institution, raw, pointer):
    # Regression (found by the contract test): pydantic's message named the model ("instance of UpsertRequest").
    name = await create(client, institution, dimensions=2)
    response = await client.post(f"/api/v1/collections/{name}/vectors", headers=institution.headers, content=raw)
    body = assert_problem(response, 422, pointer)
    assert body["detail"] == "must be a JSON object"


async def test_a_whole_number_written_with_a_decimal_point_is_an_integer(client, institution):
    # JSON (and JSON Schema) do not tell 2 from 2.0; 2.5 and "2" are still refused.
    name = await create(client, institution, dimensions=2)
    await upsert(client, institution, name, [{"id": "a", "vector": [1, 0]}, {"id": "b", "vector": [0, 1]}])
    search = f"/api/v1/collections/{name}/search"
    ok = await client.post(search, headers=institution.headers, json={"vector": [1, 0], "top_k": 2.0})
    assert ok.status_code == 200 and len(ok.json()["hits"]) == 2
    for bad in (2.5, "2", True):
        refused = await client.post(search, headers=institution.headers, json={"vector": [1, 0], "top_k": bad})
        assert_problem(refused, 422, "/top_k")


async def test_token_shaped_strings_never_reach_the_audit_row(client, institution, pool, trace_id):
    # Regression: a token under an unlisted query key (?bearer=...) or in the path was stored verbatim.
    from core import tokens

    secret = tokens.issue().plaintext
    headers = {**institution.headers, "X-Request-ID": trace_id, "User-Agent": f"client/{secret}"}
    await client.get(f"/api/v1/collections/{secret}", params={"bearer": secret, "q": f"x{secret}y"}, headers=headers)
    rows = await audit_rows(pool, trace_id)
    assert len(rows) == 1
    assert secret not in json.dumps(rows, default=str)
    assert tokens.REDACTED in rows[0]["action"] and tokens.REDACTED in rows[0]["metadata"]["query"]


def test_token_shaped_strings_never_reach_a_log_line(caplog):
    import logging

    from core import logs, tokens

    secret = tokens.issue().plaintext
    formatter = logs._RedactingFormatter("%(message)s")
    try:
        raise ValueError(f"bad {secret}")
    except ValueError as exc:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "saw %s", (secret,), (ValueError, exc, None))
    line = formatter.format(record)
    assert secret not in line and line.count(tokens.REDACTED) == 2
