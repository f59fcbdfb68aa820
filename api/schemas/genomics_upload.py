"""The multipart/form-data build: a `file` (.h5ad) plus the build options as text form fields.

Form values are text; `parse_upload_fields` turns the numbers, `params` (JSON text) and
`metadata_keys` (a JSON list, or names separated by commas) into typed values, then the model
checks them; every refusal is a 422 naming its form field (pointer /<field>).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal

from pydantic import Field, WithJsonSchema

from api.body import parse_json, validated
from api.problems import InvalidInput
from api.schemas.common import MAX_DIMENSIONS, Body, ProjectId, Seed, Whole
from api.schemas.genomics import MAX_CLUSTERS, NORMALIZE_DESCRIPTION, Normalize, Params
from genomics.pca import CompressionParams

MAX_OBS_KEY = 200
ObsKey = Annotated[str, Field(min_length=1, max_length=MAX_OBS_KEY)]
WHOLE_FIELDS = ("target_dimensions", "n_clusters", "seed")
_WHOLE = re.compile(r"-?[0-9]{1,19}")


class BuildUploadFields(Body):
    """The form fields of an upload build (everything but `file`), typed."""

    project_id: ProjectId
    mode: Literal["cell", "cluster"] = Field(description="cell: a vector per cell; cluster: a centroid per cluster")
    target_dimensions: Whole = Field(ge=1, le=MAX_DIMENSIONS, description="Dimensions of the stored vectors")
    n_clusters: Whole | None = Field(None, ge=1, le=MAX_CLUSTERS, description="Cluster mode only; default √(cells/2)")
    seed: Seed = 0
    params: Params | None = Field(
        None, description="JSON text, as the JSON body's params; default: fixed_k, keeping exactly target_dimensions"
    )
    layer: ObsKey = Field("X", description="X (the default), raw (for .raw.X) or a key of layers")
    cell_type_key: ObsKey | None = Field(
        None,
        description=(
            "The obs column holding cell types; default: the first of cell_type, celltype, cell_types, "
            "cell_type_original, cell_ontology_class, louvain, leiden, bulk_labels, seurat_clusters, cluster, "
            "clusters that exists (none: no cell type)"
        ),
    )
    metadata_keys: list[ObsKey] | None = Field(
        None,
        description=(
            'The obs columns kept as metadata: a JSON list (["sample","batch"]) or names separated by commas '
            "(sample,batch); default: every scalar column. The barcode (obs_names) is always the vector id"
        ),
    )
    normalize: Normalize = Field("auto", description=NORMALIZE_DESCRIPTION + "; default auto")

    def compression_params(self) -> CompressionParams:
        if self.params is not None:
            return self.params.as_params()
        return CompressionParams(mode="fixed_k", max_k=MAX_DIMENSIONS)


class BuildUploadForm(BuildUploadFields):
    """The OpenAPI form: the fields plus the file itself."""

    file: Annotated[
        bytes, WithJsonSchema({"type": "string", "format": "binary", "description": "An AnnData .h5ad file"})
    ]


def _whole(name: str, text: str) -> int:
    if not _WHOLE.fullmatch(text.strip()):
        raise InvalidInput(f"/{name}", f"must be a whole number, not {text[:40]!r}")
    return int(text)


def _metadata_keys(text: str) -> list:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except ValueError:
            raise InvalidInput("/metadata_keys", "starts with '[' but is not a JSON list") from None
        if not isinstance(value, list):
            raise InvalidInput("/metadata_keys", "must be a JSON list of obs column names")
        return value
    return [name.strip() for name in stripped.split(",") if name.strip()]


def parse_upload_fields(fields: dict[str, str]) -> BuildUploadFields:
    """Typed, checked options from the form's text fields; InvalidInput naming the field."""
    values: dict = {}
    for name, text in fields.items():
        if name in WHOLE_FIELDS:
            values[name] = _whole(name, text)
        elif name == "params":
            try:
                values[name] = parse_json(text.encode("utf-8"))
            except InvalidInput as exc:
                raise InvalidInput("/params", f"must be a JSON object: {exc.detail}") from None
        elif name == "metadata_keys":
            values[name] = _metadata_keys(text)
        else:
            values[name] = text
    options = validated(BuildUploadFields, values)
    if options.n_clusters is not None and options.mode != "cluster":
        raise InvalidInput("/n_clusters", "only applies when mode is 'cluster'")
    return options
