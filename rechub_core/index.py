"""faiss index: build, search, save, load, and recall against exact search.

Inner-product metric throughout (cosine when the vectors are normalised).
Positions in the index are row numbers of the vectors it was built from;
callers keep the row → id mapping.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import faiss
import numpy as np

IndexKind = Literal["flat", "hnsw", "ivf"]


def build(
    vectors: np.ndarray,
    kind: IndexKind,
    *,
    hnsw_m: int = 32,
    ef_construction: int = 200,
    ef_search: int = 128,
    ivf_nlist: int = 64,
    ivf_nprobe: int = 8,
) -> faiss.Index:
    """An inner-product index over ``vectors (N, D)``."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search
    elif kind == "ivf":
        nlist = max(1, min(ivf_nlist, n // 39))  # faiss wants ~39 training points per centroid
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = min(ivf_nprobe, nlist)
    else:
        raise ValueError(f"unknown index kind {kind!r}; choose flat, hnsw or ivf")
    index.add(vectors)
    return index


def search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` ``(scores, positions)``, each ``(Q, k)``; positions are -1 where fewer exist.

    For HNSW the search breadth is raised to at least ``k`` so ``k`` results come back.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    k = min(k, index.ntotal)
    hnsw = faiss.downcast_index(index)
    if isinstance(hnsw, faiss.IndexHNSW) and hnsw.hnsw.efSearch < k:
        hnsw.hnsw.efSearch = k
    return index.search(queries, k)


def recall_vs_exact(approx: faiss.Index, exact: faiss.Index, queries: np.ndarray, k: int) -> float:
    """Mean fraction of the exact top-``k`` that the approximate index also returns."""
    _, truth = search(exact, queries, k)
    _, found = search(approx, queries, k)
    hits = (found[:, :, None] == truth[:, None, :]).any(axis=1)  # (Q, k): each true neighbour found?
    return float(hits.mean())


def save(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def load(path: Path) -> faiss.Index:
    return faiss.read_index(str(path))


def search_interests(index: faiss.Index, queries: np.ndarray, k: int) -> np.ndarray:
    """Positions for users with one or several interest vectors, merged by score.

    ``queries`` is ``(U, D)`` or ``(U, K, D)``; each interest retrieves ``k``,
    the ``K*k`` results are ordered by score and an item found by several
    interests keeps only its best-scored place (later ones become -1).
    Returns ``(U, K*k)`` positions.
    """
    users = queries.shape[0]
    flat = queries.reshape(-1, queries.shape[-1])  # (U*K, D)
    scores, positions = search(index, flat, k)
    scores, positions = scores.reshape(users, -1), positions.reshape(users, -1)  # (U, K*k)
    order = np.argsort(-scores, axis=1, kind="stable")
    positions = np.take_along_axis(positions, order, axis=1)
    # duplicates: equal to the previous entry once sorted by position (stable keeps the best-scored first)
    by_pos = np.argsort(positions, axis=1, kind="stable")
    sorted_pos = np.take_along_axis(positions, by_pos, axis=1)
    dup_sorted = np.zeros_like(sorted_pos, dtype=bool)
    dup_sorted[:, 1:] = sorted_pos[:, 1:] == sorted_pos[:, :-1]
    dup = np.zeros_like(dup_sorted)
    np.put_along_axis(dup, by_pos, dup_sorted, axis=1)
    return np.where(dup, -1, positions)
