"""Exact retrieval scoring for evaluation: full ranking and the sampled protocol, vectorised in chunks.

A user is one vector ``(D,)`` or several interest vectors ``(K, D)``. Without
groups, a user's score for an item is its best interest's inner product (what
merging per-interest retrieval by score returns); with ``item_slots`` (item →
the interest slot that serves its group, -1 for none) it is that slot's inner
product, as per-cluster retrieval serves.
"""

from __future__ import annotations

import numpy as np
import torch


def interest_scores(users: torch.Tensor, items: torch.Tensor, item_slots: torch.Tensor | None = None) -> torch.Tensor:
    """``(U, N)`` scores of ``users (U, D)`` or ``(U, K, D)`` against ``items (N, D)``; -inf where no slot serves."""
    if users.dim() == 2:
        return users @ items.T  # (U, N)
    scores = torch.einsum("ukd,nd->ukn", users, items)  # (U, K, N)
    if item_slots is None:
        return scores.amax(dim=1)  # (U, N)
    picked = scores.gather(1, item_slots.clamp(min=0).expand(len(users), 1, -1)).squeeze(1)  # (U, N)
    return picked.masked_fill(item_slots < 0, float("-inf"))


def candidate_scores(
    users: torch.Tensor, candidates: torch.Tensor, slots: torch.Tensor | None = None
) -> torch.Tensor:
    """``(U, C)`` scores of each user against their own ``candidates (U, C, D)``; ``slots (U, C)`` as above."""
    if users.dim() == 2:
        return torch.einsum("ud,ucd->uc", users, candidates)
    scores = torch.einsum("ukd,ucd->ukc", users, candidates)  # (U, K, C)
    if slots is None:
        return scores.amax(dim=1)
    picked = scores.gather(1, slots.clamp(min=0).unsqueeze(1)).squeeze(1)  # (U, C)
    return picked.masked_fill(slots < 0, float("-inf"))


def _exclusion_mask(rows: np.ndarray, cols: np.ndarray, start: int, stop: int, n: int) -> torch.Tensor:
    """``(stop - start, n)`` boolean mask with the ``(row, col)`` pairs of rows ``start..stop-1`` set."""
    mask = torch.zeros(stop - start, n, dtype=torch.bool)
    inside = (rows >= start) & (rows < stop)
    mask[torch.from_numpy(rows[inside] - start), torch.from_numpy(cols[inside])] = True
    return mask


def full_ranking(
    users: np.ndarray,
    items: np.ndarray,
    k: int,
    *,
    exclude_rows: np.ndarray,
    exclude_cols: np.ndarray,
    item_slots: np.ndarray | None = None,
    chunk: int = 512,
) -> np.ndarray:
    """Each user's top-``k`` item columns ``(U, k)`` over every item, excluded ``(row, col)`` pairs left out.

    ``users (U, D)`` or ``(U, K, D)``, ``items (N, D)``; columns are -1 where fewer than ``k`` remain.
    """
    item_t = torch.from_numpy(np.ascontiguousarray(items, dtype=np.float32))
    slots = torch.from_numpy(item_slots) if item_slots is not None else None
    out = np.full((len(users), k), -1, dtype=np.int64)  # a catalogue smaller than k leaves -1 columns
    kept = min(k, len(items))
    for start in range(0, len(users), chunk):
        stop = min(start + chunk, len(users))
        scores = interest_scores(torch.from_numpy(np.ascontiguousarray(users[start:stop], dtype=np.float32)), item_t, slots)
        scores = scores.masked_fill(_exclusion_mask(exclude_rows, exclude_cols, start, stop, len(items)), float("-inf"))
        top = scores.topk(kept, dim=1)
        out[start:stop, :kept] = torch.where(torch.isinf(top.values), -1, top.indices).numpy()
    return out


def sample_unseen_columns(
    n_users: int, n_items: int, num: int, *, exclude_rows: np.ndarray, exclude_cols: np.ndarray,
    generator: torch.Generator, chunk: int = 2048,
) -> np.ndarray:
    """``(U, num)`` item columns per user, uniform without replacement among the columns not excluded for them.

    Gumbel top-k: random keys, excluded columns pushed below every other, the
    ``num`` largest kept. Raises if some user has fewer than ``num`` columns left.
    """
    pairs = np.unique(exclude_rows.astype(np.int64) * n_items + exclude_cols)  # a pair excluded twice counts once
    counts = np.bincount(pairs // n_items, minlength=n_users)
    if n_items - counts.max(initial=0) < num:
        raise ValueError(f"a user has only {n_items - counts.max()} items left to sample {num} from")
    out = np.empty((n_users, num), dtype=np.int64)
    for start in range(0, n_users, chunk):
        stop = min(start + chunk, n_users)
        keys = torch.rand((stop - start, n_items), generator=generator)
        keys = keys.masked_fill(_exclusion_mask(exclude_rows, exclude_cols, start, stop, n_items), -1.0)
        out[start:stop] = keys.topk(num, dim=1).indices.numpy()
    return out


def sampled_ranks(
    users: np.ndarray, items: np.ndarray, targets: np.ndarray, negatives: np.ndarray,
    item_slots: np.ndarray | None = None, chunk: int = 2048,
) -> np.ndarray:
    """0-based rank of each user's target column among ``[target, negatives (U, S)]``.

    Ties count against the target (a model that scores everything alike ranks it last).
    """
    item_t = torch.from_numpy(np.ascontiguousarray(items, dtype=np.float32))
    ranks = np.empty(len(users), dtype=np.int64)
    for start in range(0, len(users), chunk):
        stop = min(start + chunk, len(users))
        cols = torch.from_numpy(np.concatenate([targets[start:stop, None], negatives[start:stop]], axis=1))  # (u, 1+S)
        slots = torch.from_numpy(item_slots)[cols] if item_slots is not None else None
        u = torch.from_numpy(np.ascontiguousarray(users[start:stop], dtype=np.float32))
        scores = candidate_scores(u, item_t[cols], slots)  # (u, 1+S)
        ranks[start:stop] = (scores[:, 1:] >= scores[:, :1]).sum(dim=1).numpy()
    return ranks
