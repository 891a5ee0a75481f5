"""Vectorised metrics: top-K retrieval metrics, AUC, GAUC, logloss."""

from __future__ import annotations

import numpy as np


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    sorted_vals = values[order]
    # boundaries of tie groups in sorted order
    new_group = np.r_[True, sorted_vals[1:] != sorted_vals[:-1]]
    group = np.cumsum(new_group) - 1
    starts = np.flatnonzero(new_group)
    ends = np.r_[starts[1:], len(values)]
    avg = (starts + ends + 1) / 2.0  # mean of ranks start+1 .. end
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = avg[group]
    return ranks


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with tie correction)."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both positive and negative labels")
    ranks = _average_ranks(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def logloss(labels: np.ndarray, probs: np.ndarray, eps: float = 1e-7) -> float:
    labels = np.asarray(labels, dtype=np.float64)
    p = np.clip(np.asarray(probs, dtype=np.float64), eps, 1 - eps)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def gauc(groups: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> float:
    """Impression-weighted mean of per-group AUC over groups with both classes.

    One pass: ranks are computed within each group by sorting on
    (group, score), ties averaged within a group.
    """
    groups = np.asarray(groups)
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.lexsort((scores, groups))
    g, y, s = groups[order], labels[order], scores[order]
    new_group = np.r_[True, g[1:] != g[:-1]]
    group_start = np.flatnonzero(new_group)
    group_id = np.cumsum(new_group) - 1
    # ties: same group and same score
    new_tie = new_group | np.r_[True, s[1:] != s[:-1]]
    tie_id = np.cumsum(new_tie) - 1
    tie_start = np.flatnonzero(new_tie)
    tie_end = np.r_[tie_start[1:], len(s)]
    pos_in_group_start = tie_start - group_start[group_id[tie_start]]
    tie_rank = (2 * pos_in_group_start + (tie_end - tie_start) + 1) / 2.0
    rank = tie_rank[tie_id]
    n_groups = len(group_start)
    n_pos = np.bincount(group_id, weights=y, minlength=n_groups)
    n_all = np.bincount(group_id, minlength=n_groups).astype(np.float64)
    n_neg = n_all - n_pos
    pos_rank_sum = np.bincount(group_id, weights=rank * y, minlength=n_groups)
    valid = (n_pos > 0) & (n_neg > 0)
    if not valid.any():
        raise ValueError("GAUC needs at least one group with both positive and negative labels")
    per_group = (pos_rank_sum[valid] - n_pos[valid] * (n_pos[valid] + 1) / 2) / (n_pos[valid] * n_neg[valid])
    return float(np.average(per_group, weights=n_all[valid]))


def topk_metrics(retrieved: np.ndarray, targets: np.ndarray, k: int) -> dict[str, float]:
    """Mean recall@k, NDCG@k, hit@k, precision@k and MRR@k over users.

    ``retrieved (U, >=k)`` ranked item ids; ``targets (U, T)`` relevant ids,
    padded with -1. Users without any target are ignored.
    """
    top = retrieved[:, :k]  # (U, k)
    relevant = (top[:, :, None] == targets[:, None, :]) & (targets[:, None, :] >= 0)  # (U, k, T)
    rel = relevant.any(axis=2)  # (U, k)
    n_targets = (targets >= 0).sum(axis=1)  # (U,)
    keep = n_targets > 0
    rel, n_targets = rel[keep], n_targets[keep]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))  # (k,)
    dcg = (rel * discounts).sum(axis=1)
    ideal = np.cumsum(discounts)[np.minimum(n_targets, k) - 1]
    hits = rel.sum(axis=1)
    first = np.where(rel.any(axis=1), rel.argmax(axis=1) + 1, np.inf)
    return {
        f"recall@{k}": float(np.mean(hits / n_targets)),
        f"ndcg@{k}": float(np.mean(dcg / ideal)),
        f"hit@{k}": float(np.mean(hits > 0)),
        f"precision@{k}": float(np.mean(hits / k)),
        f"mrr@{k}": float(np.mean(1.0 / first)),
    }


def exclude_and_truncate(candidates: np.ndarray, excluded: np.ndarray, k: int) -> np.ndarray:
    """Drop excluded entries from each row of ranked ``candidates`` and keep the first ``k``.

    ``excluded (U, C)`` is a boolean mask aligned with ``candidates``; rows are
    padded with -1 when fewer than ``k`` candidates survive.
    """
    keep = ~excluded & (candidates >= 0)
    # stable sort puts kept entries first, in their original (ranked) order
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    out = np.take_along_axis(candidates, order, axis=1)
    return np.where(np.take_along_axis(keep, order, axis=1), out, -1)


def rank_metrics(ranks: np.ndarray, k: int) -> dict[str, float]:
    """HR@k, NDCG@k and MRR@k from 0-based ranks of one relevant item per user (the sampled protocol)."""
    ranks = np.asarray(ranks)
    hit = ranks < k
    return {
        f"hr@{k}": float(hit.mean()),
        f"ndcg@{k}": float(np.where(hit, 1.0 / np.log2(ranks + 2), 0.0).mean()),
        f"mrr@{k}": float(np.where(hit, 1.0 / (ranks + 1), 0.0).mean()),
    }
