"""The all-pydantic side of bench/validation.py, path (b): the service's request models with only the array
field replaced by strict pydantic types, and parse_items / parse_build redone on top of them."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from pydantic import Field

from api.problems import InvalidInput
from api.schemas.arrays import FLOAT32_MAX
from api.schemas.collections import MAX_ITEMS, Items, UpsertRequest, VectorItem, check_comparable, dimension_problem
from api.schemas.common import metadata_json
from api.schemas.genomics import MAX_CELLS, MAX_VALUES, Build, BuildRequest, _unique, build_of

Element = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-FLOAT32_MAX, le=FLOAT32_MAX)]
Count = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]


class PydanticVectorItem(VectorItem):
    vector: list[Element] = Field(description="`dimensions` finite numbers within the 32-bit float range")


class PydanticUpsertRequest(UpsertRequest):
    items: list[PydanticVectorItem] = Field(min_length=1, max_length=MAX_ITEMS)


class PydanticBuildRequest(BuildRequest):
    expression_matrix: list[list[Count]] = Field(description="Cells × genes raw counts: finite numbers ≥ 0")


def parse_items_pydantic(body: Any, dimensions: int, metric: str) -> Items:
    """parse_items with the vectors validated by pydantic (the model has checked every element)."""
    request = PydanticUpsertRequest.model_validate(body)
    first_index: dict[str, int] = {}
    rows, metadata = [], []
    for i, item in enumerate(request.items):
        if item.id in first_index:
            raise InvalidInput(f"/items/{i}/id", f"duplicate id {item.id!r} (also at /items/{first_index[item.id]}/id)")
        first_index[item.id] = i
        if len(item.vector) != dimensions:
            raise InvalidInput(f"/items/{i}/vector", dimension_problem(item.vector, dimensions))
        rows.append(item.vector)
        metadata.append(metadata_json(item.metadata, f"/items/{i}/metadata"))
    vectors = np.asarray(rows, dtype=np.float32)
    check_comparable(vectors, metric, lambda r: f"/items/{r}/vector")
    return Items(list(first_index), vectors, metadata)


def expression_pydantic(genes: list[str], matrix: list[list[float]]) -> np.ndarray:
    """expression() without the element checks (the model has done them): sizes and shape, then NumPy."""
    where = "/expression_matrix"
    n_genes = len(genes)
    if not matrix:
        raise InvalidInput(where, "must be a non-empty list of rows (one per cell)")
    if len(matrix) > MAX_CELLS:
        raise InvalidInput(where, f"has {len(matrix)} cells; at most {MAX_CELLS} are allowed")
    if len(matrix) * n_genes > MAX_VALUES:
        raise InvalidInput(where, f"has {len(matrix)} × {n_genes} values; at most {MAX_VALUES} are allowed")
    for r, row in enumerate(matrix):
        if len(row) != n_genes:
            raise InvalidInput(f"{where}/{r}", f"expected {n_genes} values (one per gene name), row {r} has {len(row)}")
    return np.asarray(matrix, dtype=np.float64)


def parse_build_pydantic(body: Any) -> Build:
    """parse_build with the expression matrix validated by pydantic."""
    request = PydanticBuildRequest.model_validate(body)
    genes = _unique(request.gene_names, "/gene_names")
    return build_of(request, genes, expression_pydantic(genes, request.expression_matrix))
