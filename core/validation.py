"""Strict JSON parsing and field checks that raise InvalidInput with a JSON pointer; no IO."""
from __future__ import annotations

import json
import math
from typing import Any


class InvalidInput(ValueError):
    """Client input that breaks the contract: answered as 422 naming the offending field."""

    def __init__(self, pointer: str, detail: str, status: int = 422, parameter: str | None = None):
        super().__init__(detail)
        self.pointer = pointer
        self.detail = detail
        self.status = status
        self.parameter = parameter  # set for a query parameter instead of a body field

    @classmethod
    def query(cls, name: str, detail: str) -> "InvalidInput":
        return cls("", f"query parameter {name!r}: {detail}", parameter=name)

    def error_item(self) -> dict:
        where = {"parameter": self.parameter} if self.parameter is not None else {"pointer": self.pointer}
        return {**where, "detail": self.detail}


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
    """Parse a request body as strict JSON: malformed is 400, a duplicate key is 422.

    NaN/Infinity literals parse as floats on purpose, so that the field holding one can be named
    in the 422: every numeric field is checked for finiteness by the validators below and their
    kin, and nothing reaches the database unchecked."""
    if not body.strip():
        raise InvalidInput("", "request body is empty; a JSON object was expected", status=400)
    try:
        return json.loads(body, object_pairs_hook=_reject_duplicates)
    except InvalidInput:
        raise
    except (ValueError, RecursionError) as exc:
        # UnicodeDecodeError and JSONDecodeError are ValueErrors; deep nesting is a RecursionError.
        raise InvalidInput("", f"request body is not valid JSON ({type(exc).__name__})", status=400) from None


def pointer_escape(key: str) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def require_object(value: Any, pointer: str = "", allowed: set[str] | None = None,
                   required: set[str] = frozenset()) -> dict:
    """Check `value` is an object with no unknown keys and every required key."""
    if not isinstance(value, dict):
        raise InvalidInput(pointer, "must be a JSON object")
    if allowed is not None:
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise InvalidInput(f"{pointer}/{pointer_escape(unknown[0])}", f"unknown field {unknown[0]!r}")
    for key in sorted(required):
        if key not in value:
            raise InvalidInput(f"{pointer}/{pointer_escape(key)}", f"{key!r} is required")
    return value


def int_in(value: Any, pointer: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(pointer, f"must be a whole number from {low} to {high}")
    if not low <= value <= high:
        raise InvalidInput(pointer, f"must be from {low} to {high}, not {value}")
    return value


def number_in(value: Any, pointer: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(pointer, f"must be a finite number from {low} to {high}")
    if not low <= value <= high:
        raise InvalidInput(pointer, f"must be from {low} to {high}, not {value}")
    return float(value)


def text(value: Any, pointer: str, max_len: int = 200, pattern=None) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(pointer, "must be a non-empty string")
    if len(value) > max_len:
        raise InvalidInput(pointer, f"must be at most {max_len} characters")
    if "\x00" in value:
        raise InvalidInput(pointer, "must not contain NUL characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise InvalidInput(pointer, f"must match {pattern.pattern}")
    return value
