"""Expression input checks (gene names, matrix, params): pure, no database, no HTTP."""

from __future__ import annotations

import numpy as np
import pytest

from api.problems import InvalidInput
from api.schemas import genomics as expression_input
from api.schemas.genomics import MAX_GENES
from genomics.pca import CompressionParams


def parse_expression(genes, matrix):
    """The compress request's checks of gene names and matrix, as one call."""
    request = expression_input.parse_compress(
        {"gene_names": genes, "expression_matrix": matrix, "compression_target": 1}
    )
    return request.gene_names, request.matrix


def parse_params(raw):
    return expression_input.parse_compress(
        {"gene_names": ["a", "b"], "expression_matrix": [[1, 2], [3, 4]], "compression_target": 1, "params": raw}
    ).params


GENES = ["a", "b", "c"]
NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    "genes, matrix, pointer",
    [
        (GENES, [[1, 2, 3], [1, 2]], "/expression_matrix/1"),
        (GENES, [[1, 2, 3], [1, 2, 3, 4], [1, 2]], "/expression_matrix/1"),
        (GENES, [[1, 2], [3, 4]], "/expression_matrix/0"),
        (GENES, [[1, 2, 3], [1, NAN, 3]], "/expression_matrix/1/1"),
        (GENES, [[1, 2, 3], [1, 2, INF]], "/expression_matrix/1/2"),
        (GENES, [[1, 2, 3], [1, 2, -INF]], "/expression_matrix/1/2"),
        (GENES, [[1, True, 3], [1, 2, 3]], "/expression_matrix/0/1"),
        (GENES, [[1, 2, 3], [False, 2, 3]], "/expression_matrix/1/0"),
        (GENES, [[1, 2, "3"], [1, 2, 3]], "/expression_matrix/0/2"),
        (GENES, [[1, 2, 3], [None, 2, 3]], "/expression_matrix/1/0"),
        (GENES, [[1, 2, 3], [1, [2], 3]], "/expression_matrix/1/1"),
        (GENES, [[1, 2, 3], [1, -0.5, 3]], "/expression_matrix/1/1"),
        (GENES, [[1, 2, 10**400], [1, 2, 3]], "/expression_matrix/0/2"),
        (GENES, [[1, -1, 3], [True, 2, 3]], "/expression_matrix/0/1"),  # first bad element wins across kinds
        (GENES, [], "/expression_matrix"),
        (GENES, None, "/expression_matrix"),
        (GENES, [[]], "/expression_matrix/0"),
        (GENES, [[1, 2, 3], "123"], "/expression_matrix/1"),
        ([], [[1]], "/gene_names"),
        ("abc", [[1]], "/gene_names"),
        (["a", "b", "a"], [[1, 2, 3]], "/gene_names/2"),
        (["a", ""], [[1, 2]], "/gene_names/1"),
        (["a", 5], [[1, 2]], "/gene_names/1"),
        (["x" * 201], [[1]], "/gene_names/0"),
    ],
    ids=[
        "ragged",
        "ragged-long-then-short",
        "wrong-length",
        "nan",
        "inf",
        "minus-inf",
        "bool-true",
        "bool-false",
        "string",
        "none",
        "nested-list",
        "negative",
        "huge-int",
        "first-bad-wins",
        "empty-matrix",
        "null-matrix",
        "empty-row",
        "row-not-list",
        "empty-genes",
        "genes-not-list",
        "duplicate-genes",
        "empty-gene-name",
        "gene-not-string",
        "gene-name-too-long",
    ],
)
def test_bad_expression_input_names_the_field(genes, matrix, pointer):
    with pytest.raises(InvalidInput) as err:
        parse_expression(genes, matrix)
    assert err.value.pointer == pointer
    assert err.value.status == 422


def test_messages_say_what_is_wrong():
    def detail(genes, matrix):
        with pytest.raises(InvalidInput) as err:
            parse_expression(genes, matrix)
        return err.value.detail

    assert detail(GENES, [[1, 2], [3, 4]]) == "row 0 has 2 values but gene_names has 3"
    assert "expected 3" in detail(GENES, [[1, 2, 3], [1, 2]]) and "has 2" in detail(GENES, [[1, 2, 3], [1, 2]])
    assert "'a'" in detail(["a", "b", "a"], [[1, 2, 3]])
    assert "boolean" in detail(GENES, [[1, True, 3]])
    assert "negative" in detail(GENES, [[1, -2, 3]])


@pytest.mark.parametrize(
    "limit, value, genes, rows, pointer",
    [
        ("MAX_VALUES", 5, 3, 2, "/expression_matrix"),
        ("MAX_CELLS", 1, 3, 2, "/expression_matrix"),
    ],
)
def test_size_guard(monkeypatch, limit, value, genes, rows, pointer):
    monkeypatch.setattr(expression_input, limit, value)
    with pytest.raises(InvalidInput) as err:
        parse_expression([f"g{i}" for i in range(genes)], [[1] * genes] * rows)
    assert err.value.pointer == pointer
    assert "at most" in err.value.detail


def test_valid_input_becomes_float64():
    genes, values = parse_expression(["a", "b"], [[0, 1.5], [2, 0.0]])
    assert genes == ["a", "b"]
    assert values.dtype == np.float64 and values.tolist() == [[0.0, 1.5], [2.0, 0.0]]


@pytest.mark.parametrize(
    "raw, expected",
    [
        (None, CompressionParams("auto_evr", 0.9, 256)),
        ({}, CompressionParams("auto_evr", 0.9, 256)),
        ({"mode": "fixed_k", "max_k": 10}, CompressionParams("fixed_k", 0.9, 10)),
        ({"evr_target": 1}, CompressionParams("auto_evr", 1.0, 256)),
    ],
)
def test_params_defaults_and_values(raw, expected):
    assert parse_params(raw) == expected


@pytest.mark.parametrize(
    "raw, pointer",
    [
        ({"speed": 1}, "/params/speed"),
        ([], "/params"),
        ({"mode": "pca"}, "/params/mode"),
        ({"evr_target": 0}, "/params/evr_target"),
        ({"evr_target": 1.5}, "/params/evr_target"),
        ({"evr_target": "0.5"}, "/params/evr_target"),
        ({"max_k": 0}, "/params/max_k"),
        ({"max_k": 2001}, "/params/max_k"),
        ({"max_k": True}, "/params/max_k"),
        ({"max_k": 2.5}, "/params/max_k"),  # 2.0 is 2 in JSON
    ],
)
def test_bad_params_name_the_field(raw, pointer):
    with pytest.raises(InvalidInput) as err:
        parse_params(raw)
    assert err.value.pointer == pointer


def test_more_genes_than_allowed_are_refused_at_the_list():
    genes = [f"g{i}" for i in range(MAX_GENES + 1)]
    with pytest.raises(InvalidInput) as err:
        parse_expression(genes, [[1] * len(genes)])
    assert err.value.pointer == "/gene_names" and "at most" in err.value.detail
