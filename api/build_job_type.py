"""The `build` job: a genomics build from an uploaded .h5ad file.

Child side (`run`, in a spawned process): read the file and prepare the build with the same
code as the synchronous path (api.genomics_build.upload_build), then write what it stores to
the job's output directory. Parent side (`finish`, in the runner's transaction): load those
files and replace the project with them (db.genomics_projects.replace). The job's result is
what the synchronous JSON build answers, plus the layer, cell_type_key and normalisation used.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from pgvector import Vector

from api.genomics_build import upload_build
from api.problems import InvalidInput
from api.schemas.genomics_results import BuildResult
from api.schemas.genomics_upload import BuildUploadFields
from db import genomics_projects
from db.genomics_projects import Build
from db.jobs import ClaimedJob
from workers.job_types import JobFailed, JobOutput

NAME = "build"


def params_of(options: BuildUploadFields) -> dict[str, Any]:
    """The job's params: the checked form fields, as JSON (read back with BuildUploadFields)."""
    return options.model_dump(mode="json", exclude_none=True)


def run(input_path: Path | None, params: dict, output_dir: Path, progress) -> dict[str, Any]:
    """Child side: the build's rows to files in `output_dir`; returns the answer so far (the summary)."""
    if input_path is None:
        raise JobFailed("file: the job has no uploaded file")
    options = BuildUploadFields.model_validate(params)
    try:
        build, summary = upload_build(input_path, options, progress)
    except InvalidInput as exc:
        # The same words a synchronous build's 422 would say, naming the form field.
        raise JobFailed(f"{exc.pointer.lstrip('/') or 'file'}: {exc.detail}") from None
    vectors = np.stack([v.to_numpy() for v in build.vectors]) if build.vectors else np.zeros((0, build.dimensions))
    np.save(output_dir / "vectors.npy", vectors.astype(np.float32, copy=False))
    (output_dir / "ids.json").write_text(json.dumps(list(build.ids)), encoding="utf-8")
    (output_dir / "metadata.jsonl").write_text("\n".join(build.metadata_json), encoding="utf-8")
    (output_dir / "basis.json").write_text(build.basis_json, encoding="utf-8")
    described = {k: getattr(build, k) for k in ("project_id", "mode", "dimensions", "gene_count", "cell_count")}
    (output_dir / "build.json").write_text(json.dumps({**described, "stats": build.stats}), encoding="utf-8")
    return summary


def _load(directory: Path) -> Build:
    described = json.loads((directory / "build.json").read_text(encoding="utf-8"))
    ids = json.loads((directory / "ids.json").read_text(encoding="utf-8"))
    metadata = (directory / "metadata.jsonl").read_text(encoding="utf-8")
    vectors = np.load(directory / "vectors.npy")
    return Build(
        **described,
        basis_json=(directory / "basis.json").read_text(encoding="utf-8"),
        ids=ids,
        vectors=[Vector(row) for row in vectors],
        metadata_json=metadata.split("\n") if ids else [],
    )


async def finish(conn: asyncpg.Connection, job: ClaimedJob, output: JobOutput) -> dict[str, Any]:
    """Parent side: replace the project with the child's build, inside the runner's transaction."""
    build = await asyncio.to_thread(_load, output.directory)
    if build.project_id != job.project_id:
        raise JobFailed("the build's project does not match the job's")  # a bug, never a caller's doing
    started = time.perf_counter()
    replaced = await genomics_projects.replace(conn, job.institution_id, build)
    store_ms = round((time.perf_counter() - started) * 1000, 3)
    result = {**output.value, "vector_count": replaced.vector_count, "store_ms": store_ms}
    return BuildResult.model_validate(result).model_dump(mode="json")
