"""Validation of the genomics requests (compress, build, encode, search): pure, no IO.

Gene names, the expression matrix and compression params reuse core/expression_input.py; this
module adds the project id, per-cell metadata and the request shapes.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from api.vector_input import (MAX_METADATA_BYTES, check_storable, optional_distance, metadata_filter, query_vector,
                              top_k, vector_id)
from genomics.pca import CompressionParams
from core.expression_input import (MAX_GENE_NAME, MAX_GENES, MAX_K_LIMIT, parse_expression,
                                   parse_params)
MAX_SEED = 2**63 - 1  # fits a Postgres bigint
from core.validation import InvalidInput, int_in, require_object

PROJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
MODES = ("cell", "cluster")
MAX_DIMENSIONS = 2000  # a collection's limit (HNSW indexes vectors of at most 2,000 dimensions)
MAX_CLUSTERS = 10_000


def project_id(value: Any, pointer: str = "/project_id") -> str:
    if not isinstance(value, str) or not PROJECT_ID.fullmatch(value):
        raise InvalidInput(pointer, "must be 1-100 characters: letters, digits, '.', '_' or '-', "
                                    "starting with a letter or digit")
    return value


def seed(body: dict) -> int:
    return int_in(body.get("seed", 0), "/seed", 0, MAX_SEED)


@dataclass(frozen=True, eq=False)
class CompressRequest:
    gene_names: list[str]
    matrix: np.ndarray
    target: int
    params: CompressionParams
    seed: int


def parse_compress(body: Any) -> CompressRequest:
    require_object(body, "", allowed={"gene_names", "expression_matrix", "compression_target", "params", "seed"},
                   required={"gene_names", "expression_matrix", "compression_target"})
    genes, matrix = parse_expression(body["gene_names"], body["expression_matrix"])
    return CompressRequest(genes, matrix, int_in(body["compression_target"], "/compression_target", 1, MAX_DIMENSIONS),
                           parse_params(body.get("params")), seed(body))


@dataclass(frozen=True, eq=False)
class BuildRequest:
    project_id: str
    gene_names: list[str]
    matrix: np.ndarray
    cells: list[dict[str, Any]]  # per cell: its metadata with "barcode" (the vector id) and "cell_type"
    target: int
    mode: str
    params: CompressionParams
    seed: int
    n_clusters: int | None


def parse_build(body: Any) -> BuildRequest:
    require_object(body, "", allowed={"project_id", "gene_names", "expression_matrix", "cell_metadata",
                                      "target_dimensions", "mode", "params", "seed", "n_clusters"},
                   required={"project_id", "gene_names", "expression_matrix", "target_dimensions", "mode"})
    pid = project_id(body["project_id"])
    genes, matrix = parse_expression(body["gene_names"], body["expression_matrix"])
    target = int_in(body["target_dimensions"], "/target_dimensions", 1, MAX_DIMENSIONS)
    mode = body["mode"]
    if not isinstance(mode, str) or mode not in MODES:
        raise InvalidInput("/mode", f"must be one of {', '.join(MODES)}")
    # A build asks for target_dimensions; unless params say otherwise, keep exactly that many (rank permitting).
    params = parse_params(body["params"]) if body.get("params") is not None else \
        CompressionParams(mode="fixed_k", max_k=MAX_K_LIMIT)
    n_clusters = body.get("n_clusters")
    if n_clusters is not None:
        if mode != "cluster":
            raise InvalidInput("/n_clusters", "only applies when mode is 'cluster'")
        n_clusters = int_in(n_clusters, "/n_clusters", 1, MAX_CLUSTERS)
    cells = cell_metadata(body.get("cell_metadata"), matrix.shape[0])
    return BuildRequest(pid, genes, matrix, cells, target, mode, params, seed(body), n_clusters)


def cell_metadata(value: Any, n_cells: int) -> list[dict[str, Any]]:
    """One object (or null) per cell; `barcode` becomes the vector id (default cell-<row>), unique."""
    if value is None:
        value = [None] * n_cells
    if not isinstance(value, list) or len(value) != n_cells:
        raise InvalidInput("/cell_metadata", f"must be a list with one object per cell ({n_cells})")
    cells = []
    seen: dict[str, int] = {}
    for i, item in enumerate(value):
        where = f"/cell_metadata/{i}"
        item = {} if item is None else item
        if not isinstance(item, dict):
            raise InvalidInput(where, "must be a JSON object (or null)")
        check_storable(item, where)
        barcode = vector_id(item["barcode"], f"{where}/barcode") if "barcode" in item else f"cell-{i}"
        if barcode in seen:
            raise InvalidInput(f"{where}/barcode", f"duplicate barcode {barcode!r} (also cell {seen[barcode]})")
        seen[barcode] = i
        cell_type = item.get("cell_type")
        if cell_type is not None and not isinstance(cell_type, str):
            raise InvalidInput(f"{where}/cell_type", "must be a string or null")
        cell = {**item, "barcode": barcode, "cell_type": cell_type, "cell_index": i}
        if len(json.dumps(cell, ensure_ascii=False)) > MAX_METADATA_BYTES:
            raise InvalidInput(where, f"is larger than {MAX_METADATA_BYTES} bytes as JSON")
        cells.append(cell)
    return cells


def marker_genes(value: Any, pointer: str = "/gene_names") -> list[str]:
    """Marker genes for a query: non-empty printable names; repeats are harmless (they count once)."""
    if not isinstance(value, list) or not value:
        raise InvalidInput(pointer, "must be a non-empty list of gene names")
    if len(value) > MAX_GENES:
        raise InvalidInput(pointer, f"has {len(value)} genes; at most {MAX_GENES} are allowed")
    for i, name in enumerate(value):
        if not isinstance(name, str) or not name or len(name) > MAX_GENE_NAME or not name.isprintable():
            raise InvalidInput(f"{pointer}/{i}", f"must be a gene name: 1-{MAX_GENE_NAME} printable characters")
    return value


@dataclass(frozen=True)
class EncodeRequest:
    project_id: str
    gene_names: list[str]


def parse_encode(body: Any) -> EncodeRequest:
    require_object(body, "", allowed={"project_id", "gene_names"}, required={"project_id", "gene_names"})
    return EncodeRequest(project_id(body["project_id"]), marker_genes(body["gene_names"]))


@dataclass(frozen=True, eq=False)
class ProjectSearchRequest:
    project_id: str
    raw_vector: Any  # checked against the project's dimensions once the project is loaded
    gene_names: list[str] | None
    top_k: int
    distance_threshold: float | None
    metadata_filter: dict | None


def parse_project_search(body: Any) -> ProjectSearchRequest:
    require_object(body, "", allowed={"project_id", "query_vector", "gene_names", "top_k", "distance_threshold",
                                      "filter"}, required={"project_id", "top_k"})
    has_vector, has_genes = body.get("query_vector") is not None, body.get("gene_names") is not None
    if has_vector == has_genes:
        raise InvalidInput("/query_vector", "give exactly one of query_vector and gene_names")
    return ProjectSearchRequest(
        project_id=project_id(body["project_id"]),
        raw_vector=body.get("query_vector"),
        gene_names=marker_genes(body["gene_names"]) if has_genes else None,
        top_k=top_k(body["top_k"], "/top_k"),
        distance_threshold=optional_distance(body.get("distance_threshold"), "/distance_threshold"),
        metadata_filter=metadata_filter(body.get("filter"), "/filter"),
    )


def project_query_vector(request: ProjectSearchRequest, dimensions: int) -> np.ndarray:
    return query_vector(request.raw_vector, "/query_vector", dimensions, "cosine")
