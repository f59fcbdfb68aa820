"""Request bodies and query strings: strict JSON, then a pydantic model; every refusal names its field.

JSON is parsed with the standard library (duplicate keys are refused, which pydantic's own JSON
parser would silently resolve), then validated by the endpoint's model in Python mode. Errors
become the one 422 shape, each with a JSON pointer built from pydantic's `loc`.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from api.problems import InvalidInput, Problem

Model = TypeVar("Model", bound=BaseModel)


class HugeNumber:
    """An integer literal too long to convert: a value of no JSON type, so the field holding it is refused."""

    __slots__ = ("digits",)

    def __init__(self, digits: int):
        self.digits = digits


def _int(text: str) -> int | HugeNumber:
    return HugeNumber(len(text)) if len(text.lstrip("-")) > sys.get_int_max_str_digits() else int(text)


def pointer_escape(key: Any) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def pointer(loc: tuple) -> str:
    return "".join(f"/{pointer_escape(part)}" for part in loc)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):  # the rare case: find the key to name it
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidInput(f"/{pointer_escape(key)}", f"duplicate key {key!r}")
            seen.add(key)
    return result


def parse_json(body: bytes) -> Any:
    """Strict JSON: malformed is 400; a duplicate key is 422.

    NaN/Infinity literals parse as floats on purpose, so that the field holding one can be named
    in the 422: the models refuse non-finite numbers, and the array fast paths check them too."""
    if not body.strip():
        raise InvalidInput("", "request body is empty; a JSON object was expected", status=400)
    try:
        return json.loads(body, object_pairs_hook=_reject_duplicates)
    except InvalidInput:
        raise
    except ValueError as exc:
        # CPython refuses integer literals over 4,300 digits. Only then parse again with a hook that
        # keeps them as HugeNumber, so the 422 can name the field: a hook on every integer would make
        # every count matrix three times slower to read (bench/validation.py).
        if isinstance(exc, json.JSONDecodeError) or "integer string conversion" not in str(exc):
            raise _unreadable(exc) from None
        return _parse_keeping_huge_integers(body)
    except RecursionError as exc:
        raise _unreadable(exc) from None


def _parse_keeping_huge_integers(body: bytes) -> Any:
    try:
        return json.loads(body, object_pairs_hook=_reject_duplicates, parse_int=_int)
    except InvalidInput:
        raise
    except (ValueError, RecursionError) as exc:
        raise _unreadable(exc) from None


def _unreadable(exc: Exception) -> InvalidInput:
    """The 400 for a body that cannot be read as JSON, saying why in words (never the exception's class)."""
    if isinstance(exc, UnicodeDecodeError):
        return InvalidInput("", "request body is not UTF-8 text", status=400)
    if isinstance(exc, RecursionError):
        return InvalidInput("", "request body is nested too deeply to be read", status=400)
    where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
    return InvalidInput("", f"request body is not valid JSON{where}", status=400)


# pydantic's words for these name the model class ("... or instance of UpsertRequest").
_OBJECT_EXPECTED = frozenset({"model_type", "model_attributes_type", "dataclass_type", "dict_type"})


def _detail(error: dict) -> str:
    if error["type"] in _OBJECT_EXPECTED:
        return "must be a JSON object"
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message[:1].lower() + message[1:]


def _as_invalid(exc: ValidationError, *, query: bool = False) -> InvalidInput:
    items = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = error["loc"]
        if query:
            items.append({"parameter": str(loc[0]) if loc else "", "detail": _detail(error)})
        else:
            items.append({"pointer": pointer(loc), "detail": _detail(error)})
    first = items[0]
    if query:
        return InvalidInput(
            "", f"query parameter {first['parameter']!r}: {first['detail']}", parameter=first["parameter"], errors=items
        )
    return InvalidInput(first["pointer"], first["detail"], errors=items)


def validated(model: type[Model], data: Any) -> Model:
    """`data` (parsed JSON) as `model`, or InvalidInput naming every offending field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _as_invalid(exc) from None
    except RecursionError:
        raise InvalidInput("", "request body is nested too deeply to be read") from None


def validated_query(model: type[Model], params) -> Model:
    """A query string as `model`: each parameter at most once, unknown ones refused."""
    values = {}
    for name in params.keys():
        if len(params.getlist(name)) > 1:
            raise InvalidInput.query(name, "is given more than once")
        values[name] = params[name]
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise _as_invalid(exc, query=True) from None


JSON_TYPES = ("application/json",)


def check_json_request(headers) -> None:
    """415 for a body that is not plain JSON: another media type, or any Content-Encoding."""
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise Problem(
            415,
            f"Content-Encoding {encoding[:40]!r} is not accepted; send the JSON body uncompressed",
            kind="unsupported-media-type",
        )
    content_type = headers.get("content-type")
    if content_type is None:
        return  # a client that names no type is taken at its word that the body is JSON
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in JSON_TYPES and not (media.startswith("application/") and media.endswith("+json")):
        raise Problem(
            415, f"Content-Type {media[:80]!r} is not accepted; send application/json", kind="unsupported-media-type"
        )
