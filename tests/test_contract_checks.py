"""The contract test's own problem+json check, on answers made by hand."""

from __future__ import annotations

import json

import pytest

from tests.contract_checks import PROBLEM_TYPE, problem_json


class _Answer:
    """Just what `problem_json` reads of a schemathesis Response."""

    def __init__(self, status: int, content_type: str, body: dict | str):
        self.status_code = status
        self.headers = {"content-type": [content_type]}
        self.content = (body if isinstance(body, str) else json.dumps(body)).encode()


@pytest.mark.parametrize(
    "answer",
    [
        _Answer(
            404, "application/json", {"type": "t", "title": "Not Found", "status": 404, "detail": "d", "trace_id": "x"}
        ),
        _Answer(500, "text/plain", "Internal Server Error"),
        _Answer(422, PROBLEM_TYPE, {"type": "t", "title": "Unprocessable", "status": 422, "trace_id": "x"}),
        _Answer(429, PROBLEM_TYPE, {"type": "t", "title": "Too Many", "status": 400, "detail": "d", "trace_id": "x"}),
        _Answer(401, PROBLEM_TYPE, {"type": "t", "title": "Unauthorized", "status": 401, "detail": "d"}),
    ],
)
def test_problem_check_rejects_errors_that_are_not_problem_json(answer):
    with pytest.raises(AssertionError):
        problem_json(None, answer, None)


def _problem(detail: str, **extra) -> _Answer:
    body = {"type": "t", "title": "Unprocessable Content", "status": 422, "detail": detail, "trace_id": "x", **extra}
    return _Answer(422, PROBLEM_TYPE, body)


@pytest.mark.parametrize(
    "answer",
    [
        _problem("JSONDecodeError: Expecting value: line 1 column 1 (char 0)"),
        _problem("Expecting value (JSONDecode)"),
        _problem("Traceback (most recent call last):"),
        _problem("asyncpg.exceptions.DataError: invalid input"),
        _problem("input should be a valid dictionary or instance of UpsertRequest"),
        _problem(
            "bad input", errors=[{"pointer": "/a", "detail": "fine"}, {"pointer": "/b", "detail": "a ValueError"}]
        ),
    ],
)
def test_problem_check_rejects_details_that_show_python_internals(answer):
    with pytest.raises(AssertionError, match="shows Python internals"):
        problem_json(None, answer, None)


def test_problem_check_accepts_a_problem_and_ignores_successes():
    good = {"type": "https://x/problems/y", "title": "Not Found", "status": 404, "detail": "d", "trace_id": "t"}
    assert problem_json(None, _Answer(404, "application/problem+json; charset=utf-8", good), None) is None
    assert problem_json(None, _Answer(200, "text/html", "<p>ok</p>"), None) is None


class _Sent:
    """Just what `problem_json` reads of a schemathesis Case."""

    def __init__(self, path_parameters=None, query=None, body=None):
        self.path_parameters, self.query, self.body = path_parameters or {}, query or {}, body


def test_problem_check_allows_internals_like_words_that_the_request_sent():
    echoed = _problem("no collection named 'KeyError'")
    assert problem_json(None, echoed, _Sent(path_parameters={"name": "KeyError"})) is None
    assert problem_json(None, echoed, _Sent(path_parameters={"name": "%4BeyError"})) is None  # sent percent-encoded
    assert problem_json(None, _problem("no genomics project 'aError'"), _Sent(body={"project_id": "aError"})) is None
    with pytest.raises(AssertionError):  # only what was sent is excused
        problem_json(None, echoed, _Sent(path_parameters={"name": "other"}))
