"""api/upload.py (streaming multipart) and the upload form fields, through a tiny app called as ASGI."""

from __future__ import annotations

import hashlib
import json

import pytest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.problems import EXCEPTION_HANDLERS, InvalidInput
from api.schemas.genomics_upload import parse_upload_fields
from api.upload import receive_upload

LIMIT = 4096
BOUNDARY = "dOnRbOuNdArY"


def form(fields: dict[str, str], file: bytes | None, filename: str = "cells.h5ad") -> bytes:
    parts = []
    for name, value in fields.items():
        parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    if file is not None:
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts.append(head.encode() + file + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def tiny_app(tmp_path, seen: list):
    async def upload(request: Request) -> JSONResponse:
        received = await receive_upload(request, LIMIT, directory=tmp_path)
        seen.append(received)
        content = received.path.read_bytes()
        return JSONResponse(
            {"fields": received.fields, "size": received.size, "sha256": hashlib.sha256(content).hexdigest()}
        )

    return Starlette(routes=[Route("/upload", upload, methods=["POST"])], exception_handlers=EXCEPTION_HANDLERS)


async def call(app, body_chunks: list[bytes], headers: dict[str, str], hang_up: bool = False) -> tuple[int, dict, int]:
    """Run one request; returns (status, JSON body, how many body chunks the app asked for).
    hang_up: every chunk says more is coming, then the client disconnects."""
    messages = [
        {"type": "http.request", "body": c, "more_body": hang_up or i < len(body_chunks) - 1}
        for i, c in enumerate(body_chunks)
    ]
    asked = 0
    sent: list[dict] = []

    async def receive():
        nonlocal asked
        asked += 1
        if messages:
            return messages.pop(0)
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/upload",
        "raw_path": b"/upload",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("test", 80),
        "client": ("127.0.0.1", 1),
        "root_path": "",
    }
    await app(scope, receive, send)
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return status, json.loads(body), asked


def multipart_headers(body: bytes | None = None) -> dict[str, str]:
    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    if body is not None:
        headers["content-length"] = str(len(body))
    return headers


def chunks(body: bytes, size: int = 100) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def leftovers(tmp_path) -> list:
    return sorted(p.name for p in tmp_path.iterdir())


async def test_fields_in_memory_and_the_file_streamed_to_a_temporary_file(tmp_path):
    payload = bytes(range(256)) * 10  # binary, with CR/LF bytes in it
    body = form({"project_id": "p1", "mode": "cell"}, payload)
    seen: list = []
    status, answer, _ = await call(tiny_app(tmp_path, seen), chunks(body, 37), multipart_headers(body))
    assert status == 200, answer
    assert answer["fields"] == {"project_id": "p1", "mode": "cell"}
    assert answer["size"] == len(payload) and answer["sha256"] == hashlib.sha256(payload).hexdigest()
    assert seen[0].filename == "cells.h5ad" and seen[0].path.exists()
    seen[0].discard()
    assert leftovers(tmp_path) == []


async def test_declared_length_over_the_limit_is_413_before_reading(tmp_path):
    body = form({"mode": "cell"}, b"x" * (LIMIT + 1))
    status, answer, asked = await call(tiny_app(tmp_path, []), chunks(body), multipart_headers(body))
    assert status == 413 and "MAX_UPLOAD_BYTES" in answer["detail"]
    assert asked == 0  # not one chunk was read
    assert leftovers(tmp_path) == []


async def test_counted_bytes_over_the_limit_are_413_before_the_rest_is_read(tmp_path):
    body = form({"mode": "cell"}, b"x" * (3 * LIMIT))
    pieces = chunks(body, 1000)
    status, _, asked = await call(tiny_app(tmp_path, []), pieces, multipart_headers())  # no Content-Length
    assert status == 413
    assert asked <= LIMIT // 1000 + 1 < len(pieces)
    assert leftovers(tmp_path) == []


async def test_truncated_upload_is_400_and_leaves_no_file(tmp_path):
    body = form({"mode": "cell"}, b"y" * 2000)
    status, answer, _ = await call(tiny_app(tmp_path, []), chunks(body[:-300]), multipart_headers())
    assert status == 400 and "truncated" in answer["detail"]
    assert leftovers(tmp_path) == []


async def test_client_gone_mid_upload_leaves_no_file(tmp_path):
    body = form({"mode": "cell"}, b"y" * 2000)
    with pytest.raises(ClientDisconnect):
        await call(tiny_app(tmp_path, []), chunks(body[:500]), multipart_headers(), hang_up=True)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (form({"mode": "cell"}, None), 422, "is required"),
        (form({"mode": "cell"}, b""), 200, None),
        (form({"mode": "cell", "seed": "1"}, b"a").replace(b'name="seed"', b'name="mode"'), 422, "more than once"),
        (
            b"--" + BOUNDARY.encode() + b"\r\nContent-Type: text/plain\r\n\r\nx\r\n--" + BOUNDARY.encode() + b"--\r\n",
            400,
            "Content-Disposition",
        ),
        (form({"big": "z" * 70_000}, b"a"), 422, "longer than"),
    ],
)
async def test_bad_forms(tmp_path, monkeypatch, body, status, words):
    monkeypatch.setattr("tests.test_upload_parser.LIMIT", 1_000_000)
    seen: list = []
    got, answer, _ = await call(tiny_app(tmp_path, seen), chunks(body, 500), multipart_headers(body))
    assert got == status, answer
    if words:
        assert words in answer["detail"] or words in json.dumps(answer.get("errors"))
    for upload in seen:
        upload.discard()
    assert leftovers(tmp_path) == []


def test_form_fields_are_typed_and_checked():
    options = parse_upload_fields(
        {
            "project_id": "pbmc",
            "mode": "cluster",
            "target_dimensions": "20",
            "n_clusters": " 8 ",
            "seed": "3",
            "params": '{"mode": "auto_evr", "evr_target": 0.8}',
            "metadata_keys": "sample, batch",
            "normalize": "counts",
        }
    )
    assert (options.target_dimensions, options.n_clusters, options.seed) == (20, 8, 3)
    assert options.metadata_keys == ["sample", "batch"] and options.layer == "X" and options.cell_type_key is None
    assert options.compression_params().mode == "auto_evr" and options.compression_params().evr_target == 0.8
    assert parse_upload_fields({"project_id": "p", "mode": "cell", "target_dimensions": "2"}).normalize == "auto"
    as_json = parse_upload_fields(
        {"project_id": "p", "mode": "cell", "target_dimensions": "2", "metadata_keys": '["a,b", "c"]'}
    )
    assert as_json.metadata_keys == ["a,b", "c"]


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        ({"target_dimensions": "ten"}, "/target_dimensions"),
        ({"target_dimensions": "2.5"}, "/target_dimensions"),
        ({"target_dimensions": "0"}, "/target_dimensions"),
        ({"seed": "-1"}, "/seed"),
        ({"mode": "cells"}, "/mode"),
        ({"params": "{not json"}, "/params"),
        ({"params": '{"mode": "x"}'}, "/params/mode"),
        ({"metadata_keys": '["a", 3]'}, "/metadata_keys/1"),
        ({"metadata_keys": "[broken"}, "/metadata_keys"),
        ({"normalize": "zscore"}, "/normalize"),
        ({"n_clusters": "4"}, "/n_clusters"),  # mode is cell
        ({"colour": "blue"}, "/colour"),
        ({"project_id": "../etc"}, "/project_id"),
    ],
)
def test_wrong_form_field_is_422_naming_it(fields, pointer):
    base = {"project_id": "p", "mode": "cell", "target_dimensions": "2"}
    with pytest.raises(InvalidInput) as caught:
        parse_upload_fields({**base, **fields})
    assert caught.value.status == 422
    assert caught.value.error_items()[0]["pointer"] == pointer
