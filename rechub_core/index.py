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

from rechub_core.retrieval import merge_interests

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


def _restricted(index: faiss.Index, allowed: np.ndarray) -> faiss.SearchParameters:
    """Search parameters that keep the index's own breadth and return only the ``allowed`` positions."""
    selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexHNSW):
        return faiss.SearchParametersHNSW(sel=selector, efSearch=inner.hnsw.efSearch)
    if isinstance(inner, faiss.IndexIVF):
        return faiss.SearchParametersIVF(sel=selector, nprobe=inner.nprobe)
    return faiss.SearchParameters(sel=selector)


def search_interests(
    index: faiss.Index,
    queries: np.ndarray,
    k: int,
    *,
    interest_groups: np.ndarray | None = None,
    item_groups: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Merged ``(scores, positions)``, each ``(U, K*k)``, for users with one or several interest vectors.

    ``queries`` is ``(U, D)`` or ``(U, K, D)``; each interest retrieves ``k``,
    the ``K*k`` results are ordered by score and an item found by several
    interests appears once, with its best score (``merge_interests``); the
    row's tail is position -1, score -inf. With ``interest_groups (K,)`` and ``item_groups`` (position →
    group), interest ``j`` searches only the items of group
    ``interest_groups[j]`` (per-cluster retrieval, as Kuaishou's
    divide-and-conquer EBR serves).
    """
    users = queries.shape[0]
    queries = queries.reshape(users, -1, queries.shape[-1])  # (U, K, D)
    if interest_groups is None:
        scores, positions = search(index, queries.reshape(-1, queries.shape[-1]), k)  # (U*K, k)
    else:
        k = min(k, index.ntotal)
        scores = np.full((users, len(interest_groups), k), -np.inf, dtype=np.float32)
        positions = np.full((users, len(interest_groups), k), -1, dtype=np.int64)
        for j, group in enumerate(interest_groups):  # one search per interest slot, all users at once
            allowed = np.flatnonzero(item_groups == group)
            if len(allowed):
                q = np.ascontiguousarray(queries[:, j], dtype=np.float32)
                scores[:, j], positions[:, j] = index.search(q, k, params=_restricted(index, allowed))
    k = scores.shape[-1]
    positions, scores = merge_interests(positions.reshape(users, -1, k), scores.reshape(users, -1, k))
    return scores, positions
