"""What the genomics endpoints answer: compressed matrices, builds, marker queries, searches, projects."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from api.schemas.collections import Hit
from api.schemas.common import Answer, Metric


class CompressResult(Answer):
    compressed_matrix: list[list[float]] = Field(description="Cells × k principal-component scores")
    stats: dict[str, Any] = Field(description="How k was chosen: explained variance, singular values, rank, …")


class BuildResult(Answer):
    project_id: str = Field(description="The project built")
    collection: str = Field(description="Its collection, genomics.<project_id>")
    mode: Literal["cell", "cluster"] = Field(description="cell: a vector per cell; cluster: a centroid per cluster")
    cell_count: int = Field(description="Cells in the matrix")
    gene_count: int = Field(description="Genes in the matrix")
    clusters: int | None = Field(description="Clusters stored (cluster mode)")
    skipped_zero_vectors: int = Field(description="Vectors without a cosine direction, not stored")
    dimensions: int = Field(description="Dimensions of the stored vectors")
    requested_dimensions: int = Field(description="target_dimensions as asked")
    original_dimensions: int = Field(description="Genes before compression")
    explained_variance_total: float = Field(description="Share of the variance the kept components explain")
    rank_cap_reason: str = Field(description="The bound that decided k: evr_target, compression_target, max_k or rank")
    normalize: Literal["counts", "log", "none", "log1p"] = Field(
        description="The normalisation applied (what auto resolved to, for auto)"
    )
    layer: str | None = Field(None, description="Uploads: the layer read (X, raw or a key of layers)")
    cell_type_key: str | None = Field(None, description="Uploads: the obs column read as cell type, null if none")
    stats: dict[str, Any] = Field(description="How k was chosen: explained variance, singular values, rank, …")
    vector_count: int = Field(description="Vectors in the project's collection now")
    store_ms: float = Field(description="Time spent storing, in milliseconds")


class EncodeResult(Answer):
    project_id: str = Field(description="The project whose space the query is in")
    query_vector: list[float] = Field(description="The marker query, ready for vectors/search")
    dimensions: int = Field(description="Its length: the project's dimensions")
    unknown_genes: list[str] = Field(description="Marker genes the project does not have")


class ProjectSearchResult(Answer):
    hits: list[Hit] = Field(description="Nearest first, ties by id")
    project_id: str = Field(description="The project searched")
    mode: Literal["cell", "cluster"] = Field(description="What its vectors are: cells or cluster centroids")
    dimensions: int = Field(description="The project's dimensions")
    collection: str = Field(description="The project's collection")
    metric: Metric
    search_ms: float = Field(description="Time spent searching, in milliseconds")
    strategy: Literal["exact", "hnsw", "hnsw+exact"] = Field(description="How the search ran")
    unknown_genes: list[str] | None = Field(None, description="With gene_names: those the project does not have")


class Project(Answer):
    project_id: str = Field(description="The project's id")
    collection: str = Field(description="Its collection, genomics.<project_id>")
    mode: Literal["cell", "cluster"] = Field(description="cell: a vector per cell; cluster: a centroid per cluster")
    dimensions: int = Field(description="Dimensions of its vectors")
    gene_count: int = Field(description="Genes in its basis")
    cell_count: int = Field(description="Cells it was built from")
    vector_count: int = Field(description="Vectors stored")
    stats: dict[str, Any] = Field(description="The last build's statistics")
    created_at: datetime = Field(description="When it was first built (UTC)")
    updated_at: datetime = Field(description="When it was last built (UTC)")
