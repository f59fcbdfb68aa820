"""The request body's size limits: MAX_BODY_BYTES for JSON, MAX_UPLOAD_BYTES for a multipart .h5ad
upload to a path that takes one. The audit middleware (api/audit.py) counts the bytes as they arrive."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import Scope

from api.paths import upload_path


class BodyTooLarge(HTTPException):
    def __init__(self, detail: str):
        super().__init__(413, detail)


def too_large(scope: Scope, limit: int, upload: bool) -> str:
    """The 413's detail; a JSON body to a path that also takes uploads is told to upload instead."""
    detail = f"request body exceeds the limit of {limit} bytes"
    if upload_path(scope["path"]) and not upload:
        detail += "; send a larger matrix as a multipart/form-data .h5ad upload (field `file`) to this path"
    return detail


def is_upload(scope: Scope) -> bool:
    """A multipart body to an upload path: capped by MAX_UPLOAD_BYTES (still digested as it streams)."""
    if not upload_path(scope["path"]):
        return False
    content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
    return content_type.split(b";", 1)[0].strip().lower() == b"multipart/form-data"
