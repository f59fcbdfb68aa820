"""Genomics requests and responses: compress, build, marker encoding, project search, project."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field, SkipValidation

from api.body import validated
from api.problems import InvalidInput
from api.schemas.arrays import count_problem, float64_rows
from api.schemas.collections import query_vector
from api.schemas.common import (
    MAX_DIMENSIONS,
    MAX_METADATA_BYTES,
    Body,
    GeneName,
    MetadataFilter,
    ProjectId,
    Seed,
    TopK,
    VectorId,
    Whole,
    checked_filter,
    metadata_json,
)
from genomics.pca import CompressionParams

MAX_CELLS = 50_000
MAX_GENES = 50_000
MAX_VALUES = 20_000_000
MAX_CLUSTERS = 10_000
NORMALIZE_DESCRIPTION = (
    "auto: integers ≥ 0 are counts (library size 10⁴, then log1p), other values ≥ 0 are log data (as is), "
    "any negative means scaled data (only centred); counts, log and none force one of those; "
    "log1p: log1p of the values as given, no library size"
)
Normalize = Literal["auto", "counts", "log", "none", "log1p"]
Matrix = SkipValidation[list[list[float]]]  # checked by the NumPy fast path (api/schemas/arrays.py)


class Params(Body):
    mode: Literal["auto_evr", "fixed_k"] = Field(
        "auto_evr", description=("auto_evr: fewest components reaching evr_target; fixed_k: min(target, max_k, rank)")
    )
    evr_target: float = Field(0.9, gt=0, le=1, description="Explained-variance target for auto_evr, in (0, 1]")
    max_k: Whole = Field(256, ge=1, le=MAX_DIMENSIONS, description="Most components kept")

    def as_params(self) -> CompressionParams:
        return CompressionParams(self.mode, float(self.evr_target), self.max_k)


GeneNames = list[GeneName]


class CompressRequest(Body):
    gene_names: GeneNames = Field(min_length=1, max_length=MAX_GENES, description="One unique name per column")
    expression_matrix: Matrix = Field(description="Cells × genes raw counts: finite numbers ≥ 0")
    compression_target: Whole = Field(ge=1, le=MAX_DIMENSIONS, description="Most components to keep")
    params: Params | None = Field(None, description="Defaults: auto_evr, evr_target 0.9, max_k 256")
    seed: Seed = 0


class BuildRequest(Body):
    project_id: ProjectId
    gene_names: GeneNames = Field(min_length=1, max_length=MAX_GENES, description="One unique name per column")
    expression_matrix: Matrix = Field(description="Cells × genes raw counts: finite numbers ≥ 0")
    cell_metadata: list[dict[str, Any] | None] | None = Field(
        None,
        description=("One object per cell: `barcode` (unique) becomes the vector id, `cell_type` a string or null"),
    )
    target_dimensions: Whole = Field(ge=1, le=MAX_DIMENSIONS, description="Dimensions of the stored vectors")
    mode: Literal["cell", "cluster"] = Field(description="cell: a vector per cell; cluster: a centroid per cluster")
    n_clusters: Whole | None = Field(None, ge=1, le=MAX_CLUSTERS, description="Cluster mode only; default √(cells/2)")
    params: Params | None = Field(None, description="Default: fixed_k, keeping exactly target_dimensions")
    seed: Seed = 0
    normalize: Normalize = Field("log1p", description=NORMALIZE_DESCRIPTION + " (the default here, as always)")


class EncodeRequest(Body):
    project_id: ProjectId
    gene_names: GeneNames = Field(min_length=1, max_length=MAX_GENES, description="Marker genes")


class ProjectSearchRequest(Body):
    project_id: ProjectId
    query_vector: SkipValidation[list[float]] | None = Field(None, description="A vector in the project's space")
    gene_names: GeneNames | None = Field(
        None, min_length=1, max_length=MAX_GENES, description=("Marker genes instead of query_vector")
    )
    top_k: TopK
    distance_threshold: float | None = Field(None, description="Drop hits farther than this")
    filter: MetadataFilter | None = Field(
        None,
        description=("Equality on top-level metadata keys: keeps hits whose metadata has every key with that value"),
    )


def _unique(names: list[str], pointer: str) -> list[str]:
    first_seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in first_seen:
            raise InvalidInput(f"{pointer}/{i}", f"duplicate gene name {name!r} (also at index {first_seen[name]})")
        first_seen[name] = i
    return names


def expression(genes: list[str], matrix: Any) -> np.ndarray:
    """A cells × genes matrix of finite numbers ≥ 0 (one column per gene name), as float64."""
    where = "/expression_matrix"
    if type(matrix) is not list or not matrix:
        raise InvalidInput(where, "must be a non-empty list of rows (one per cell)")
    n_genes = len(genes)
    if len(matrix) > MAX_CELLS:
        raise InvalidInput(where, f"has {len(matrix)} cells; at most {MAX_CELLS} are allowed")
    if len(matrix) * n_genes > MAX_VALUES:
        raise InvalidInput(
            where, f"has {len(matrix)} × {n_genes} = {len(matrix) * n_genes} values; at most {MAX_VALUES} are allowed"
        )
    lengths = []
    for r, row in enumerate(matrix):
        if type(row) is not list or not row:
            raise InvalidInput(f"{where}/{r}", "must be a non-empty list of numbers (one per gene)")
        lengths.append(len(row))
    if any(n != n_genes for n in lengths):
        r = next(i for i, n in enumerate(lengths) if n != n_genes)
        if len(set(lengths)) > 1:
            raise InvalidInput(
                f"{where}/{r}",
                f"ragged matrix: expected {n_genes} values (one per gene name) but row {r} has {lengths[r]}",
            )
        raise InvalidInput(f"{where}/{r}", f"row {r} has {lengths[r]} values but gene_names has {n_genes}")
    values = float64_rows(matrix, lambda r, c: f"{where}/{r}/{c}", count_problem)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        r, c = divmod(int(np.flatnonzero(bad)[0]), n_genes)  # row-major: the first bad element
        raise InvalidInput(f"{where}/{r}/{c}", count_problem(matrix[r][c]) or "must be a finite number ≥ 0")
    return values


@dataclass(frozen=True, eq=False)
class Compress:
    gene_names: list[str]
    matrix: np.ndarray
    target: int
    params: CompressionParams
    seed: int


def parse_compress(body: Any) -> Compress:
    request = validated(CompressRequest, body)
    genes = _unique(request.gene_names, "/gene_names")
    params = (request.params or Params()).as_params()
    return Compress(
        genes, expression(genes, request.expression_matrix), request.compression_target, params, request.seed
    )


@dataclass(frozen=True, eq=False)
class Build:
    project_id: str
    gene_names: list[str]
    matrix: np.ndarray
    cells: list[dict[str, Any]]  # per cell: its metadata with "barcode" (the vector id) and "cell_type"
    target: int
    mode: str
    params: CompressionParams
    seed: int
    n_clusters: int | None
    normalize: str


def parse_build(body: Any) -> Build:
    request = validated(BuildRequest, body)
    genes = _unique(request.gene_names, "/gene_names")
    return build_of(request, genes, expression(genes, request.expression_matrix))


def build_of(request: BuildRequest, genes: list[str], matrix: np.ndarray) -> Build:
    """The rest of a build request's checks, once its matrix is read."""
    if request.n_clusters is not None and request.mode != "cluster":
        raise InvalidInput("/n_clusters", "only applies when mode is 'cluster'")
    # A build asks for target_dimensions; unless params say otherwise, keep exactly that many (rank permitting).
    params = (
        request.params.as_params()
        if request.params is not None
        else CompressionParams(mode="fixed_k", max_k=MAX_DIMENSIONS)
    )
    cells = cell_metadata(request.cell_metadata, matrix.shape[0])
    return Build(
        request.project_id,
        genes,
        matrix,
        cells,
        request.target_dimensions,
        request.mode,
        params,
        request.seed,
        request.n_clusters,
        request.normalize,
    )


def cell_metadata(value: list | None, n_cells: int) -> list[dict[str, Any]]:
    """One object (or null) per cell; `barcode` becomes the vector id (default cell-<row>), unique."""
    if value is None:
        value = [None] * n_cells
    if len(value) != n_cells:
        raise InvalidInput("/cell_metadata", f"must be a list with one object per cell ({n_cells})")
    cells = []
    seen: dict[str, int] = {}
    barcode_of = VectorIdCheck()
    for i, item in enumerate(value):
        where = f"/cell_metadata/{i}"
        item = {} if item is None else item
        barcode = barcode_of(item["barcode"], f"{where}/barcode") if "barcode" in item else f"cell-{i}"
        if barcode in seen:
            raise InvalidInput(f"{where}/barcode", f"duplicate barcode {barcode!r} (also cell {seen[barcode]})")
        seen[barcode] = i
        cell_type = item.get("cell_type")
        if cell_type is not None and not isinstance(cell_type, str):
            raise InvalidInput(f"{where}/cell_type", "must be a string or null")
        cell = {**item, "barcode": barcode, "cell_type": cell_type, "cell_index": i}
        metadata_json(cell, where, MAX_METADATA_BYTES)
        cells.append(cell)
    return cells


class _Barcode(Body):
    barcode: VectorId


class VectorIdCheck:
    """A barcode is a vector id: the same rule, checked through the same model field."""

    def __call__(self, value: Any, pointer: str) -> str:
        try:
            return validated(_Barcode, {"barcode": value}).barcode
        except InvalidInput as exc:
            raise InvalidInput(pointer, exc.detail) from None


def parse_encode(body: Any) -> EncodeRequest:
    return validated(EncodeRequest, body)


def parse_project_search(body: Any) -> ProjectSearchRequest:
    request = validated(ProjectSearchRequest, body)
    if (request.query_vector is None) == (request.gene_names is None):
        raise InvalidInput("/query_vector", "give exactly one of query_vector and gene_names")
    return request.model_copy(update={"filter": checked_filter(request.filter, "/filter")})


def project_query_vector(request: ProjectSearchRequest, dimensions: int) -> np.ndarray:
    return query_vector(request.query_vector, "/query_vector", dimensions, "cosine")
