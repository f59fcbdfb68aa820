"""Validation of raw JSON-decoded expression input (gene names, matrix, params); no IO."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from genomics.pca import CompressionParams
from core.validation import InvalidInput, int_in, number_in, require_object, text

MAX_CELLS = 50_000
MAX_GENES = 50_000
MAX_VALUES = 20_000_000
MAX_GENE_NAME = 200
MAX_K_LIMIT = 2000
MODES = ("auto_evr", "fixed_k")


def parse_params(body_params: Any, pointer: str = "/params") -> CompressionParams:
    """Validate the optional `params` object (None or missing means all defaults)."""
    if body_params is None:
        return CompressionParams()
    require_object(body_params, pointer, allowed={"mode", "evr_target", "max_k"})
    defaults = CompressionParams()
    mode = body_params.get("mode", defaults.mode)
    if not isinstance(mode, str) or mode not in MODES:
        raise InvalidInput(f"{pointer}/mode", f"must be one of {', '.join(MODES)}")
    evr = number_in(body_params.get("evr_target", defaults.evr_target), f"{pointer}/evr_target", 0.0, 1.0)
    if evr == 0.0:
        # A target of 0 would be met by zero components; the range is (0, 1].
        raise InvalidInput(f"{pointer}/evr_target", "must be greater than 0 and at most 1")
    max_k = int_in(body_params.get("max_k", defaults.max_k), f"{pointer}/max_k", 1, MAX_K_LIMIT)
    return CompressionParams(mode=mode, evr_target=evr, max_k=max_k)


def parse_gene_names(gene_names: Any, pointer: str = "/gene_names", max_count: int | None = None) -> list[str]:
    """A non-empty list of unique non-empty strings (each at most 200 characters)."""
    max_count = MAX_GENES if max_count is None else max_count
    if not isinstance(gene_names, list) or not gene_names:
        raise InvalidInput(pointer, "must be a non-empty list of gene names")
    if len(gene_names) > max_count:
        raise InvalidInput(pointer, f"has {len(gene_names)} genes; at most {max_count} are allowed")
    first_seen: dict[str, int] = {}
    for i, name in enumerate(gene_names):
        text(name, f"{pointer}/{i}", MAX_GENE_NAME)
        if name in first_seen:
            raise InvalidInput(f"{pointer}/{i}", f"duplicate gene name {name!r} (also at index {first_seen[name]})")
        first_seen[name] = i
    return list(gene_names)


def parse_expression(gene_names: Any, matrix: Any, pointer_prefix: str = "") -> tuple[list[str], np.ndarray]:
    """Validate gene names and a cells × genes matrix of finite non-negative numbers; return float64."""
    genes = parse_gene_names(gene_names, f"{pointer_prefix}/gene_names")
    where = f"{pointer_prefix}/expression_matrix"
    if not isinstance(matrix, list) or not matrix:
        raise InvalidInput(where, "must be a non-empty list of rows (one per cell)")
    n_genes = len(genes)
    if len(matrix) > MAX_CELLS:
        raise InvalidInput(where, f"has {len(matrix)} cells; at most {MAX_CELLS} are allowed")
    if len(matrix) * n_genes > MAX_VALUES:
        raise InvalidInput(where, f"has {len(matrix)} × {n_genes} = {len(matrix) * n_genes} values; "
                                  f"at most {MAX_VALUES} are allowed")
    _check_rows(matrix, n_genes, where)

    # Fast path: one C-level type scan; bools and strings would otherwise be silently coerced by NumPy.
    types: set[type] = set()
    for row in matrix:
        types.update(map(type, row))
    values = None
    if types <= {int, float}:
        try:
            values = np.array(matrix, dtype=np.float64)
        except OverflowError:  # an int too large for float64
            values = None
    if values is None:
        _raise_first_bad_element(matrix, where)
        values = np.array(matrix, dtype=np.float64)  # e.g. NumPy scalars: valid but not plain int/float
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        r, c = divmod(int(np.flatnonzero(bad)[0]), n_genes)  # row-major: the first bad element
        raise InvalidInput(f"{where}/{r}/{c}", _value_problem(matrix[r][c]) or "must be a finite number ≥ 0")
    return genes, values


def _check_rows(matrix: list, n_genes: int, where: str) -> None:
    lengths = []
    for r, row in enumerate(matrix):
        if not isinstance(row, list) or not row:
            raise InvalidInput(f"{where}/{r}", "must be a non-empty list of numbers (one per gene)")
        lengths.append(len(row))
    if all(n == n_genes for n in lengths):
        return
    r = next(i for i, n in enumerate(lengths) if n != n_genes)
    if len(set(lengths)) > 1:
        raise InvalidInput(f"{where}/{r}", f"ragged matrix: expected {n_genes} values (one per gene name) "
                                           f"but row {r} has {lengths[r]}")
    raise InvalidInput(f"{where}/{r}", f"row {r} has {lengths[r]} values but gene_names has {n_genes}")


def _raise_first_bad_element(matrix: list, where: str) -> None:
    # Only reached when the fast scan saw an unexpected type, so a Python loop is acceptable here.
    for r, row in enumerate(matrix):
        for c, value in enumerate(row):
            problem = _value_problem(value)
            if problem:
                raise InvalidInput(f"{where}/{r}/{c}", problem)


def _value_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return f"must be a number, not {_json_kind(value)}"
    try:
        number = float(value)
    except OverflowError:
        return "is too large to be a finite number"
    if not math.isfinite(number):
        return "must be a finite number (NaN and infinity are not allowed)"
    if number < 0:
        return f"must not be negative (expression counts are ≥ 0), got {number}"
    return None


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
