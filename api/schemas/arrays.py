"""The fast path for big numeric arrays (vectors, expression matrices): one C-level type scan and one
NumPy conversion per request, Python loops only to name the first bad element. The models declare
these fields' shapes for the document. Measured against validating the same arrays in pydantic and
converting them (bench/validation.py): a 3,000 × 2,000 count matrix 1.7× faster with a quarter of the
memory, a 10,000 × 128 upsert 1.13× faster."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from api.body import HugeNumber
from api.problems import InvalidInput
from core.vector_bounds import ELEMENT_MESSAGE

FLOAT32_MAX = float(np.finfo(np.float32).max)
Pointer = Callable[[int, int], str]


def float64_rows(rows: list[list], pointer_of: Pointer, problem_of: Callable[[Any], str | None]) -> np.ndarray:
    """Equal-length rows of JSON numbers as float64; the first element `problem_of` refuses is named."""
    types: set[type] = set()
    for row in rows:
        types.update(map(type, row))
    values = None
    if types <= {float, int}:
        try:
            values = np.array(rows, dtype=np.float64)
        except OverflowError:  # an integer beyond float64
            values = None
    if values is None:
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                problem = problem_of(value)
                if problem:
                    raise InvalidInput(pointer_of(r, c), problem)
        values = np.array(rows, dtype=np.float64)
    return values


def float32_rows(rows: list[list], pointer_of: Pointer) -> np.ndarray:
    """Rows of finite numbers within the 32-bit float range, as float32."""
    values = float64_rows(rows, pointer_of, number_problem)
    bad = ~(np.abs(values) <= FLOAT32_MAX)  # also catches NaN, which compares false
    if bad.any():
        r, c = (int(x) for x in np.argwhere(bad)[0])
        raise InvalidInput(pointer_of(r, c), number_problem(rows[r][c]) or "is out of range")
    return values.astype(np.float32)


def _as_finite(value: Any, too_large: str) -> tuple[float | None, str | None]:
    """A JSON value as a finite float, or why it is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, f"must be a number, not {json_kind(value)}"
    try:
        number = float(value)
    except OverflowError:
        return None, too_large
    if not math.isfinite(number):
        return None, "must be a finite number (NaN and Infinity are not allowed)"
    return number, None


def number_problem(value: Any) -> str | None:
    """Why a JSON value cannot be a vector element, or None."""
    number, problem = _as_finite(value, ELEMENT_MESSAGE)
    if problem is None and abs(number) > FLOAT32_MAX:
        return ELEMENT_MESSAGE
    return problem


def count_problem(value: Any) -> str | None:
    """Why a JSON value cannot be an expression count (finite, ≥ 0), or None."""
    number, problem = _as_finite(value, "is too large to be a finite number")
    if problem is None and number < 0:
        return f"must not be negative (expression counts are ≥ 0), got {number}"
    return problem


def json_kind(value: Any) -> str:
    if isinstance(value, HugeNumber):
        return "a number with too many digits"
    kinds = {type(None): "null", bool: "a boolean", str: "a string", list: "a list", dict: "an object"}
    return kinds.get(type(value), "a value of another kind")
