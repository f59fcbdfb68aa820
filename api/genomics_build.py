"""Builds from a JSON body or an uploaded .h5ad, both through genomics.build.prepare_build; no IO but the file read.

    json_build(body: bytes) -> (db.genomics_projects.Build, summary)
    upload_build(path, options: BuildUploadFields, progress=None) -> (Build, summary)

Both are synchronous and CPU-heavy (run them in a thread or a child process); what the input
cannot give raises api.problems.InvalidInput, with a JSON pointer for the JSON body and the form
field (/file, /layer, /cell_type_key, /metadata_keys, /target_dimensions, /normalize) for uploads.
`summary` is BuildResult's content but vector_count and store_ms, which the store adds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pgvector import Vector

from api.body import parse_json
from api.problems import InvalidInput
from api.schemas.genomics import cell_metadata, parse_build
from api.schemas.genomics_upload import BuildUploadFields
from db import genomics_projects
from db.genomics_projects import Build
from genomics.build import PreparedBuild, prepare_build
from genomics.h5ad import H5adError, read_h5ad
from genomics.pca import MatrixError


def build_record(project_id: str, prepared: PreparedBuild, **extra: Any) -> tuple[Build, dict[str, Any]]:
    """The rows a build stores, and its answer so far; `extra` joins the summary (layer, cell_type_key)."""
    summary = prepared.summary
    build = Build(
        project_id=project_id,
        mode=summary["mode"],
        dimensions=summary["dimensions"],
        gene_count=summary["gene_count"],
        cell_count=summary["cell_count"],
        basis_json=json.dumps(prepared.basis.to_json(), separators=(",", ":")),
        stats=summary["stats"],
        ids=prepared.stored.ids,
        vectors=[Vector(row) for row in prepared.stored.vectors],
        metadata_json=[json.dumps(m, ensure_ascii=False, separators=(",", ":")) for m in prepared.stored.metadata],
    )
    answer = {
        "project_id": project_id,
        "collection": genomics_projects.collection_name(project_id),
        **summary,
        **extra,
    }
    return build, answer


def json_build(body: bytes) -> tuple[Build, dict[str, Any]]:
    """POST /api/v1/genomics/vectors/build with a JSON body; the maths' errors point into the body."""
    request = parse_build(parse_json(body))
    try:
        prepared = prepare_build(
            request.matrix,
            request.gene_names,
            request.cells,
            mode=request.mode,
            target=request.target,
            n_clusters=request.n_clusters,
            seed=request.seed,
            params=request.params,
            normalize=request.normalize,
        )
    except MatrixError as exc:
        raise InvalidInput(f"/{exc.field}", str(exc)) from None
    return build_record(request.project_id, prepared)


def upload_build(
    path: str | Path, options: BuildUploadFields, progress: Callable[[float], None] | None = None
) -> tuple[Build, dict[str, Any]]:
    """A build from an uploaded .h5ad file (read, checked, prepared); `progress(0…1)` if given."""
    try:
        data = read_h5ad(
            path, layer=options.layer, cell_type_key=options.cell_type_key, metadata_keys=options.metadata_keys
        )
    except H5adError as exc:
        raise InvalidInput(f"/{exc.field}", exc.message) from None
    if progress is not None:
        progress(0.1)
    cells = upload_cells(data.cell_ids, data.cell_types, data.metadata)
    matrix, genes, key, layer = data.matrix, data.gene_names, data.cell_type_key, data.layer
    del data  # its metadata lives on, checked, in `cells`
    try:
        prepared = prepare_build(
            matrix,
            genes,
            cells,
            mode=options.mode,
            target=options.target_dimensions,
            n_clusters=options.n_clusters,
            seed=options.seed,
            params=options.compression_params(),
            normalize=options.normalize,
            progress=None if progress is None else (lambda f: progress(0.1 + 0.9 * f)),
        )
    except MatrixError as exc:
        field = "file" if exc.field == "expression_matrix" else exc.field
        raise InvalidInput(f"/{field}", str(exc)) from None
    return build_record(options.project_id, prepared, layer=layer, cell_type_key=key)


def upload_cells(ids: list[str], types: list[str | None], metadata: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The file's cells checked as the JSON body's cell_metadata is (barcodes are vector ids, metadata size)."""
    records = [{**meta, "barcode": b, "cell_type": t} for b, t, meta in zip(ids, types, metadata, strict=True)]
    try:
        return cell_metadata(records, len(records))
    except InvalidInput as exc:
        # /cell_metadata/<i>/barcode → say which cell of the file, and blame the file.
        where = exc.pointer.removeprefix("/cell_metadata/")
        raise InvalidInput("/file", f"obs row {where}: {exc.detail}") from None
