"""API token format: `donr_` + 43 URL-safe base64 characters (32 random bytes) + `_` + a 6-character checksum.

The typed prefix lets secret scanners recognise a leaked token; the checksum (CRC-32 of the
body, base32) rejects a mistyped token before any database lookup. Only SHA-256 is stored.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import zlib
from dataclasses import dataclass

PREFIX = "donr_"
_BODY_CHARS = 43  # base64url of 32 bytes, padding stripped
_SHAPE = re.compile(r"donr_([A-Za-z0-9_-]{43})_([A-Z2-7]{6})")
PUBLIC_PREFIX_CHARS = 8
# Anything shaped like a token, checksum or not (a mistyped token is still a secret): for redaction.
LOOKS_LIKE_TOKEN = re.compile(r"donr_[A-Za-z0-9_-]{20,}")
REDACTED = "donr_REDACTED"


@dataclass(frozen=True)
class IssuedToken:
    plaintext: str
    public_prefix: str
    sha256: bytes


def _checksum(body: str) -> str:
    return base64.b32encode(zlib.crc32(body.encode()).to_bytes(4, "big")).decode()[:6]


def issue() -> IssuedToken:
    """A new random token; its plaintext must be shown once and never stored."""
    body = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    plaintext = f"{PREFIX}{body}_{_checksum(body)}"
    return IssuedToken(plaintext=plaintext, public_prefix=public_prefix(plaintext), sha256=digest(plaintext))


def well_formed(token: str) -> bool:
    """True when `token` has the shape and a matching checksum (no database needed)."""
    match = _SHAPE.fullmatch(token)
    return bool(match) and secrets.compare_digest(_checksum(match.group(1)), match.group(2))


def public_prefix(token: str) -> str:
    """The part of a token that may be shown and logged: `donr_` and the first 8 body characters."""
    return token[: len(PREFIX) + PUBLIC_PREFIX_CHARS]


def redact(text: str) -> str:
    """`text` with every token-shaped string replaced by donr_REDACTED (cheap when there is none)."""
    return LOOKS_LIKE_TOKEN.sub(REDACTED, text) if "donr_" in text else text


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
