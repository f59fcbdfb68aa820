"""genomics.h5ad.read_h5ad on real .h5ad files written with anndata in tmp_path: layers, obs keys, bad files."""

from __future__ import annotations

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from genomics import h5ad as h5ad_module
from genomics.h5ad import H5adError, read_h5ad


def counts(n_cells: int = 12, n_genes: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.poisson(1.0, (n_cells, n_genes)) * (rng.random((n_cells, n_genes)) < 0.5)).astype(np.float32)


def obs(n_cells: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "louvain": pd.Categorical([f"type{i % 3}" for i in range(n_cells)]),
            "n_counts": np.arange(n_cells, dtype=np.int64),
            "score": [np.nan if i == 1 else i / 2 for i in range(n_cells)],
            "ok": [i % 2 == 0 for i in range(n_cells)],
        },
        index=[f"AAAC-{i}" for i in range(n_cells)],
    )


def write(tmp_path, x, name="data.h5ad", **kwargs):
    n_cells, n_genes = x.shape
    adata = ad.AnnData(
        x,
        obs=kwargs.pop("obs", obs(n_cells)),
        var=pd.DataFrame(index=kwargs.pop("genes", None) or [f"g{j}" for j in range(n_genes)]),
    )
    for key, value in kwargs.pop("layers", {}).items():
        adata.layers[key] = value
    if kwargs.pop("raw", False):
        adata.raw = adata
    path = tmp_path / name
    adata.write_h5ad(path)
    return path


@pytest.mark.parametrize("make", [sp.csr_matrix, sp.csc_matrix, np.asarray], ids=["csr", "csc", "dense"])
def test_reads_x_as_stored_whatever_its_format(tmp_path, make):
    x = counts()
    data = read_h5ad(write(tmp_path, make(x)))
    dense = data.matrix.toarray() if sp.issparse(data.matrix) else data.matrix
    np.testing.assert_array_equal(dense, x)
    assert data.gene_names == [f"g{j}" for j in range(8)]
    assert data.cell_ids[:2] == ["AAAC-0", "AAAC-1"] and data.layer == "X"


def test_large_dense_x_becomes_csr_by_chunks(tmp_path, monkeypatch):
    x = counts(40, 10)
    monkeypatch.setattr(h5ad_module, "DENSE_LIMIT", 100)  # 400 values: over the limit
    monkeypatch.setattr(h5ad_module, "ROW_CHUNK_VALUES", 70)  # 7 rows a chunk: several chunks
    data = read_h5ad(write(tmp_path, x))
    assert sp.isspmatrix_csr(data.matrix) and data.matrix.dtype == np.float32
    np.testing.assert_array_equal(data.matrix.toarray(), x)


def test_sparse_data_is_read_in_chunks(tmp_path, monkeypatch):
    x = counts(30, 20)
    monkeypatch.setattr(h5ad_module, "NNZ_CHUNK", 7)
    data = read_h5ad(write(tmp_path, sp.csr_matrix(x)))
    np.testing.assert_array_equal(data.matrix.toarray(), x)


def test_raw_and_layers(tmp_path):
    x = counts()
    log = np.log1p(x)
    path = write(tmp_path, sp.csr_matrix(log), layers={"counts": sp.csr_matrix(x)}, raw=True)
    np.testing.assert_allclose(read_h5ad(path, layer="counts").matrix.toarray(), x)
    raw = read_h5ad(path, layer="raw")
    np.testing.assert_allclose(raw.matrix.toarray(), log)
    assert raw.gene_names == [f"g{j}" for j in range(8)] and raw.layer == "raw"


def test_raw_keeps_its_own_gene_names(tmp_path):
    x = counts(10, 6)
    adata = ad.AnnData(sp.csr_matrix(x), obs=obs(10), var=pd.DataFrame(index=[f"g{j}" for j in range(6)]))
    adata.raw = adata
    adata = adata[:, :4].copy()  # X keeps 4 genes, raw keeps all 6
    path = tmp_path / "subset.h5ad"
    adata.write_h5ad(path)
    assert read_h5ad(path).gene_names == ["g0", "g1", "g2", "g3"]
    assert read_h5ad(path, layer="raw").gene_names == [f"g{j}" for j in range(6)]


def test_metadata_is_every_scalar_obs_column_json_safe(tmp_path):
    data = read_h5ad(write(tmp_path, counts()))
    assert data.metadata[1] == {"louvain": "type1", "n_counts": 1, "score": None, "ok": False}
    assert type(data.metadata[2]["n_counts"]) is int and type(data.metadata[2]["score"]) is float
    assert data.cell_type_key == "louvain"  # the first of the documented keys present
    assert data.cell_types[:4] == ["type0", "type1", "type2", "type0"]
    cell = data.cells()[1]
    assert (cell["barcode"], cell["cell_type"], cell["cell_index"]) == ("AAAC-1", "type1", 1)


def test_cell_type_key_follows_the_documented_order(tmp_path):
    frame = obs(12).assign(cell_type=[f"ct{i % 2}" for i in range(12)], leiden=["x"] * 12)
    data = read_h5ad(write(tmp_path, counts(), obs=frame))
    assert data.cell_type_key == "cell_type" and data.cell_types[1] == "ct1"


def test_no_known_cell_type_column_means_no_cell_type(tmp_path):
    data = read_h5ad(write(tmp_path, counts(), obs=obs(12).drop(columns="louvain")))
    assert data.cell_type_key is None and set(data.cell_types) == {None}


def test_chosen_keys(tmp_path):
    path = write(tmp_path, counts())
    data = read_h5ad(path, cell_type_key="ok", metadata_keys=["score", "score"])
    assert data.cell_type_key == "ok" and data.cell_types[:2] == ["True", "False"]
    assert data.metadata[0] == {"score": 0.0}
    assert read_h5ad(path, metadata_keys=[]).metadata[0] == {}


def test_non_scalar_obs_columns_are_left_out(tmp_path):
    frame = obs(12)
    frame["tags"] = [["a", "b"]] * 12  # anndata cannot write this; simulate a frame with it in memory
    data = read_h5ad(write(tmp_path, counts(), obs=obs(12)))
    assert "tags" not in data.metadata[0]
    assert h5ad_module._scalar_column(frame["tags"]) is False


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"layer": "spliced"}, "layer", "unknown layer 'spliced'"),
        ({"layer": "raw"}, "layer", "no raw.X"),
        ({"cell_type_key": "cell_type"}, "cell_type_key", "no column 'cell_type'"),
        ({"metadata_keys": ["batch"]}, "metadata_keys", "no column 'batch'"),
    ],
)
def test_unknown_layer_or_keys_name_their_field(tmp_path, kwargs, field, words):
    with pytest.raises(H5adError) as caught:
        read_h5ad(write(tmp_path, counts()), **kwargs)
    assert caught.value.field == field and words in caught.value.message


def test_not_hdf5(tmp_path):
    path = tmp_path / "cells.h5ad"
    path.write_text("barcode,gene\nA,1\n")
    with pytest.raises(H5adError) as caught:
        read_h5ad(path)
    assert caught.value.field == "file" and "not an HDF5 file" in caught.value.message


def test_hdf5_but_not_anndata(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["matrix"] = np.ones((3, 3))
    with pytest.raises(H5adError) as caught:
        read_h5ad(path)
    assert caught.value.field == "file" and "not AnnData" in caught.value.message


def test_truncated_hdf5(tmp_path):
    path = write(tmp_path, counts(200, 50))
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(H5adError) as caught:
        read_h5ad(path)
    assert caught.value.field == "file"


@pytest.mark.parametrize("shape", [(0, 5), (5, 0)])
def test_zero_cells_or_genes(tmp_path, shape):
    x = np.zeros(shape, dtype=np.float32)
    with pytest.raises(H5adError) as caught:
        read_h5ad(write(tmp_path, sp.csr_matrix(x), obs=obs(shape[0])))
    assert caught.value.field == "file" and "at least 1" in caught.value.message


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("make", [sp.csr_matrix, np.asarray], ids=["sparse", "dense"])
def test_nan_or_infinity(tmp_path, bad, make):
    x = counts()
    x[3, 2] = bad
    with pytest.raises(H5adError) as caught:
        read_h5ad(write(tmp_path, make(x)))
    assert caught.value.field == "file" and "NaN or infinite" in caught.value.message


def test_duplicate_gene_names(tmp_path):
    genes = ["CD3E", "MS4A1", "CD3E", "NKG7", "g4", "g5", "g6", "g7"]
    with pytest.warns(UserWarning, match="not unique"):  # anndata itself warns when writing it
        path = write(tmp_path, counts(), genes=genes)
    with pytest.raises(H5adError) as caught:
        read_h5ad(path)
    assert caught.value.field == "file" and "'CD3E'" in caught.value.message
