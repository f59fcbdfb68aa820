"""Trace ids: reuse a caller's safe X-Request-ID, otherwise mint one."""

from __future__ import annotations

import random
import re

_SAFE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def trace_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _SAFE_ID.fullmatch(candidate):
                return candidate
            break
    # A trace id needs uniqueness, not secrecy: 128 random bits without uuid4's os.urandom call.
    return f"{random.getrandbits(128):032x}"
