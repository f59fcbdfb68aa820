"""Receive a multipart/form-data upload: the `file` part streams to a temporary file, the rest are text fields.

    await receive_upload(request, max_bytes, directory=None) -> Upload   (Upload.discard() deletes the file)

Parsed as it arrives with python-multipart's streaming parser, so the upload is never held whole
in memory. Over `max_bytes` (declared or counted) → 413 before the rest is read; a body that ends
before the closing boundary → 400; a malformed one → 400. On any error the temporary file is gone.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from api.problems import InvalidInput, Problem

FILE_FIELD = "file"
MAX_FIELD_BYTES = 65_536  # a text field (params is the longest) is small
MAX_PARTS = 32


@dataclass
class Upload:
    """The form's text fields and where its file was written; the caller owns the file."""

    fields: dict[str, str]
    path: Path
    size: int  # bytes of the file part
    filename: str | None

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def is_multipart(headers) -> bool:
    media, _ = parse_options_header(headers.get("content-type"))
    return media.strip().lower() == b"multipart/form-data"


def too_large(limit: int) -> Problem:
    return Problem(413, f"the upload exceeds MAX_UPLOAD_BYTES ({limit} bytes)")


@dataclass
class _Parts:
    """Callback state of one parse: the current part's headers and where its bytes go."""

    out: object  # the temporary file, opened for writing
    fields: dict[str, str] = field(default_factory=dict)
    header: bytes = b""
    value: bytes = b""
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str | None = None
    filename: str | None = None
    text: bytearray = field(default_factory=bytearray)
    file_parts: int = 0
    file_name: str | None = None
    file_bytes: int = 0
    parts: int = 0
    ended: bool = False

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": lambda data, start, end: setattr(self, "header", self.header + data[start:end]),
            "on_header_value": lambda data, start, end: setattr(self, "value", self.value + data[start:end]),
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
            "on_end": lambda: setattr(self, "ended", True),
        }

    def part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise InvalidInput("", f"a build form has at most {MAX_PARTS} parts")
        self.headers, self.name, self.filename, self.text = {}, None, None, bytearray()

    def header_end(self) -> None:
        self.headers[self.header.strip().lower()] = self.value.strip()
        self.header, self.value = b"", b""

    def headers_finished(self) -> None:
        kind, options = parse_options_header(self.headers.get(b"content-disposition"))
        if kind != b"form-data" or b"name" not in options:
            raise InvalidInput("", "every part needs Content-Disposition: form-data with a name", status=400)
        self.name = options[b"name"].decode("utf-8", errors="replace")
        filename = options.get(b"filename")
        self.filename = None if filename is None else filename.decode("utf-8", errors="replace")
        if self.name == FILE_FIELD:
            self.file_parts += 1
            if self.file_parts > 1:
                raise InvalidInput(f"/{FILE_FIELD}", "give one file")
        elif self.name in self.fields:
            raise InvalidInput(f"/{self.name}", "is given more than once")

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.name == FILE_FIELD:
            self.out.write(data[start:end])  # page-cache writes of ≤ 64 KiB chunks: brief enough for the loop
            self.file_bytes += end - start
            return
        self.text += data[start:end]
        if len(self.text) > MAX_FIELD_BYTES:
            raise InvalidInput(f"/{self.name}", f"is longer than {MAX_FIELD_BYTES} bytes")

    def part_end(self) -> None:
        if self.name == FILE_FIELD:
            self.file_name = self.filename
            return
        try:
            self.fields[self.name] = self.text.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"/{self.name}", "is not UTF-8 text") from None


async def receive_upload(request: Request, max_bytes: int, directory: str | Path | None = None) -> Upload:
    """Stream the request's multipart body: text fields into memory, the `file` part to a temporary file."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large(max_bytes)
    _, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if not boundary:
        raise InvalidInput("", "a multipart/form-data body needs a boundary in its Content-Type", status=400)
    descriptor, name = tempfile.mkstemp(prefix="donr-upload-", suffix=".h5ad", dir=directory)
    path = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as out:
            parts = _Parts(out)
            parser = MultipartParser(boundary, parts.callbacks())
            received = 0
            async for chunk in request.stream():
                received += len(chunk)
                if received > max_bytes:
                    raise too_large(max_bytes)
                try:
                    parser.write(chunk)
                except MultipartParseError as exc:
                    raise InvalidInput("", f"malformed multipart/form-data body: {exc}", status=400) from None
                if parts.ended:
                    break
            parser.finalize()
        if not parts.ended:
            raise InvalidInput("", "the upload is truncated: the body ended before its closing boundary", status=400)
        if parts.file_parts == 0:
            raise InvalidInput(f"/{FILE_FIELD}", "is required: the .h5ad file to build from")
        return Upload(parts.fields, path, parts.file_bytes, parts.file_name)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
