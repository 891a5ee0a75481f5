"""Retrieval-time aggregation of a multi-interest user's candidates.

Cen et al., "Controllable Multi-Interest Framework for Recommendation", KDD
2020, Sec. 3.5. Each of a user's K interests retrieves its own top-N items;
``merge_interests`` unites them, scoring each item by its best interest's
inner product f(u, i) = max_k e_i^T v_u^(k). ``controllable_aggregation``
then picks n of them greedily, maximising
Q(u, S) = Σ_{i∈S} f(u, i) + λ Σ_{i,j∈S} g(i, j), g(i, j) = [cat(i) ≠ cat(j)]:
each step adds the candidate with the largest
f(u, i) + λ·#{j ∈ S : cat(j) ≠ cat(i)} (the paper's greedy inference).
λ = 0 is ranking by f; larger λ trades accuracy for category diversity.
All users are handled at once; only the n steps are a loop.
"""

from __future__ import annotations

import numpy as np


def merge_interests(items: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-interest results ``(U, K, N)`` (id -1 = none) → ``(U, K*N)`` ids and scores, each id once.

    An item found by several interests keeps its best score; the rest of the
    row is -1 (score -inf). Rows are sorted by score, best first.
    """
    if items.shape != scores.shape or items.ndim != 3:
        raise ValueError(f"items {items.shape} and scores {scores.shape} must both be (U, K, N)")
    users = items.shape[0]
    flat_items = items.reshape(users, -1)  # (U, K*N)
    flat_scores = np.where(flat_items >= 0, scores.reshape(users, -1), -np.inf)  # (U, K*N)
    order = np.lexsort((-flat_scores, flat_items), axis=-1)  # (U, K*N): by id, best score first
    by_id = np.take_along_axis(flat_items, order, axis=1)  # (U, K*N)
    by_id_scores = np.take_along_axis(flat_scores, order, axis=1)  # (U, K*N)
    repeat = np.zeros_like(by_id, dtype=bool)  # (U, K*N)
    repeat[:, 1:] = by_id[:, 1:] == by_id[:, :-1]
    keep = ~repeat & (by_id >= 0)  # (U, K*N)
    merged_scores = np.where(keep, by_id_scores, -np.inf)  # (U, K*N)
    best = np.argsort(-merged_scores, axis=1, kind="stable")  # (U, K*N)
    merged_scores = np.take_along_axis(merged_scores, best, axis=1)  # (U, K*N)
    merged = np.where(np.isfinite(merged_scores), np.take_along_axis(by_id, best, axis=1), -1)  # (U, K*N)
    return merged, merged_scores


def controllable_aggregation(
    items: np.ndarray, scores: np.ndarray, categories: np.ndarray, n: int, lam: float
) -> np.ndarray:
    """Greedy diverse top-``n`` of each user's candidates ``items (U, C)`` (-1 = none) → ``(U, n)``, -1 padded.

    ``scores (U, C)`` is f(u, i); ``categories`` is indexed by item id; ties
    go to the earlier candidate, so ``lam = 0`` returns the candidates ranked
    by score. An id that appears twice in a row is picked at most once.
    """
    if items.ndim != 2 or items.shape != scores.shape:
        raise ValueError(f"items {items.shape} and scores {scores.shape} must both be (U, C)")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not lam >= 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    valid = items >= 0  # (U, C)
    if valid.any() and items[valid].max() >= len(categories):
        raise ValueError(f"item id {items[valid].max()} has no entry in categories (length {len(categories)})")
    users, width = items.shape
    rows = np.arange(users)
    cats = np.where(valid, categories[np.where(valid, items, 0)], -1)  # (U, C)
    f = np.where(valid, scores.astype(np.float64), -np.inf)  # (U, C); -inf = not available
    same = np.zeros((users, width), dtype=np.int64)  # (U, C): picked items sharing each candidate's category
    size = np.zeros(users, dtype=np.int64)  # (U,): |S|
    out = np.full((users, n), -1, dtype=np.int64)
    for step in range(n):
        gain = f + lam * (size[:, None] - same)  # (U, C): f(u, i) + lam * #{j in S: cat(j) != cat(i)}
        pick = gain.argmax(axis=1)  # (U,)
        found = np.isfinite(f[rows, pick])  # (U,): users with a candidate left
        chosen = np.where(found, items[rows, pick], -1)  # (U,)
        out[:, step] = chosen
        f[(items == chosen[:, None]) & found[:, None]] = -np.inf  # (U, C): never again
        same += (cats == cats[rows, pick][:, None]) & found[:, None]  # (U, C)
        size += found
    return out
