"""Data for bench/vectors.py: the seeded vectors, exact cosine top-k (the ground truth for recall), figure helpers."""

from __future__ import annotations

import numpy as np


def make_data(kind: str, n: int, dims: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dims))
    if kind == "spectrum":
        x *= np.arange(1, dims + 1) ** -0.75
    return np.round(x, 6)


def exact_top(data: np.ndarray, query: np.ndarray, k: int, subset: np.ndarray | None = None) -> set[int]:
    """Cosine top-k by NumPy (the ground truth for recall)."""
    pool = np.arange(len(data)) if subset is None else subset
    scores = data[pool] @ (query / np.linalg.norm(query))
    best = np.argpartition(-scores, k)[:k]
    return {int(i) for i in pool[best]}


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def ids_of(hits: list[dict]) -> set[int]:
    return {int(hit["id"][1:]) for hit in hits}
