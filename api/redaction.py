"""What must never be stored: the one home of the query keys that carry secrets (token-shaped
text anywhere is redacted too: core/tokens.redact).

Two lists on purpose: authentication refuses a request whose query string holds a key a client
would put *our* token under (so a token in a URL is never accepted, and the client learns it at
once); the audit row redacts every value that looks like any secret, ours or not (a password for
some other system is still not ours to store), without refusing the request.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from core.tokens import redact

TOKEN_QUERY_KEYS = frozenset({"token", "access_token", "api_key", "apikey", "key", "authorization"})
SECRET_QUERY_KEYS = TOKEN_QUERY_KEYS | {"secret", "password"}
REDACTED = "REDACTED"


def token_in_query(raw: bytes) -> bool:
    query = raw.decode("latin-1").lower()
    return any(part.split("=", 1)[0] in TOKEN_QUERY_KEYS for part in query.split("&") if part)


def redacted_query(raw: bytes) -> str:
    """The query string with every secret-looking value replaced by REDACTED."""
    if not raw:
        return ""
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    return urlencode([(redact(k), REDACTED if k.lower() in SECRET_QUERY_KEYS else redact(v)) for k, v in pairs])
