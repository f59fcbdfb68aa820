"""Fitting a generated case to its resource (tests/test_api_contract.py's pinned run): rules the
OpenAPI document cannot state, so a generated body seldom keeps them and stops at a 422."""

from __future__ import annotations

from tests.fuzz_resources import BUILD, QAC_EMBEDDING

# Where the pinned operations take vectors, and the length their resource wants.
VECTOR_FIELDS = {
    "POST /api/v1/collections/{name}/vectors": ("items", "vector", 3),
    "POST /api/v1/collections/{name}/search": (None, "vector", 3),
    "POST /api/v1/genomics/vectors/search": (None, "query_vector", BUILD["target_dimensions"]),
}


def fit_vectors(case) -> None:
    """Give a positive case's vectors the length its collection or project wants (cut, or padded with
    non-zero numbers), and a project search exactly one of query_vector and gene_names. The document
    cannot say either rule, so a generated body seldom keeps them and the request stops at a 422
    before the search or the write. The case stays schema-valid; `fit` (drawn by Hypothesis, so it
    shrinks and replays) does this for about half the positive cases, the rest go as generated."""
    if case.operation.label == "POST /api/v1/quantum/qac/apply":
        _fit_qac_embedding(case)
        return
    if case.operation.label not in VECTOR_FIELDS or not isinstance(case.body, dict):
        return
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    items, field, dimensions = VECTOR_FIELDS[case.operation.label]

    def fitted(holder):
        vector = holder.get(field) if isinstance(holder, dict) else None
        if not isinstance(vector, list):
            return holder
        return {**holder, field: (vector + [1.0, 0.5, 0.25])[:dimensions]}

    body = case.body
    if case.operation.label == "POST /api/v1/genomics/vectors/search":
        # It takes exactly one of query_vector and gene_names, which the document cannot say either.
        if body.get("query_vector") is not None and body.get("gene_names") is not None:
            body = {key: value for key, value in body.items() if key != "gene_names"}
        elif body.get("query_vector") is None and body.get("gene_names") is None:
            body = {**body, "query_vector": []}
    if items is None:
        body = fitted(body)
    elif isinstance(body.get(items), list):
        body = {**body, items: [fitted(item) for item in body[items]]}
    case.body = body


def _fit_qac_embedding(case) -> None:
    """Give a positive apply the fitted model's number of cells (each row cut or padded to the first
    row's length), so that it reaches the smoothing rather than the row-count 422."""
    body = case.body
    if not isinstance(body, dict) or case.meta is None or not case.meta.generation.mode.is_positive:
        return
    rows = body.get("embedding")
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], list) or not rows[0]:
        return
    width = len(rows[0])
    cells = [(list(rows[i % len(rows)]) + [0.5] * width)[:width] for i in range(len(QAC_EMBEDDING))]
    case.body = {**body, "embedding": cells}
