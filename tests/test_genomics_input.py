"""Expression input checks (gene names, matrix, params): pure, no database, no HTTP."""
from __future__ import annotations

import numpy as np
import pytest

from core import expression_input
from core.expression_input import parse_expression, parse_params
from core.validation import InvalidInput
from genomics.pca import CompressionParams


GENES = ["a", "b", "c"]
NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("genes, matrix, pointer", [
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
], ids=["ragged", "ragged-long-then-short", "wrong-length", "nan", "inf", "minus-inf", "bool-true", "bool-false",
        "string", "none", "nested-list", "negative", "huge-int", "first-bad-wins", "empty-matrix", "null-matrix",
        "empty-row", "row-not-list", "empty-genes", "genes-not-list", "duplicate-genes", "empty-gene-name",
        "gene-not-string", "gene-name-too-long"])
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


def test_pointer_prefix_is_prepended():
    with pytest.raises(InvalidInput) as err:
        parse_expression(GENES, [[1, 2, 3], [1, NAN, 3]], pointer_prefix="/data")
    assert err.value.pointer == "/data/expression_matrix/1/1"


@pytest.mark.parametrize("limit, value, genes, rows, pointer", [
    ("MAX_VALUES", 5, 3, 2, "/expression_matrix"),
    ("MAX_CELLS", 1, 3, 2, "/expression_matrix"),
    ("MAX_GENES", 2, 3, 2, "/gene_names"),
])
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


@pytest.mark.parametrize("raw, expected", [
    (None, CompressionParams("auto_evr", 0.9, 256)),
    ({}, CompressionParams("auto_evr", 0.9, 256)),
    ({"mode": "fixed_k", "max_k": 10}, CompressionParams("fixed_k", 0.9, 10)),
    ({"evr_target": 1}, CompressionParams("auto_evr", 1.0, 256)),
])
def test_params_defaults_and_values(raw, expected):
    assert parse_params(raw) == expected


@pytest.mark.parametrize("raw, pointer", [
    ({"speed": 1}, "/params/speed"), ([], "/params"), ({"mode": "pca"}, "/params/mode"),
    ({"evr_target": 0}, "/params/evr_target"), ({"evr_target": 1.5}, "/params/evr_target"),
    ({"evr_target": "0.5"}, "/params/evr_target"), ({"max_k": 0}, "/params/max_k"),
    ({"max_k": 2001}, "/params/max_k"), ({"max_k": True}, "/params/max_k"), ({"max_k": 2.0}, "/params/max_k"),
])
def test_bad_params_name_the_field(raw, pointer):
    with pytest.raises(InvalidInput) as err:
        parse_params(raw)
    assert err.value.pointer == pointer


