"""The checks every fuzzed response must pass: schemathesis' own, plus errors that are problem+json
and show no Python internals."""

from __future__ import annotations

import json
import re
import urllib.parse

from schemathesis import checks as st_checks
from schemathesis.specs.openapi import checks as oas_checks

PROBLEM_FIELDS = ("type", "title", "status", "detail")
PROBLEM_TYPE = "application/problem+json"


def problem_json(ctx, response, case) -> None:
    """Every 4xx/5xx is RFC 9457 problem+json with type, title, status (= the HTTP status), detail, trace_id."""
    if response.status_code < 400:
        return None
    media_type = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    if media_type != PROBLEM_TYPE:
        raise AssertionError(f"{response.status_code} answered as {media_type!r}, not {PROBLEM_TYPE}")
    body = json.loads(response.content)
    missing = [field for field in PROBLEM_FIELDS if field not in body]
    if missing:
        raise AssertionError(f"problem body lacks {missing}: {body}")
    if body["status"] != response.status_code:
        raise AssertionError(f"problem status {body['status']} differs from HTTP status {response.status_code}")
    if not all(isinstance(body[field], str) and body[field] for field in ("type", "title", "detail")):
        raise AssertionError(f"type, title and detail must be non-empty strings: {body}")
    if "trace_id" not in body:
        raise AssertionError(f"problem body lacks trace_id: {body}")
    details = [("detail", body["detail"])]
    if isinstance(body.get("errors"), list):
        details += [
            (f"errors[{i}].detail", item.get("detail"))
            for i, item in enumerate(body["errors"])
            if isinstance(item, dict) and isinstance(item.get("detail"), str)
        ]
    echoed = _sent_strings(case)
    for where, text in details:
        leak = INTERNALS.search(_without(text, echoed))
        if leak:
            raise AssertionError(f"{where} shows Python internals ({leak.group(0)!r}): {text!r}")
    return None


# What a person should never read in an error: exception class names (`JSONDecodeError`,
# `ValidationError`, `asyncpg.exceptions.DataError`), tracebacks, library names, object reprs.
INTERNALS = re.compile(
    r"\b\w+(?:Error|Exception)\b|Traceback|JSONDecode|\bpydantic\b|\basyncpg\b|"
    r"<class |object at 0x|File \"|\binstance of \w+"
)


def _sent_strings(case) -> list[str]:
    """Every string the case sent (path, query, body keys and values), in the forms a detail may quote
    it: an error may rightly echo input (`no collection named 'xError'`), and that is not a leak."""
    if case is None:
        return []
    found: list[str] = []

    def walk(value) -> None:
        if isinstance(value, str):
            found.extend((value, repr(value), json.dumps(value), json.dumps(value, ensure_ascii=False)))
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(key)
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    for container in (case.path_parameters, case.query, getattr(case, "body", None)):
        walk(container)
    for container in (case.path_parameters, case.query):  # sent percent-encoded: also in decoded form
        for value in (container or {}).values():
            if isinstance(value, str):
                walk(urllib.parse.unquote(value))
    return sorted({text for text in found if text}, key=len, reverse=True)


def _without(text: str, echoed: list[str]) -> str:
    for sent in echoed:
        text = text.replace(sent, " ")
    return text


CHECKS = [
    st_checks.not_a_server_error,
    oas_checks.status_code_conformance,
    oas_checks.content_type_conformance,
    oas_checks.response_headers_conformance,
    oas_checks.response_schema_conformance,
    # Invalid input (negative mode) must be refused with a 4xx, valid input must not be.
    oas_checks.negative_data_rejection,
    # Not positive_data_acceptance: some rules cannot be said in JSON Schema (a vector's length is the
    # collection's dimensions, `since` must be before `until`), so schema-valid requests can rightly be 422.
    # A 2xx on a bearerAuth operation is re-sent without / with a wrong token and must then be 401.
    oas_checks.ignored_auth,
    problem_json,
]
