"""Read an AnnData .h5ad file into what a build needs: a CSR matrix, gene names, barcodes and obs metadata.

    read_h5ad(path, *, layer="X", cell_type_key=None, metadata_keys=None) -> H5adData

The matrix is read through h5py a chunk at a time (float32, never densified whole); obs and var
through anndata's element reader. Every problem with the file raises H5adError(field, message),
`field` being the upload form field to blame: file, layer, cell_type_key or metadata_keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata.io import read_elem

# Tried in this order when no cell_type_key is given: scanpy's, CellxGene's and Seurat's usual names.
CELL_TYPE_KEYS = (
    "cell_type",
    "celltype",
    "cell_types",
    "cell_type_original",
    "cell_ontology_class",
    "louvain",
    "leiden",
    "bulk_labels",
    "seurat_clusters",
    "cluster",
    "clusters",
)
DENSE_LIMIT = 20_000_000  # a dense layer up to this many values stays dense; above it becomes CSR by row chunks
ROW_CHUNK_VALUES = 1 << 24  # values read from a dense layer at once
NNZ_CHUNK = 1 << 23  # stored values read from a sparse layer at once


class H5adError(ValueError):
    """An .h5ad file this service cannot use; `field` names the form field to blame."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True, eq=False)
class H5adData:
    """The layer read (cells × genes, CSR float32, or dense float64 when small), its genes and cells."""

    matrix: sp.csr_matrix | np.ndarray
    gene_names: list[str]  # var_names, or raw.var_names for layer "raw"
    cell_ids: list[str]  # obs_names: the barcodes
    metadata: list[dict[str, Any]]  # per cell: the kept scalar obs columns, JSON-safe values
    cell_type_key: str | None  # the obs column read as cell type, None when none exists
    cell_types: list[str | None]  # per cell: its cell type as text, None if missing
    layer: str

    def cells(self) -> list[dict[str, Any]]:
        """The build's cell records: metadata plus barcode, cell_type and cell_index (genomics.build)."""
        return [
            {**meta, "barcode": barcode, "cell_type": cell_type, "cell_index": i}
            for i, (barcode, cell_type, meta) in enumerate(
                zip(self.cell_ids, self.cell_types, self.metadata, strict=True)
            )
        ]


def read_h5ad(
    path: str | Path, *, layer: str = "X", cell_type_key: str | None = None, metadata_keys: list[str] | None = None
) -> H5adData:
    """Read one layer ("X", "raw" for .raw.X, or a key of layers) and the obs columns asked for
    (metadata_keys=None: every scalar column). H5adError on anything unusable."""
    if not h5py.is_hdf5(path):
        raise H5adError("file", "is not an HDF5 file (an .h5ad file is HDF5)")
    try:
        with h5py.File(path, "r") as f:
            if not _is_anndata(f):
                raise H5adError("file", "is HDF5 but not AnnData: it has no obs and var groups")
            node, var_path = _layer_node(f, layer)
            obs = _frame(f, "obs")
            var = _frame(f, var_path)
            genes = [str(name) for name in var.index]
            cells = [str(name) for name in obs.index]
            if not cells or not genes:
                raise H5adError("file", f"has {len(cells)} cells and {len(genes)} genes; both must be at least 1")
            duplicate = _first_duplicate(genes)
            if duplicate is not None:
                raise H5adError("file", f"gene names must be unique, and {duplicate!r} appears more than once")
            matrix = _matrix(node, layer)
    except OSError as exc:  # truncated or corrupt HDF5 that still has its signature
        raise H5adError("file", f"cannot be read as HDF5: {exc}") from None
    if matrix.shape != (len(cells), len(genes)):
        raise H5adError("layer", f"layer {layer!r} is {matrix.shape[0]} × {matrix.shape[1]}, not cells × genes")
    key = _cell_type_key(obs, cell_type_key)
    keys = _metadata_keys(obs, metadata_keys)
    return H5adData(
        matrix=matrix,
        gene_names=genes,
        cell_ids=cells,
        metadata=_records(obs, keys),
        cell_type_key=key,
        cell_types=[None] * len(cells) if key is None else [_text(v) for v in obs[key].tolist()],
        layer=layer,
    )


def _is_anndata(f: h5py.File) -> bool:
    # anndata ≥ 0.8 marks the root; older files are recognised by their obs and var groups.
    return f.attrs.get("encoding-type") == "anndata" or ("obs" in f and "var" in f)


def _layer_node(f: h5py.File, layer: str):
    if layer == "X":
        if "X" not in f:
            raise H5adError("layer", "this file has no X (AnnData allows X to be empty); choose raw or a layer")
        return f["X"], "var"
    if layer == "raw":
        if "raw" not in f or "X" not in f["raw"]:
            raise H5adError("layer", "this file has no raw.X")
        return f["raw/X"], "raw/var"
    layers = sorted(f["layers"].keys()) if "layers" in f else []
    if layer not in layers:
        known = ", ".join(["X", "raw", *layers])
        raise H5adError("layer", f"unknown layer {layer!r}; this file has: {known}")
    return f["layers"][layer], "var"


def _frame(f: h5py.File, where: str) -> pd.DataFrame:
    if where not in f:
        raise H5adError("file", f"is not AnnData: it has no {where}")
    try:
        frame = read_elem(f[where])
    except (KeyError, ValueError, TypeError) as exc:  # anndata's errors for an element it cannot decode
        raise H5adError("file", f"its {where} cannot be read as an AnnData data frame: {exc}") from None
    if not isinstance(frame, pd.DataFrame):
        raise H5adError("file", f"its {where} is not a data frame")
    return frame


def _first_duplicate(names: list[str]) -> str | None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def _matrix(node, layer: str):
    if isinstance(node, h5py.Dataset):
        return _dense(node, layer)
    kind = node.attrs.get("encoding-type")
    if kind not in ("csr_matrix", "csc_matrix"):
        raise H5adError("layer", f"layer {layer!r} is stored as {kind!r}, not a dense or sparse matrix")
    shape = tuple(int(n) for n in node.attrs["shape"])
    nnz = node["data"].shape[0]
    index_dtype = np.int32 if max(nnz, *shape) < 2**31 else np.int64
    data = np.empty(nnz, dtype=np.float32)
    indices = np.empty(nnz, dtype=index_dtype)
    for start in range(0, nnz, NNZ_CHUNK):
        chunk = node["data"][start : start + NNZ_CHUNK]
        _check_numbers(chunk, layer)
        data[start : start + chunk.size] = chunk
        indices[start : start + chunk.size] = node["indices"][start : start + NNZ_CHUNK]
    indptr = node["indptr"][...].astype(index_dtype)
    if kind == "csr_matrix":
        return sp.csr_matrix((data, indices, indptr), shape=shape)
    return sp.csc_matrix((data, indices, indptr), shape=shape).tocsr()


def _dense(node: h5py.Dataset, layer: str):
    if node.ndim != 2:
        raise H5adError("layer", f"layer {layer!r} is not a two-dimensional matrix")
    n_cells, n_genes = node.shape
    if n_cells * n_genes <= DENSE_LIMIT:
        values = node[...]
        _check_numbers(values, layer)
        return np.asarray(values, dtype=np.float64)
    rows = max(1, ROW_CHUNK_VALUES // max(1, n_genes))
    blocks = []
    for start in range(0, n_cells, rows):
        values = node[start : start + rows]
        _check_numbers(values, layer)
        blocks.append(sp.csr_matrix(values.astype(np.float32)))
    return sp.vstack(blocks, format="csr")


def _check_numbers(values: np.ndarray, layer: str) -> None:
    if values.dtype.kind not in "biuf":
        raise H5adError("layer", f"layer {layer!r} holds {values.dtype} values, not numbers")
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise H5adError("file", f"layer {layer!r} has NaN or infinite values; every value must be finite")
    if values.dtype.kind == "f" and values.size and np.abs(values).max() > np.finfo(np.float32).max:
        raise H5adError("file", f"layer {layer!r} has values too large for float32")


def _scalar_column(column: pd.Series) -> bool:
    if isinstance(column.dtype, pd.CategoricalDtype) or column.dtype.kind in "biufUS":
        return True
    if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
        return all(v is None or isinstance(v, (str, bool, int, float)) for v in column.tolist())
    return False


def _cell_type_key(obs: pd.DataFrame, asked: str | None) -> str | None:
    if asked is not None:
        if asked not in obs.columns:
            raise H5adError("cell_type_key", f"obs has no column {asked!r}; it has: {', '.join(map(str, obs.columns))}")
        if not _scalar_column(obs[asked]):
            raise H5adError("cell_type_key", f"obs column {asked!r} does not hold one scalar value per cell")
        return asked
    return next((k for k in CELL_TYPE_KEYS if k in obs.columns and _scalar_column(obs[k])), None)


def _metadata_keys(obs: pd.DataFrame, asked: list[str] | None) -> list[str]:
    if asked is None:
        return [str(c) for c in obs.columns if _scalar_column(obs[c])]
    for key in asked:
        if key not in obs.columns:
            raise H5adError("metadata_keys", f"obs has no column {key!r}; it has: {', '.join(map(str, obs.columns))}")
        if not _scalar_column(obs[key]):
            raise H5adError("metadata_keys", f"obs column {key!r} does not hold one scalar value per cell")
    return list(dict.fromkeys(asked))


def _records(obs: pd.DataFrame, keys: list[str]) -> list[dict[str, Any]]:
    columns = {key: [_json_safe(v) for v in obs[key].tolist()] for key in keys}
    return [{key: columns[key][i] for key in keys} for i in range(len(obs.index))]


def _json_safe(value: Any) -> Any:
    """Categories and bytes → str, NaN/Infinity/missing → None, numpy scalars → Python scalars."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (bool, int, str)):
        return value
    return str(value)


def _text(value: Any) -> str | None:
    value = _json_safe(value)
    return None if value is None else str(value)
